"""Adaptive fusion: per-query dense/lexical weights, measured against the fixed modes with a query split.

    .venv/bin/python benchmarks/adaptive_fusion.py collect [--data-dir /tmp/fusion/data]
    .venv/bin/python benchmarks/adaptive_fusion.py evaluate [--fit]

``collect`` ingests each set once (the data directory is reused; a second run embeds
nothing) and caches, per query, both candidate lists exactly as ``Retriever.search``
gets them (top 100 chunks per side, chunk -> document map) to
``benchmarks/out/fusion/<set>.json``. ``evaluate`` then fuses the cached lists
offline with the same functions the retriever calls (``rag_engine.fusion``), so a
rule can be iterated in seconds; every number it prints for a query comes from
parameters fitted on the *other* fold (2-fold cross-validation, folds by a hash of
the query id).

Sets:
- ``msmarco-5k``: BEIR layout as shipped (43 TREC DL 2019 queries, graded qrels).
- ``tts-handbook``: every line of ``qa.jsonl`` (164) is a query, its ``source`` page
  the one relevant document (grade 1); the pages of ``docs/`` are ingested as files,
  so they are chunked and titled as a team's handbook would be. A document is the
  page (``source_uri`` relative to ``docs/``); the questions are the pages' own
  question headings, so the lexical side sees the exact words. ``evaluate`` adds
  ``tts-handbook-sections``: the same questions judged per chunk (see ``sections``).
- ``examples-handbook``: ``examples/handbook`` with the 94 hand-written questions of
  ``benchmarks/data/handbook_feedback.jsonl`` that name a source file.

Writes ``benchmarks/out/fusion/table.md`` (the docs table) and ``table.json``. The second round's
search over other normalizations and weight models, on the same cache, is ``benchmarks/fusion_search.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "eval"
OUT = ROOT / "benchmarks" / "out" / "fusion"
DEPTH = 100  # candidates per side, the default candidate_depth; also what the eval retrieves


@dataclass(slots=True)
class QuerySet:
    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def doc_key(source_uri: str) -> str:
    """BEIR corpus id, or the page path relative to ``docs/``."""
    from rag_engine.eval.beir import doc_id_of

    uri = doc_id_of(source_uri).replace("\\", "/")
    for root in ("/docs/", "/examples/handbook/"):
        if root in uri:
            return uri.split(root, 1)[1]
    return uri


def collect(data_dir: Path, sets: Sequence[str]) -> None:
    from app.configs import engine_config
    from app.settings import Settings
    from rag_engine.engine import RagEngine
    from rag_engine.eval.answer_eval import load_qa
    from rag_engine.eval.beir import load_beir

    settings = Settings(data_dir=data_dir, generator_backend="extractive", reranker_model=None)
    engine = RagEngine(engine_config(settings), generator=None, reranker=None)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in sets:
        t0 = time.perf_counter()
        if name == "msmarco-5k":
            ds = load_beir(SHARED / "msmarco-5k")
            report = engine.ingest_records(list(ds.records()), "fusion-msmarco-5k")
            qs = QuerySet(name, ds.queries, ds.qrels)
        elif name == "examples-handbook":
            report = engine.ingest([ROOT / "examples" / "handbook"], "fusion-examples-handbook")
            items = [it for it in load_qa(ROOT / "benchmarks" / "data" / "handbook_feedback.jsonl") if it.source]
            qs = QuerySet(name, {f"q{i}": it.question for i, it in enumerate(items)},
                          {f"q{i}": {str(it.source): 1} for i, it in enumerate(items)})
        else:
            report = engine.ingest([SHARED / "tts-handbook" / "docs"], "fusion-tts-handbook")
            items = load_qa(SHARED / "tts-handbook" / "qa.jsonl")
            qs = QuerySet(name, {f"q{i}": it.question for i, it in enumerate(items)},
                          {f"q{i}": {str(it.source): 1} for i, it in enumerate(items)})
        print(f"{name}: ingested ({report.embedded} embedded, {time.perf_counter() - t0:.0f}s)", flush=True)
        cache = collect_runs(engine, qs, f"fusion-{name}")
        (OUT / f"{name}.json").write_text(json.dumps(cache))
        print(f"{name}: {len(qs.queries)} queries cached ({time.perf_counter() - t0:.0f}s)", flush=True)
    engine.close()


def collect_runs(engine: Any, qs: QuerySet, collection: str) -> dict[str, Any]:
    """Both candidate lists per query, as the retriever builds them."""
    retriever = engine.retriever
    cfg = retriever.config
    cids = engine.scope_for([collection]).ids()
    chunk_doc: dict[int, str] = {}
    rows: dict[str, Any] = {}
    for qid, query in qs.queries.items():
        qv = engine.embedder.embed_query(query)
        with retriever.chunks.searching() as search:
            vector = search.vector(qv, cids, DEPTH, cfg.hnsw_ef_search)
            lexical = retriever.lexical_candidates(search, query, cids, DEPTH)
            new = [i for i in {*vector, *lexical} if i not in chunk_doc]
            for i, d in search.details(new, qv).items():
                chunk_doc[i] = doc_key(d.source_uri)
        rows[qid] = {"query": query, "vector": sorted(vector.items(), key=lambda kv: (-kv[1], kv[0])),
                     "lexical": sorted(lexical.items(), key=lambda kv: (-kv[1], kv[0]))}
    return {"name": qs.name, "qrels": qs.qrels, "rows": rows, "chunk_doc": {str(k): v for k, v in chunk_doc.items()}}


def add_details(data_dir: Path, name: str) -> None:
    """Heading path and text of every cached candidate chunk (for the section-level judgments)."""
    import numpy as np

    from app.configs import engine_config
    from app.settings import Settings
    from rag_engine.engine import RagEngine

    settings = Settings(data_dir=data_dir, generator_backend="extractive", reranker_model=None)
    engine = RagEngine(engine_config(settings), generator=None, reranker=None)
    path = OUT / f"{name}.json"
    cache = json.loads(path.read_text())
    with engine.retriever.chunks.searching() as search:
        rows = search.details([int(i) for i in cache["chunk_doc"]], np.zeros(engine.embedder.dim,
                                                                                dtype=np.float32))
    cache["chunk_text"] = {str(i): [r.heading_path, r.text] for i, r in rows.items()}
    path.write_text(json.dumps(cache))
    engine.close()


# -- offline evaluation ---------------------------------------------------------------------------

def fold_of(qid: str) -> int:
    return hashlib.sha1(qid.encode()).digest()[0] % 2


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OUT / f"{name}.json").read_text())
    data["chunk_doc"] = {int(k): v for k, v in data["chunk_doc"].items()}
    if "chunk_text" in data:
        data["chunk_text"] = {int(k): v for k, v in data["chunk_text"].items()}
    for row in data["rows"].values():
        row["vector"] = {int(i): s for i, s in row["vector"]}
        row["lexical"] = {int(i): s for i, s in row["lexical"]}
    return data


def sections(data: dict[str, Any]) -> dict[str, Any]:
    """tts-handbook judged per passage: relevant = the source page's chunk(s) holding the answer's first words.

    The answer of a qa.jsonl line is the text under the question's heading, so its first 8 words (5 when
    markdown breaks those up) find the section's chunk; only chunks some query retrieved are searched
    (a question whose section neither side retrieved in its top 100 is left out, and counted)."""
    from rag_engine.eval.answer_eval import load_qa

    def norm(t: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", t.lower()))

    texts = {int(i): norm(f"{t}") for i, (_, t) in data["chunk_text"].items()}
    items = load_qa(SHARED / "tts-handbook" / "qa.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    for k, it in enumerate(items):
        words = norm(it.answer).split()
        for n in (8, 5):
            key = " ".join(words[:n])
            rel = [i for i, t in texts.items() if data["chunk_doc"][i] == it.source and key in t]
            if rel:
                qrels[f"q{k}"] = {str(i): 1 for i in rel}
                break
    missing = len(items) - len(qrels)
    print(f"tts-handbook-sections: {len(qrels)} of {len(items)} questions judged ({missing} left out)")
    return {"name": "tts-handbook-sections", "qrels": qrels, "rows": {q: data["rows"][q] for q in qrels},
            "chunk_doc": {i: str(i) for i in data["chunk_doc"]}}


def doc_run(fused: dict[int, float], chunk_doc: dict[int, str], depth: int = DEPTH) -> dict[str, float]:
    """Chunks -> documents by their best chunk, the engine's order kept (as ``hits_to_run``)."""
    run: dict[str, float] = {}
    for i in sorted(fused, key=lambda c: (-fused[c], c))[:depth]:
        doc = chunk_doc[i]
        if doc not in run:
            run[doc] = float(depth - len(run))
    return run


