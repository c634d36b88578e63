"""The learning loop's numbers (``ragbot eval loop``): a deterministic Q&A split, one row per answer path
(before the retrain, extractive only, after a bootstrap retrain when asked, after the retrain on the train
pairs), the retrain's cost and gate verdict, as table cells,
JSON and a PNG.

Pure: it scores answers it is given and never opens an engine, so it can be tested without models.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_engine.eval.answer_eval import AnswerRow, QAItem
from rag_engine.eval.scores import latency_summary, mean, normalize_answer
from rag_engine.invented import invented_terms
from rag_engine.values import NO_MODEL, Answer, AnswerStatus

BEFORE, EXTRACTIVE, BOOTSTRAP, AFTER = "before", "extractive", "bootstrap", "after"


# -- the split -------------------------------------------------------------------------------------------------
def question_key(question: str, seed: int) -> float:
    """Where a question falls in [0, 1): a hash of its normalized text and the seed, so the same question
    lands on the same side whatever else is in the file, and a repeated question never straddles the split."""
    digest = hashlib.sha256(f"{seed}\n{normalize_answer(question)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_qa(items: Sequence[QAItem], test_fraction: float, seed: int = 0) -> tuple[list[QAItem], list[QAItem]]:
    """(train, test), each in file order: the test questions are the ``test_fraction`` of the questions with the
    lowest keys (at least one, never all). The order of the file does not matter, and adding questions moves at
    most the ones at the cut; a repeated question goes wholly to one side."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"--test-fraction must be between 0 and 1, not {test_fraction}")
    if len({normalize_answer(i.question) for i in items}) < 2:
        raise ValueError("need at least two different questions to split into train and test")
    keys = [question_key(i.question, seed) for i in items]
    ranked = sorted(keys)
    want = min(max(1, round(len(items) * test_fraction)), len(items) - 1)
    cutoff = ranked[want - 1]
    test = [k <= cutoff for k in keys]
    if all(test):  # the cut fell inside a repeated question: it goes to the train side
        test = [k < cutoff for k in keys]
    return [i for i, t in zip(items, test, strict=True) if not t], [i for i, t in zip(items, test, strict=True) if t]


def overlap(train: Iterable[QAItem], test: Iterable[QAItem]) -> int:
    """Test questions that are also train questions (normalized): the retrain has seen their answers."""
    seen = {normalize_answer(i.question) for i in train}
    return sum(normalize_answer(i.question) in seen for i in test)


# -- one answer, one row ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScoredAnswer:
    """One test question through one answer path: its scores and what happened to the generated text."""

    question: str
    token_f1: float
    rouge_l: float
    citation_hit: bool | None  # None when the Q&A line names no source
    abstained: bool
    kept: bool  # a language model wrote the text and the grounding check kept it
    fallback: str | None  # why the text was quoted instead (``FallbackCode`` value), else None
    answered_by: str
    adapter_version: str | None
    seconds: float
    answer: str = ""
    invented: tuple[str, ...] = ()  # kept answers only: names, numbers, terms in no passage shown (``invented``)


def scored(row: AnswerRow, answer: Answer) -> ScoredAnswer:
    """``row`` (``score_answer``'s scores of ``answer``) with whether the generated text reached the user."""
    kept = answer.status == AnswerStatus.ANSWERED and answer.generator not in NO_MODEL
    invented = tuple(invented_terms(answer.text, answer.passages, row.question)) if kept else ()
    return ScoredAnswer(row.question, row.token_f1, row.rouge_l, row.citation_hit, row.abstained, kept,
                        answer.fallback_code.value if answer.fallback_code else None, row.answered_by,
                        row.adapter_version, row.seconds, row.answer, invented)


@dataclass(slots=True)
class LoopRow:
    """One answer path on the test questions."""

    name: str  # before | extractive | bootstrap | after
    model: str  # the generator this path tried first, with its adapter ("extractive" when none)
    questions: int
    token_f1: float
    rouge_l: float
    citation_hit_rate: float | None  # over the questions that name a source; None when none does
    abstention_rate: float
    kept_rate: float  # share of answers generated and kept by the grounding check
    invented_rate: float | None  # share of the kept answers with invented content; None when none was kept
    fallbacks: dict[str, int]  # fallback code -> answers
    p50_ms: float
    p95_ms: float
    answered_by: dict[str, int]
    note: str = ""
    answers: list[ScoredAnswer] = field(default_factory=list)


