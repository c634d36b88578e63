"""Abstention: how often "not in the documents" is said wrongly, old cosine floor vs the calibrated rule.

    .venv/bin/python benchmarks/abstention.py collect [--data-dir /tmp/abstention/data]
    .venv/bin/python benchmarks/abstention.py evaluate [--fit]

``collect`` ingests each corpus once (the collections are those of ``benchmarks/adaptive_fusion.py``,
so one data directory serves both; unchanged files embed nothing the second time) and asks every
collection every question set: for each (question, collection) it caches both candidate lists
exactly as ``Retriever.search`` gets them (top 100 per side) with each candidate's cosine, document
and text, to ``benchmarks/out/abstention/runs.json`` (not committed). ``evaluate`` then fuses
offline with the retriever's own function (``rag_engine.fusion.convex``, the default 0.7 / 0.3),
takes the top ``search_k`` hits and applies each rule (``rag_engine.abstention``) to them.

Questions (answerable only where their corpus is searched with their source present):
- ``tts-handbook``: ``qa-train.jsonl`` (116) / ``qa-test.jsonl`` (48) of ``../shared/eval/tts-handbook``;
  the source is the page the question heads.
- ``examples-handbook``: the 94 questions of ``benchmarks/data/handbook_feedback.jsonl``, split
  train / test by a hash of the question (``split_of``).
- ``msmarco-5k`` (only off-topic questions for the handbooks, and a third corpus): the 43 judged
  queries; train / test by a hash of the query id; the relevant documents are those graded >= 1.

Unanswerable questions, two kinds:
- ``removed``: a corpus's own question with its source document(s) taken out of the index. Simulated
  on the cached lists: every chunk of the source is dropped from both lists before fusing (the
  retriever then sees the next candidates, as it would; BM25's corpus statistics keep the removed
  document, a difference of one document in its idf). Not for msmarco-5k: its queries have up to
  hundreds of judged passages, more than the 100 cached candidates, so removing them all cannot be
  simulated on the cache.
- ``foreign``: another corpus's question asked of this collection. Both handbooks are staff
  handbooks, so a few of one's questions may be answerable from the other; such questions count as
  unanswerable here (a false answer rate that is, if anything, too high).

Every rule's threshold / coefficients are chosen on the train split (``--fit`` prints them; the
shipped ones are ``rag_engine.abstention.DEFAULT_MODEL``). A threshold minimises, averaged over the
corpora, the cost ``(2 * false-abstention rate + false-answer rate) / 3``: saying "not found" to a
question the documents answer is a dead end, an answer to one they don't still shows its sources and
goes through the grounding check. The test split is reported, not tuned on.
Writes ``benchmarks/results/abstention.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "eval"
CACHE = ROOT / "benchmarks" / "out" / "abstention"  # ignored by git
RESULT = ROOT / "benchmarks" / "results" / "abstention.md"
DEPTH = 100  # candidates per side, the default candidate_depth
CORPORA = ("tts-handbook", "examples-handbook", "msmarco-5k")
ABSTENTION_COST = 2.0  # a false "not found" costs this many false answers (see the docstring)


@dataclass(frozen=True, slots=True)
class Question:
    qid: str
    corpus: str  # the corpus it was written for
    text: str
    sources: tuple[str, ...]  # document keys (doc_key) that answer it
    split: str  # train | test


def split_of(key: str) -> str:
    return "test" if hashlib.sha1(key.encode()).digest()[0] % 5 < 2 else "train"  # 40 % test


def questions() -> list[Question]:
    from rag_engine.eval.answer_eval import load_qa
    from rag_engine.eval.beir import load_beir

    out: list[Question] = []
    for split in ("train", "test"):
        for i, it in enumerate(load_qa(SHARED / "tts-handbook" / f"qa-{split}.jsonl")):
            out.append(Question(f"tts-{split}-{i}", "tts-handbook", it.question, (str(it.source),), split))
    for i, it in enumerate(load_qa(ROOT / "benchmarks" / "data" / "handbook_feedback.jsonl")):
        if it.source:
            out.append(Question(f"hb-{i}", "examples-handbook", it.question, (it.source,), split_of(it.question)))
    ds = load_beir(SHARED / "msmarco-5k")
    for qid, text in ds.queries.items():
        rel = tuple(d for d, g in ds.qrels.get(qid, {}).items() if g >= 1)
        if rel:
            out.append(Question(f"ms-{qid}", "msmarco-5k", text, rel, split_of(qid)))
    return out


def collect(data_dir: Path, corpora: Sequence[str]) -> None:
    from app.configs import engine_config
    from app.settings import Settings
    from benchmarks.adaptive_fusion import doc_key
    from rag_engine.engine import RagEngine
    from rag_engine.eval.beir import load_beir

    settings = Settings(_env_file=None, data_dir=data_dir, generator_backend="extractive", reranker_model=None)
    engine = RagEngine(engine_config(settings), generator=None, reranker=None)
    t0 = time.perf_counter()
    for name in corpora:
        if name == "msmarco-5k":
            engine.ingest_records(list(load_beir(SHARED / "msmarco-5k").records()), "fusion-msmarco-5k")
        elif name == "examples-handbook":
            engine.ingest([ROOT / "examples" / "handbook"], "fusion-examples-handbook")
        else:
            engine.ingest([SHARED / "tts-handbook" / "docs"], "fusion-tts-handbook")
        print(f"{name}: ingested ({time.perf_counter() - t0:.0f}s)", flush=True)
    qs = questions()
    retriever, cfg = engine.retriever, engine.retriever.config
    runs: dict[str, Any] = {}
    chunks: dict[str, dict[str, Any]] = {name: {} for name in corpora}
    for n, q in enumerate(qs):
        qv = engine.embedder.embed_query(q.text)
        for name in corpora:
            cids = engine.scope_for([f"fusion-{name}"]).ids()
            with retriever.chunks.searching() as search:
                vector = search.vector(qv, cids, DEPTH, cfg.hnsw_ef_search)
                lexical = retriever.lexical_candidates(search, q.text, cids, DEPTH)
                details = search.details(sorted({*vector, *lexical}), qv)
            known = chunks[name]
            for i, d in details.items():
                known.setdefault(str(i), [doc_key(d.source_uri), d.title, d.heading_path, d.text])
            runs[f"{q.qid}@{name}"] = {"vector": sorted(vector.items(), key=lambda kv: (-kv[1], kv[0])),
                                       "lexical": sorted(lexical.items(), key=lambda kv: (-kv[1], kv[0])),
                                       "cosine": {str(i): d.cosine for i, d in details.items()}}
        if n % 50 == 0:
            print(f"{n}/{len(qs)} questions ({time.perf_counter() - t0:.0f}s)", flush=True)
    engine.close()
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "runs.json").write_text(json.dumps({"corpora": list(corpora), "runs": runs, "chunks": chunks}))
    print(f"cached {len(runs)} runs ({time.perf_counter() - t0:.0f}s)")


# -- offline evaluation ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Case:
    corpus: str  # the collection searched
    split: str
    answerable: bool
    kind: str  # answerable | removed | foreign
    signals: Any  # rag_engine.abstention.AbstentionSignals
    question: str
    hits: list[Any]


def cases(data: dict[str, Any]) -> list[Case]:
    from app.settings import Settings
    from rag_engine.abstention import signals
    from rag_engine.fusion import convex
    from rag_engine.values import SearchHit

    s = Settings(_env_file=None)
    out: list[Case] = []
    for q in questions():
        for corpus in data["corpora"]:
            row = data["runs"].get(f"{q.qid}@{corpus}")
            if row is None or q.corpus not in data["corpora"]:
                continue
            info = data["chunks"][corpus]
            if corpus != q.corpus:
                kinds: list[tuple[str, set[str]]] = [("foreign", set())]
            elif corpus == "msmarco-5k":
                kinds = [("answerable", set())]
            else:
                kinds = [("answerable", set()), ("removed", set(q.sources))]
            for kind, gone in kinds:
                vector = {int(i): v for i, v in row["vector"] if info[str(i)][0] not in gone}
                lexical = {int(i): v for i, v in row["lexical"] if info[str(i)][0] not in gone}
                fused = convex((vector, lexical), (s.vector_weight, s.lexical_weight))
                top = sorted(fused, key=lambda i: (-fused[i], i))[:s.search_k]
                hits = [SearchHit(chunk_id=i, document_id=0, collection_id=0, title=info[str(i)][1],
                                  source_uri=info[str(i)][0], heading_path=info[str(i)][2], text=info[str(i)][3],
                                  score=fused[i], vector_score=row["cosine"].get(str(i)),
                                  lexical_score=lexical.get(i)) for i in top]
                out.append(Case(corpus, q.split, kind == "answerable", kind, signals(q.text, hits), q.text, hits))
    return out


def weights(rows: Sequence[Case]) -> np.ndarray:
    """Each (corpus, answerable) group weighs the same in the fit: no corpus or class dominates."""
    groups: dict[tuple[str, bool], int] = {}
    for c in rows:
        groups[(c.corpus, c.answerable)] = groups.get((c.corpus, c.answerable), 0) + 1
    return np.array([1.0 / groups[(c.corpus, c.answerable)] for c in rows])


def cost(false_abstention: float, false_answer: float) -> float:
    return (ABSTENTION_COST * false_abstention + false_answer) / (ABSTENTION_COST + 1)


def mean_cost(rows: Sequence[Case], abstain: Sequence[bool]) -> float:
    """``cost`` averaged over the corpora."""
    errs = []
    for corpus in sorted({c.corpus for c in rows}):
        mine = [(c, a) for c, a in zip(rows, abstain, strict=True) if c.corpus == corpus]
        errs.append(cost(*rates([c for c, _ in mine], [a for _, a in mine])))
    return float(np.mean(errs))


def rates(rows: Sequence[Case], abstain: Sequence[bool]) -> tuple[float, float]:
    """(false-abstention rate, false-answer rate)."""
    ans = [a for c, a in zip(rows, abstain, strict=True) if c.answerable]
    una = [a for c, a in zip(rows, abstain, strict=True) if not c.answerable]
    return (sum(ans) / len(ans) if ans else float("nan"), sum(not a for a in una) / len(una) if una else float("nan"))


def best_threshold(rows: Sequence[Case], scores: np.ndarray) -> float:
    """The cut (abstain below it) with the least ``mean_cost`` on ``rows``; midpoints between scores."""
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    errors = [mean_cost(rows, list(scores < t)) for t in cuts]
    return float(cuts[int(np.argmin(errors))])


def fit_logistic(rows: Sequence[Case], l2: float = 1e-3) -> tuple[float, tuple[float, ...]]:
    """Weighted L2 logistic regression on the raw signals (Newton steps; the features are all in [0, 1])."""
    x = np.array([c.signals.vector() for c in rows])
    x1 = np.hstack([np.ones((len(rows), 1)), x])
    y = np.array([1.0 if c.answerable else 0.0 for c in rows])
    w = weights(rows)
    w = w / w.sum() * len(rows)
    theta = np.zeros(x1.shape[1])
    reg = np.diag([0.0] + [l2 * len(rows)] * x.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-x1 @ theta))
        grad = x1.T @ (w * (p - y)) + reg @ theta
        hess = x1.T @ (x1 * (w * p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(theta[0]), tuple(float(t) for t in theta[1:])


def false_answer(rows: Sequence[Case], abstain: Sequence[bool], kind: str) -> float:
    """The false-answer rate over one kind of unanswerable question."""
    mine = [(c, a) for c, a in zip(rows, abstain, strict=True) if c.kind == kind]
    return sum(not a for _, a in mine) / len(mine) if mine else float("nan")


def pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.1%}"


def evaluate(show_fit: bool) -> None:
    from app.settings import Settings
    from rag_engine.abstention import DEFAULT_MODEL, AbstentionModel, decide

    t0 = time.perf_counter()
    data = json.loads((CACHE / "runs.json").read_text())
    rows = cases(data)
    train = [c for c in rows if c.split == "train"]
    floor = Settings(_env_file=None).min_relevance
    cos_cut = best_threshold(train, np.array([c.signals.top_cosine for c in train]))
    intercept, coefs = fit_logistic(train)
    fitted = AbstentionModel(intercept, (coefs[0], coefs[1], coefs[2], coefs[3]), 0.5)
    fitted = AbstentionModel(intercept, fitted.coefficients,
                             best_threshold(train, np.array([fitted.probability(c.signals) for c in train])))
    if show_fit:
        print(f"cosine floor fitted on train: {cos_cut:.4f}")
        print(f"DEFAULT_MODEL = AbstentionModel(intercept={fitted.intercept:.4f}, coefficients=("
              + ", ".join(f"{c:.4f}" for c in fitted.coefficients) + f"), threshold={fitted.threshold:.4f})")
    shipped = (DEFAULT_MODEL.intercept, *DEFAULT_MODEL.coefficients, DEFAULT_MODEL.threshold)
    if any(abs(a - b) > 1e-3 for a, b in zip(shipped, (fitted.intercept, *fitted.coefficients, fitted.threshold),
                                             strict=True)):
        print("note: the shipped DEFAULT_MODEL differs from this fit (run with --fit and copy it)")
    rules = {
        f"min_relevance {floor:.2f} (old default)": lambda c: decide(c.question, c.hits, "min_relevance",
                                                                     floor).abstain,
        f"cosine floor {cos_cut:.3f} (fitted on train)": lambda c: decide(c.question, c.hits, "min_relevance",
                                                                          cos_cut).abstain,
        "calibrated (shipped DEFAULT_MODEL)": lambda c: decide(c.question, c.hits, "calibrated", floor).abstain,
    }
    lines = ["| corpus | split | rule | false-abstention | false-answer | (removed / foreign) | n answerable "
             "| n unanswerable |", "|---|---|---|---|---|---|---|---|"]
    summary: dict[tuple[str, str], float] = {}
    for split in ("train", "test"):
        for corpus in data["corpora"]:
            sub = [c for c in rows if c.corpus == corpus and c.split == split]
            for name, rule in rules.items():
                abstain = [rule(c) for c in sub]
                fa, fn = rates(sub, abstain)
                rem = false_answer(sub, abstain, "removed")
                fgn = false_answer(sub, abstain, "foreign")
                n_ans = sum(c.answerable for c in sub)
                lines.append(f"| {corpus} | {split} | {name} | {fa:.1%} | {fn:.1%} | {pct(rem)} / {pct(fgn)} "
                             f"| {n_ans} | {len(sub) - n_ans} |")
                summary[(split, name)] = summary.get((split, name), 0.0) + cost(fa, fn) / len(data["corpora"])
    lines += ["", "| split | rule | cost (2 x false-abstention + false-answer) / 3, mean over corpora |",
              "|---|---|---|"]
    lines += [f"| {split} | {name} | {err:.1%} |" for (split, name), err in summary.items()]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"({len(rows)} cases, {time.perf_counter() - t0:.1f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("step", choices=["collect", "evaluate"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/abstention/data"))
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA))
    parser.add_argument("--fit", action="store_true", help="print the parameters fitted on the train split")
    args = parser.parse_args()
    if args.step == "collect":
        collect(args.data_dir, args.corpora)
    else:
        evaluate(args.fit)


if __name__ == "__main__":
    main()
