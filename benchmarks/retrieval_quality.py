"""Retrieval quality on a BEIR data set: the project's modes next to reference
implementations on the same data, in one run.

    .venv/bin/python benchmarks/retrieval_quality.py [--data ../shared/eval/msmarco-5k] [--backend onnx-int8]
        [--sweep]

References: BM25 with ``bm25s`` (Snowball stemmer, English stop words), exact
dense search with numpy over the very embeddings stored in Postgres, and their
fusions (RRF k=60, dense-weighted RRF 3:1, convex 0.7 dense), each over the top
100 of both. If the Postgres modes match the references, nothing is lost inside
the database. ``--sweep`` also runs the fusion settings the defaults were chosen
from. The corpus is ingested once into a persistent data directory
(``benchmarks/out/data``); later runs re-embed nothing.

Writes ``benchmarks/out/retrieval_quality-<backend>.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.configs import engine_config
from app.settings import Settings
from rag_engine.engine import RagEngine
from rag_engine.eval.beir import BeirDataset, doc_id_of, load_beir
from rag_engine.eval.retrieval_eval import EVAL_DEPTH, evaluate_run, ingest_dataset, plot_retrieval, run_mode
from rag_engine.eval.scores import latency_summary
from rag_engine.retrieval import Retriever, convex, rrf

Run = dict[str, dict[str, float]]

SWEEP = [
    {"fusion": "rrf", "rrf_k": 60, "vector_weight": 1.0, "lexical_weight": 1.0},
    {"fusion": "rrf", "rrf_k": 60, "vector_weight": 2.0, "lexical_weight": 1.0},
    {"fusion": "rrf", "rrf_k": 60, "vector_weight": 3.0, "lexical_weight": 1.0},
    {"fusion": "rrf", "rrf_k": 20, "vector_weight": 3.0, "lexical_weight": 1.0},
    {"fusion": "convex", "vector_weight": 0.5, "lexical_weight": 0.5},
    {"fusion": "convex", "vector_weight": 0.6, "lexical_weight": 0.4},
    {"fusion": "convex", "vector_weight": 0.7, "lexical_weight": 0.3},
    {"fusion": "convex", "vector_weight": 0.8, "lexical_weight": 0.2},
]


def ranked_run(scores: dict[str, dict[str, float]], depth: int = EVAL_DEPTH) -> Run:
    return {q: dict(sorted(s.items(), key=lambda kv: -kv[1])[:depth]) for q, s in scores.items()}


def bm25s_run(ds: BeirDataset) -> tuple[Run, list[float]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    ids = list(ds.corpus)
    texts = [f"{t} {x}".strip() for t, x in ds.corpus.values()]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    run: Run = {}
    seconds = []
    for qid, query in ds.queries.items():
        t0 = time.perf_counter()
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        docs, scores = retriever.retrieve(tokens, k=EVAL_DEPTH, show_progress=False)
        seconds.append(time.perf_counter() - t0)
        run[qid] = {ids[int(d)]: float(s) for d, s in zip(docs[0], scores[0], strict=True) if s > 0}
    return run, seconds


def exact_dense_run(engine: RagEngine, ds: BeirDataset, collection_id: int) -> tuple[Run, list[float]]:
    """Numpy over the embeddings stored in Postgres; a document scores its best chunk."""
    from sqlalchemy import text

    with engine.db.connect() as conn:
        rows = conn.execute(text("SELECT d.source_uri, c.embedding::real[] FROM chunks c JOIN documents d "
                                 "ON d.id = c.document_id WHERE c.collection_id = :cid"), {"cid": collection_id}).all()
    doc_ids = [doc_id_of(r[0]) for r in rows]
    matrix = np.vstack([np.asarray(r[1], dtype=np.float32) for r in rows])
    run: Run = {}
    seconds = []
    for qid, query in ds.queries.items():
        t0 = time.perf_counter()
        sims = matrix @ engine.embedder.embed_query(query)
        best: dict[str, float] = {}
        for i in np.argsort(-sims)[: EVAL_DEPTH * 2]:
            best.setdefault(doc_ids[i], float(sims[i]))
        seconds.append(time.perf_counter() - t0)
        run[qid] = dict(list(best.items())[:EVAL_DEPTH])
    return run, seconds


def fuse_runs(dense: Run, sparse: Run, how: str, w_dense: float, w_sparse: float, k: int = 60) -> Run:
    out: Run = {}
    for q in dense.keys() | sparse.keys():
        d, s = dense.get(q, {}), sparse.get(q, {})
        weights = [w_dense, w_sparse]
        out[q] = rrf([list(d), list(s)], weights, k) if how == "rrf" else convex([d, s], weights)
    return ranked_run(out)


def label(overrides: dict) -> str:
    if overrides.get("fusion") == "rrf":
        text = f"hybrid rrf k={overrides['rrf_k']} {overrides['vector_weight']:g}:{overrides['lexical_weight']:g}"
    else:
        text = f"hybrid convex {overrides['vector_weight']:g}/{overrides['lexical_weight']:g}"
    if "candidate_depth" in overrides:
        text += f" depth={overrides['candidate_depth']}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "eval" / "msmarco-5k")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "data")
    parser.add_argument("--backend", choices=["torch", "onnx-int8"], default=None,
                        help="embedding backend (default: the configured one)")
    parser.add_argument("--sweep", action="store_true", help="also run the fusion settings grid")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()

    overrides = {"data_dir": args.data_dir, "generator_backend": "extractive", "reranker_model": None}
    if args.backend:
        overrides["embedding_backend"] = args.backend
    settings = Settings(**overrides)
    ds = load_beir(args.data)
    engine = RagEngine(engine_config(settings), generator=None, reranker=None)
    collection = f"eval-{ds.name}-{engine.embedder.backend}"
    report = ingest_dataset(engine, ds, collection)
    print(f"{collection}: {report.documents_written} written, {report.documents_unchanged} unchanged, "
          f"{report.embedded} embedded ({report.seconds:.0f}s)", flush=True)
    scope = engine.scope_for([collection])

    results: list[dict] = []

    def add(name: str, run: Run, seconds: list[float] | None, kind: str) -> None:
        metrics = evaluate_run(ds.qrels, run)
        results.append({"name": name, "kind": kind, "metrics": metrics,
                        "latency": latency_summary(seconds) if seconds else {}})
        print(f"{name:42s} " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)

    runs: dict[str, Run] = {}
    for mode in ("vector", "lexical", "hybrid"):
        runs[mode], seconds = run_mode(engine, ds, scope, mode)
        add(f"postgres {mode}" + (" (defaults)" if mode == "hybrid" else ""), runs[mode], seconds, "project")
    legacy = Retriever(engine.store.chunks, engine.embedder,
                       engine_config(settings.model_copy(update={"lexical_scoring": "ts_rank_cd"})).retrieval)
    engine.retriever, saved = legacy, engine.retriever
    run, seconds = run_mode(engine, ds, scope, "lexical")
    add("postgres lexical ts_rank_cd (before)", run, seconds, "project")
    if args.sweep:
        for sweep in SWEEP:
            engine.retriever = Retriever(engine.store.chunks, engine.embedder,
                                         engine_config(settings.model_copy(update=sweep)).retrieval)
            run, seconds = run_mode(engine, ds, scope, "hybrid")
            add(f"postgres {label(sweep)}", run, seconds, "sweep")
        # candidate depth only matters when fewer than it are asked for: top-10 runs (nDCG@10 / Recall@10 only)
        for depth in (20, 50, 100):
            engine.retriever = Retriever(engine.store.chunks, engine.embedder, engine_config(settings.model_copy(
                update={"candidate_depth": depth})).retrieval)
            run, seconds = run_mode(engine, ds, scope, "hybrid", depth=10)
            add(f"postgres hybrid top-10, candidate_depth={depth}", run, seconds, "sweep")
    engine.retriever = saved

    sparse, seconds = bm25s_run(ds)
    add("ref bm25s", sparse, seconds, "reference")
    dense, seconds = exact_dense_run(engine, ds, scope.ids()[0])
    add("ref exact dense (numpy)", dense, seconds, "reference")
    add("ref rrf k=60 1:1", fuse_runs(dense, sparse, "rrf", 1, 1), None, "reference")
    add("ref rrf k=60 3:1", fuse_runs(dense, sparse, "rrf", 3, 1), None, "reference")
    add("ref convex 0.7/0.3", fuse_runs(dense, sparse, "convex", 0.7, 0.3), None, "reference")

    print_table(results, ds)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"retrieval_quality-{engine.embedder.backend}"
    stem.with_suffix(".json").write_text(json.dumps({
        "dataset": ds.name, "queries": len(ds.queries), "documents": len(ds.corpus),
        "embedding_backend": engine.embedder.backend,
        "settings": {k: getattr(settings, k) for k in ("fusion", "rrf_k", "vector_weight", "lexical_weight",
                                                       "candidate_depth", "lexical_scoring", "bm25_k1", "bm25_b",
                                                       "context_weight", "hnsw_ef_search", "chunk_tokens",
                                                       "chunk_overlap")},
        "results": results}, indent=2))
    shown = [r for r in results if r["kind"] != "sweep"]
    plot_retrieval([(r["name"], r["metrics"], r["latency"]) for r in shown], stem.with_suffix(".png"), ds.name)
    print(f"wrote {stem}.json and {stem}.png")


def print_table(results: list[dict], ds: BeirDataset) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{ds.name}: {len(ds.queries)} queries, {len(ds.corpus)} passages")
    table.add_column("run")
    names = list(results[0]["metrics"])
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for r in results:
        lat = r["latency"]
        table.add_row(r["name"], *[f"{r['metrics'][n]:.4f}" for n in names],
                      f"{lat['p50_ms']:.1f}" if lat else "", f"{lat['p95_ms']:.1f}" if lat else "")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