def summarize_row(name: str, model: str, answers: Sequence[ScoredAnswer], note: str = "") -> LoopRow:
    sourced = [a for a in answers if a.citation_hit is not None]
    kept = [a for a in answers if a.kept]
    lat = latency_summary([a.seconds for a in answers])
    return LoopRow(
        name=name, model=model, questions=len(answers), token_f1=mean(a.token_f1 for a in answers),
        rouge_l=mean(a.rouge_l for a in answers),
        citation_hit_rate=mean(float(bool(a.citation_hit)) for a in sourced) if sourced else None,
        abstention_rate=mean(float(a.abstained) for a in answers), kept_rate=mean(float(a.kept) for a in answers),
        invented_rate=mean(float(bool(a.invented)) for a in kept) if kept else None,
        fallbacks=dict(Counter(a.fallback for a in answers if a.fallback).most_common()),
        p50_ms=lat["p50_ms"], p95_ms=lat["p95_ms"],
        answered_by=dict(Counter(a.answered_by for a in answers).most_common()), note=note, answers=list(answers),
    )


@dataclass(frozen=True, slots=True)
class KeptVsExtractive:
    """The answers a row's generator wrote and kept, against the extractive answers to the same questions."""

    row: str
    kept: int
    kept_token_f1: float | None
    extractive_token_f1: float | None
    kept_citation_hit: float | None
    extractive_citation_hit: float | None


def kept_vs_extractive(row: LoopRow, extractive: LoopRow) -> KeptVsExtractive:
    """Matched by question (both rows answered the same test questions)."""
    quoted = {a.question: a for a in extractive.answers}
    pairs = [(a, quoted[a.question]) for a in row.answers if a.kept and a.question in quoted]

    def avg(values: list[float]) -> float | None:
        return mean(values) if values else None

    cited = [(a, e) for a, e in pairs if a.citation_hit is not None and e.citation_hit is not None]
    return KeptVsExtractive(
        row.name, len(pairs), avg([a.token_f1 for a, _ in pairs]), avg([e.token_f1 for _, e in pairs]),
        avg([float(bool(a.citation_hit)) for a, _ in cited]), avg([float(bool(e.citation_hit)) for _, e in cited]))


# -- the retrain -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RetrainSummary:
    """The retrain job as the worker ran it (``RetrainOutcome.to_result()`` on the job) and what it cost."""

    job_id: int
    status: str  # the job's: done | failed | requeued | lost
    decision: str | None  # promoted | rejected | skipped (None when the job failed)
    reason: str
    version: str | None  # the candidate trained (promoted or not)
    active_after: str | None  # the adapter serving answers after the retrain (None = base model)
    wall_s: float  # enqueue to finish: training set, training, gate
    train_s: float | None
    tokens: int | None  # tokens trained on (prompt + answer)
    tokens_per_s: float | None
    examples: int | None
    snapshot: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.decision is None:
            return f"job {self.status}"
        return f"{self.decision} {self.version}" if self.version else self.decision


def retrain_summary(job_id: int, status: str, result: dict[str, Any] | None, error: str | None, wall_s: float,
                    active_after: str | None) -> RetrainSummary:
    result = result or {}
    train = result.get("train") or {}
    return RetrainSummary(
        job_id=job_id, status=status, decision=result.get("decision"), reason=str(result.get("reason") or error or ""),
        version=result.get("version"), active_after=active_after, wall_s=wall_s, train_s=train.get("seconds"),
        tokens=train.get("tokens"), tokens_per_s=train.get("tokens_per_s"), examples=train.get("examples"),
        snapshot=result.get("snapshot") or {}, gate=result.get("metrics") or {})


