"""Answer evaluation: run the real answer path on a QA file and score it.

QA lines are ``{"question", "answer", "source"?}``. A ``source`` such as
``vpn-setup.md`` or ``docs/x/y.md`` matches a document whose ``source_uri``
ends with it (on a path boundary).
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag_engine.engine import RagEngine
from rag_engine.eval.jsonl import read_jsonl
from rag_engine.eval.scores import (
    bleu,
    exact_match,
    latency_summary,
    mean,
    rouge_l,
    sentence_bleu,
    strip_citations,
    token_f1,
)
from rag_engine.values import Answer, AnswerStatus

ABSTAINED = (AnswerStatus.NOT_FOUND, AnswerStatus.ASK_BACK)


class QAFormatError(ValueError):
    """A QA file line is not a usable question/answer pair."""


@dataclass(frozen=True, slots=True)
class QAItem:
    question: str
    answer: str
    source: str | None = None


@dataclass(slots=True)
class AnswerRow:
    question: str
    reference: str
    source: str | None
    answer: str
    status: str
    generator: str  # who wrote the answer (``extractive`` when quoted) ...
    adapter_version: str | None  # ... and with which adapter (None = the base model)
    retriever_version: str | None  # the retrieval version (query adapter) its search used (None = raw queries)
    answered_by: str  # both, for people (``Answer.answered_by``)
    citations: list[str]
    retrieved: list[str]
    exact_match: float
    token_f1: float
    rouge_l: float
    bleu: float  # sentence BLEU, for reading; the summary's BLEU is corpus-level
    citation_hit: bool | None  # None when the line has no source
    retrieval_hit: bool | None
    abstained: bool
    seconds: float


@dataclass(slots=True)
class AnswerEvalResult:
    collections: list[str] | None
    k: int
    summary: dict[str, float] = field(default_factory=dict)
    rows: list[AnswerRow] = field(default_factory=list)
    answered_by: dict[str, int] = field(default_factory=dict)  # ``Answer.answered_by`` -> answers

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_qa(path: Path | str) -> list[QAItem]:
    items: list[QAItem] = []
    path = Path(path)
    for n, obj in read_jsonl(path, QAFormatError):
        if not isinstance(obj, dict) or not str(obj.get("question", "")).strip() or "answer" not in obj:
            raise QAFormatError(f"{path.name} line {n}: needs a non-empty \"question\" and an \"answer\"")
        source = obj.get("source")
        items.append(QAItem(str(obj["question"]).strip(), str(obj["answer"]),
                            str(source).strip() or None if source is not None else None))
    if not items:
        raise QAFormatError(f"{path.name} has no questions")
    return items


def source_matches(source_uri: str, source: str) -> bool:
    """``source`` names the document: the whole URI, or its tail on a path boundary."""
    uri, want = source_uri.replace("\\", "/"), source.replace("\\", "/").lstrip("./").lstrip("/")
    return uri == want or uri.endswith(("/" + want, ":" + want))


def score_answer(item: QAItem, answer: Answer, seconds: float) -> AnswerRow:
    cited = [c.source_uri for c in answer.citations]
    retrieved = [h.source_uri for h in answer.hits]
    source = item.source
    text = strip_citations(answer.text)
    return AnswerRow(
        question=item.question, reference=item.answer, source=item.source, answer=text,
        status=answer.status.value, generator=answer.generator, adapter_version=answer.adapter_version,
        retriever_version=answer.retriever_version, answered_by=answer.answered_by, citations=cited,
        retrieved=retrieved,
        exact_match=exact_match(text, item.answer), token_f1=token_f1(text, item.answer),
        rouge_l=rouge_l(text, item.answer), bleu=sentence_bleu(text, item.answer),
        citation_hit=any(source_matches(u, source) for u in cited) if source is not None else None,
        retrieval_hit=any(source_matches(u, source) for u in retrieved) if source is not None else None,
        abstained=answer.status in ABSTAINED, seconds=seconds,
    )


def summarize(rows: Sequence[AnswerRow]) -> dict[str, float]:
    sourced = [r for r in rows if r.source is not None]
    return {
        "questions": len(rows),
        "exact_match": mean(r.exact_match for r in rows),
        "token_f1": mean(r.token_f1 for r in rows),
        "rouge_l": mean(r.rouge_l for r in rows),
        "bleu": bleu([r.answer for r in rows], [r.reference for r in rows]),
        "citation_hit_rate": mean(float(bool(r.citation_hit)) for r in sourced),
        "retrieval_hit_rate": mean(float(bool(r.retrieval_hit)) for r in sourced),
        "abstention_rate": mean(float(r.abstained) for r in rows),
        **latency_summary([r.seconds for r in rows]),
    }


def evaluate_answers(engine: RagEngine, items: Sequence[QAItem], collections: Sequence[str] | None = None, *,
                     k: int | None = None, progress: Callable[[QAItem], None] | None = None) -> AnswerEvalResult:
    """Ask every question through ``engine.answer`` (the configured generator, or extractive) and score it.

    ``collections`` names the collections to answer from (none: every collection there is).
    """
    k = k or engine.config.retrieval.search_k
    scope = engine.scope_for(collections) if collections else engine.every_collection()
    rows = []
    for item in items:
        t0 = time.perf_counter()
        answer = engine.answer(item.question, scope, k=k)
        rows.append(score_answer(item, answer, time.perf_counter() - t0))
        if progress:
            progress(item)
    return AnswerEvalResult(list(collections) if collections else None, k, summarize(rows), rows,
                            dict(Counter(r.answered_by for r in rows).most_common()))


def write_html(result: AnswerEvalResult, path: Path | str, title: str = "ragbot answer evaluation") -> None:
    """One table row per question, worst token-F1 first, so a person sees where answers go wrong."""
    esc = html.escape
    s = result.summary
    # counts (``questions``) are ints among the float scores: shown whole
    summary = " · ".join(f"{esc(k)}: {v}" if isinstance(v, int) else f"{esc(k)}: {v:.3f}" for k, v in s.items())
    summary += "<br>answered by: " + " · ".join(f"{esc(who)}: {n}" for who, n in result.answered_by.items())
    body = []
    for r in sorted(result.rows, key=lambda r: r.token_f1):
        hue = int(120 * r.token_f1)  # red (0) to green (1)
        mark = {True: "✔", False: "✘", None: "–"}
        cites = "<br>".join(esc(c) for c in r.citations) or "<i>none</i>"
        body.append(
            f"<tr><td>{esc(r.question)}</td><td>{esc(r.reference)}</td>"
            f"<td>{esc(r.answer)}<div class=st>{esc(r.status)} · {esc(r.answered_by)} · "
            f"retrieval {esc(r.retriever_version or 'raw')}</div></td>"
            f"<td class=src>{cites}</td>"
            f"<td>{esc(r.source or '')}</td>"
            f"<td style='background:hsl({hue},70%,85%)'>{r.token_f1:.2f}</td><td>{r.exact_match:.0f}</td>"
            f"<td>{r.rouge_l:.2f}</td><td>{r.bleu:.2f}</td><td>{mark[r.citation_hit]}</td>"
            f"<td>{mark[r.retrieval_hit]}</td><td>{r.seconds * 1000:.0f}</td></tr>")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px 6px;vertical-align:top}} th{{background:#f0f0f0;position:sticky;top:0}}
td:nth-child(-n+3){{max-width:28em}} .src{{font-size:11px;color:#555;max-width:16em;word-break:break-all}}
.st{{font-size:11px;color:#888}}</style></head><body><h1>{esc(title)}</h1><p>{summary}</p>
<table><tr><th>question</th><th>reference</th><th>answer</th><th>citations</th><th>source</th><th>F1</th>
<th>EM</th><th>ROUGE-L</th><th>BLEU</th><th>cited</th><th>hit@{result.k}</th><th>ms</th></tr>
{''.join(body)}</table></body></html>"""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(page, encoding="utf-8")