def score(data: dict[str, Any], qids: Sequence[str], fuse: Callable[[dict[str, Any]], dict[int, float]],
          ) -> dict[str, float]:
    from rag_engine.eval.retrieval_eval import evaluate_run

    qrels = {q: data["qrels"][q] for q in qids}
    run = {q: doc_run(fuse({**data["rows"][q], "qid": q}), data["chunk_doc"]) for q in qids}
    return evaluate_run(qrels, run, ("ndcg@10", "hit_rate@5"))


GRID = [i / 20 for i in range(21)]  # vector weights the per-query curves are tabulated at
FEATURES = ("vector_top", "vector_spread", "lexical_spread", "overlap", "lexical_found")


def ndcg10(ranked: Sequence[str], rels: dict[str, int]) -> float:
    """nDCG@10 with linear gains (as ranx / trec_eval)."""
    dcg = sum(rels.get(d, 0) / math.log2(r + 2) for r, d in enumerate(ranked[:10]))
    ideal = sorted(rels.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


@dataclass(slots=True)
class Prepared:
    """Per query: its signals and its nDCG@10 at every grid weight."""

    qids: list[str]
    x: np.ndarray  # (queries, features)
    curves: np.ndarray  # (queries, len(GRID))
    folds: np.ndarray


def prepare(data: dict[str, Any]) -> Prepared:
    from rag_engine.fusion import convex, signals

    qids = sorted(data["rows"])
    xs, curves = [], []
    for q in qids:
        row = data["rows"][q]
        xs.append(signals(row["vector"], row["lexical"], DEPTH).vector())
        curve = []
        for w in GRID:
            fused = convex((row["vector"], row["lexical"]), (w, 1.0 - w))
            curve.append(ndcg10(list(doc_run(fused, data["chunk_doc"])), data["qrels"][q]))
        curves.append(curve)
    return Prepared(qids, np.array(xs), np.array(curves), np.array([fold_of(q) for q in qids]))


def interp(curves: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each query's nDCG@10 at its own weight, linear between grid points (smooth enough to optimize)."""
    pos = np.clip(w, 0.0, 1.0) * (len(GRID) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(GRID) - 2)
    frac = pos - lo
    rows = np.arange(len(w))
    return curves[rows, lo] * (1 - frac) + curves[rows, lo + 1] * frac


def fit(sets: Sequence[tuple[np.ndarray, np.ndarray]], features: Sequence[int], l2: float, seed: int = 0,
        restarts: int = 5) -> Any:
    """Logistic weight model on ``features`` (indices into FEATURES; the others get 0) maximizing the mean
    (over sets, each counted once) of each set's mean nDCG@10, with an L2 penalty on standardized slopes."""
    from scipy.optimize import minimize

    from rag_engine.fusion import AdaptiveModel

    cols = list(features)
    allx = np.vstack([x[:, cols] for x, _ in sets])
    mu, sd = allx.mean(0), allx.std(0) + 1e-9

    def objective(theta: np.ndarray) -> float:
        total = 0.0
        for x, curves in sets:
            w = 1 / (1 + np.exp(-(theta[0] + ((x[:, cols] - mu) / sd) @ theta[1:])))
            total += interp(curves, w).mean()
        return -total / len(sets) + l2 * float(theta[1:] @ theta[1:])

    rng = np.random.default_rng(seed)
    starts = [np.r_[math.log(0.7 / 0.3), np.zeros(len(cols))]] + [
        np.r_[rng.normal(0.85, 1.0), rng.normal(0, 1.0, len(cols))] for _ in range(restarts)]
    best = min((minimize(objective, s0, method="Nelder-Mead", options={"maxiter": 3000, "xatol": 1e-4,
                                                                          "fatol": 1e-6}) for s0 in starts),
               key=lambda r: r.fun)
    a, b = best.x[0], best.x[1:]
    coefficients = [0.0] * len(FEATURES)
    for j, c in zip(cols, b / sd, strict=True):
        coefficients[j] = round(float(c), 4)
    return AdaptiveModel(intercept=round(float(a - (b * mu / sd).sum()), 4), coefficients=tuple(coefficients))


# what the inner cross-validation chooses among: each signal alone, the best cosine with each other one, all five
CANDIDATES: list[tuple[tuple[int, ...], float]] = [((j,), l2) for j in range(5) for l2 in (0.001, 0.01)] + [
    ((0, j), l2) for j in range(1, 5) for l2 in (0.001, 0.01)] + [((0, 1, 2, 3, 4), l2) for l2 in (0.001, 0.01)]


def inner_fold(qid: str) -> int:
    return hashlib.sha1(qid.encode()).digest()[1] % 2


def select_and_fit(prep: dict[str, Prepared], rows: dict[str, np.ndarray]) -> tuple[Any, tuple[tuple[int, ...], float]]:
    """Choose features and penalty by 2-fold CV *inside* the given rows, then fit on all of them."""
    inner = {n: np.array([inner_fold(q) for q in p.qids]) for n, p in prep.items()}
    best: tuple[float, tuple[tuple[int, ...], float]] | None = None
    for features, l2 in CANDIDATES:
        total = []
        for g in (0, 1):
            m = fit([(p.x[rows[n] & (inner[n] != g)], p.curves[rows[n] & (inner[n] != g)]) for n, p in prep.items()],
                    features, l2)
            total += [interp(p.curves[rows[n] & (inner[n] == g)], weights(m, p.x[rows[n] & (inner[n] == g)]))
                      for n, p in prep.items()]
        per_set = [np.concatenate([total[i], total[i + len(prep)]]).mean() for i in range(len(prep))]
        value = float(np.mean(per_set))
        if best is None or value > best[0]:
            best = (value, (features, l2))
    assert best is not None
    features, l2 = best[1]
    return fit([(p.x[rows[n]], p.curves[rows[n]]) for n, p in prep.items()], features, l2), best[1]


def weights(model: Any, x: np.ndarray) -> np.ndarray:
    z = model.intercept + x @ np.array(model.coefficients)
    return np.clip(1 / (1 + np.exp(-np.clip(z, -30, 30))), model.low, model.high)


def evaluate(sets: Sequence[str], show_fit: bool) -> None:
    from rag_engine.fusion import adaptive, convex

    datas = {n: load(n) for n in sets}
    if "tts-handbook" in datas and "chunk_text" in datas["tts-handbook"]:
        datas["tts-handbook-sections"] = sections(datas["tts-handbook"])
    prep = {n: prepare(d) for n, d in datas.items()}
    oof: dict[str, dict[str, float]] = {n: {} for n in datas}  # query -> weight from the model of the other fold
    models = {}
    for f in (0, 1):
        models[f], chosen = select_and_fit(prep, {n: p.folds != f for n, p in prep.items()})
        print(f"fold {f} held out; chosen on the other by inner CV: {[FEATURES[j] for j in chosen[0]]} "
              f"l2={chosen[1]}; fitted there: {models[f]}", flush=True)
        for n, p in prep.items():
            held = p.folds == f
            for q, w in zip(np.array(p.qids)[held], weights(models[f], p.x[held]), strict=True):
                oof[n][str(q)] = float(w)

    def fixed(w: float) -> Callable[[dict[str, Any]], dict[int, float]]:
        return lambda row: convex((row["vector"], row["lexical"]), (w, 1.0 - w))

    learned = learned_weights(prep, datas)  # set -> query -> the weight learned from the other fold

    lines = []
    for n, data in datas.items():
        p = prep[n]
        for label, qids in (("all (out-of-fold)", p.qids), ("fold 0", [q for q, f in zip(p.qids, p.folds, strict=True)
                                                                         if f == 0]),
                            ("fold 1", [q for q, f in zip(p.qids, p.folds, strict=True) if f == 1])):
            res = {"vector": score(data, qids, lambda row: row["vector"]),
                   "lexical": score(data, qids, lambda row: row["lexical"]),
                   "hybrid 0.7/0.3": score(data, qids, fixed(0.7))}
            held_w = oof[n]

            def out_of_fold(row: dict[str, Any], held_w: dict[str, float] = held_w) -> dict[int, float]:
                w = held_w[row["qid"]]
                return convex((row["vector"], row["lexical"]), (w, 1 - w))

            res["adaptive"] = score(data, qids, out_of_fold)
            res["learned per collection"] = score(
                data, qids, lambda row, n=n: fixed(learned[n][row["qid"]])(row))
            ws = [held_w[q] for q in qids]
            lines.append((n, label, len(qids), res, float(np.mean(ws))))
            print(f"{n:13s} {label:18s} n={len(qids):3d} " + "  ".join(
                f"{m} {r['ndcg@10']:.4f}/{r['hit_rate@5']:.3f}" for m, r in res.items())
                + f"  mean w {np.mean(ws):.2f}", flush=True)
        best = p.curves.max(1).mean()
        print(f"{n:13s} oracle per-query weight (upper bound, in-sample) nDCG@10 {best:.4f}")
    if show_fit:
        model, chosen = select_and_fit(prep, {n: np.ones(len(p.qids), dtype=bool) for n, p in prep.items()})
        print(f"chosen on all queries: {[FEATURES[j] for j in chosen[0]]} l2={chosen[1]}")
        print(f"fitted on all queries (the shipped model): {model}")
        for n, data in datas.items():
            r = score(data, prep[n].qids, lambda row: adaptive(row["vector"], row["lexical"], DEPTH, model)[0])
            print(f"{n:13s} shipped model in-sample nDCG@10 {r['ndcg@10']:.4f} hit@5 {r['hit_rate@5']:.3f}")
    transfer(prep)
    write_markdown([(n, k, res) for n, label, k, res, _ in lines if label.startswith("all")])
    (OUT / "table.json").write_text(json.dumps(
        [{"set": n, "rows": label, "queries": k, "results": res, "mean_vector_weight": mw}
         for n, label, k, res, mw in lines], indent=2))


def learned_weights(prep: dict[str, Prepared], datas: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The fusion weight a retrieval version learns per collection (``rag_engine.training.fusion_weights``),
    replayed out-of-fold: the other fold's questions are the feedback, split as the product splits it (by
    question hash, 20 % held out), the weight fitted on the rest and kept only when the held-out questions'
    nDCG@10 beats the configured 0.7 by the gate's margin (0.01; the hit@5 clause is not replayed)."""
    from rag_engine.training.dataset import is_heldout, question_key
    from rag_engine.training.fusion_weights import MIN_QUESTIONS, best_weight

    out: dict[str, dict[str, float]] = {}
    for n, p in prep.items():
        held = np.array([is_heldout(question_key(datas[n]["rows"][q]["query"]), 0.2) for q in p.qids])
        out[n] = {}
        for f in (0, 1):
            train, gate = (p.folds != f) & ~held, (p.folds != f) & held
            w = best_weight(p.curves[train].tolist(), GRID, 0.7) if train.sum() >= MIN_QUESTIONS else 0.7
            j = GRID.index(w)
            if not gate.any() or p.curves[gate, j].mean() < p.curves[gate, GRID.index(0.7)].mean() + 0.01:
                w = 0.7
            print(f"{n}: fold {f} learned weight {w:.2f} (fitted on {int(train.sum())}, gate on {int(gate.sum())})")
            out[n].update({q: w for q, f_ in zip(p.qids, p.folds, strict=True) if f_ == f})
    return out


def transfer(prep: dict[str, Prepared]) -> None:
    """Fit on one corpus only, measure on the other: does the rule carry to a corpus it never saw?"""
    pairs = [("msmarco-5k", "tts-handbook-sections"), ("tts-handbook-sections", "msmarco-5k")]
    for train, test in ((a, b) for a, b in pairs if a in prep and b in prep):
        model, chosen = select_and_fit({train: prep[train]}, {train: np.ones(len(prep[train].qids), dtype=bool)})
        p, fitted = prep[test], prep[train].curves.mean(0)
        w = weights(model, p.x)
        best_fixed = int(fitted.argmax())
        print(f"transfer {train} -> {test}: adaptive {interp(p.curves, w).mean():.4f} (signals "
              f"{[FEATURES[j] for j in chosen[0]]}, mean w {w.mean():.2f}); fixed weight tuned on {train} "
              f"({GRID[best_fixed]:.2f}) {p.curves[:, best_fixed].mean():.4f}; fixed 0.7 {p.curves[:, 14].mean():.4f}; "
              f"vector {p.curves[:, -1].mean():.4f}; lexical {p.curves[:, 0].mean():.4f}")


def write_markdown(rows: Sequence[tuple[str, int, dict[str, dict[str, float]]]]) -> None:
    """The docs table: nDCG@10 / hit@5 per set and mode, adaptive out-of-fold; mean over the sets last."""
    modes = list(rows[0][2])
    out = ["| set | queries | " + " | ".join(modes) + " |", "|---|---:|" + "---:|" * len(modes)]
    for n, k, res in rows:
        out.append(f"| {n} | {k} | " + " | ".join(f"{res[m]['ndcg@10']:.4f} / {res[m]['hit_rate@5']:.3f}"
                                                   for m in modes) + " |")
    def mean(mode: str, metric: str) -> float:
        return float(np.mean([r[mode][metric] for _, _, r in rows]))

    out.append("| mean | | " + " | ".join(f"{mean(m, 'ndcg@10'):.4f} / {mean(m, 'hit_rate@5'):.3f}"
                                         for m in modes) + " |")
    (OUT / "table.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["collect", "details", "evaluate"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/fusion/data"))
    parser.add_argument("--sets", nargs="+", default=["tts-handbook", "msmarco-5k", "examples-handbook"])
    parser.add_argument("--fit", action="store_true", help="also fit on every query (the shipped model)")
    args = parser.parse_args()
    if args.step == "collect":
        collect(args.data_dir, args.sets)
    elif args.step == "details":
        for name in args.sets:
            add_details(args.data_dir, name)
    else:
        evaluate(args.sets, args.fit)


if __name__ == "__main__":
    main()