# -- the report ------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class LoopReport:
    collection: str
    train_questions: int
    test_questions: int
    test_in_train: int  # test questions also among the train pairs
    imported: dict[str, int]  # curated import: added / duplicates / errors
    rows: list[LoopRow]
    retrain: RetrainSummary | None
    split: dict[str, Any] = field(default_factory=dict)  # how train and test were chosen
    bootstrap_retrain: RetrainSummary | None = None  # on bootstrap pairs only, before the train pairs (``--bootstrap``)

    def row(self, name: str) -> LoopRow | None:
        return next((r for r in self.rows if r.name == name), None)

    def kept_vs_extractive(self) -> list[KeptVsExtractive]:
        extractive = self.row(EXTRACTIVE)
        if extractive is None:
            return []
        return [kept_vs_extractive(r, extractive) for r in self.rows if r.name != EXTRACTIVE]

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kept_vs_extractive"] = [asdict(k) for k in self.kept_vs_extractive()]
        for key in ("retrain", "bootstrap_retrain"):
            if (run := getattr(self, key)) is not None:
                data[key]["verdict"] = run.verdict
        return data


TABLE_COLUMNS = ("row", "model", "token-F1", "ROUGE-L", "citation hit", "abstention", "generated+kept",
                 "invented (kept)", "fallbacks", "p50 s", "p95 s", "retrain s", "train tokens", "tokens/s", "gate")


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "–" if value is None else fmt.format(value)


def table_rows(report: LoopReport) -> list[list[str]]:
    """One list of cells per row, in ``TABLE_COLUMNS`` order; a retrain's cells sit on the row it made ("after",
    "bootstrap")."""
    out = []
    for r in report.rows:
        fallbacks = ", ".join(f"{code} {n}" for code, n in r.fallbacks.items()) or "–"
        retrain = ["–"] * 4
        t = {AFTER: report.retrain, BOOTSTRAP: report.bootstrap_retrain}.get(r.name)
        if t is not None:
            retrain = [f"{t.wall_s:.1f}", _num(t.tokens, "{:d}"), _num(t.tokens_per_s, "{:.0f}"), t.verdict]
        name = f"{r.name} ({r.note})" if r.note else r.name
        out.append([name, r.model, f"{r.token_f1:.3f}", f"{r.rouge_l:.3f}",
                    _num(r.citation_hit_rate), f"{r.abstention_rate:.3f}", f"{r.kept_rate:.3f}",
                    _num(r.invented_rate), fallbacks, f"{r.p50_ms / 1000:.2f}", f"{r.p95_ms / 1000:.2f}", *retrain])
    return out


KEPT_COLUMNS = ("row", "kept answers", "kept token-F1", "extractive token-F1", "kept citation hit",
                "extractive citation hit")


def kept_rows(report: LoopReport) -> list[list[str]]:
    return [[k.row, str(k.kept), _num(k.kept_token_f1), _num(k.extractive_token_f1), _num(k.kept_citation_hit),
             _num(k.extractive_citation_hit)] for k in report.kept_vs_extractive()]


PLOTTED = (("token-F1", "token_f1"), ("ROUGE-L", "rouge_l"), ("citation hit", "citation_hit_rate"),
           ("abstention", "abstention_rate"), ("generated+kept", "kept_rate"))


def plot_loop(report: LoopReport, path: Path | str, title: str = "") -> None:
    """Grouped bars of the quality numbers per row, and p50/p95 latency per row."""
    import matplotlib  # lazy: matplotlib loads only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the Agg backend is chosen

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(PLOTTED))
    width = 0.8 / max(1, len(report.rows))
    for i, r in enumerate(report.rows):
        values = [getattr(r, attr) or 0.0 for _, attr in PLOTTED]
        bars = ax1.bar(x + i * width - 0.4 + width / 2, values, width, label=r.name)
        ax1.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax1.set_xticks(x, [label for label, _ in PLOTTED])
    ax1.set_ylim(0, 1.1)
    ax1.set_ylabel("share / score")
    verdict = f" — retrain: {report.retrain.verdict}" if report.retrain else ""
    ax1.set_title(f"{title or report.collection}: {report.test_questions} test questions{verdict}", fontsize=9)
    ax1.legend(fontsize=8)
    y = np.arange(len(report.rows))
    ax2.barh(y - 0.2, [r.p50_ms / 1000 for r in report.rows], 0.4, label="p50")
    ax2.barh(y + 0.2, [r.p95_ms / 1000 for r in report.rows], 0.4, label="p95")
    ax2.set_yticks(y, [r.name for r in report.rows])
    ax2.set_xlabel("seconds per answer")
    ax2.set_title("latency")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
