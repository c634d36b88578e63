"""Retrieval evaluation: ingest a BEIR corpus through the normal path, run every
query in each search mode, score the runs with ``ranx``.

Chunks are mapped back to their documents (first, i.e. best, chunk per
document), because BEIR judgments are per document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from rag_engine.config import Fusion
from rag_engine.engine import RagEngine
from rag_engine.eval.beir import BeirDataset, doc_id_of
from rag_engine.eval.scores import latency_summary
from rag_engine.query_transform import ActiveQueryAdapter, PinnedQueryAdapter, QueryAdapter, QueryTransform
from rag_engine.scope import CollectionScope
from rag_engine.values import IngestReport, SearchHit, SearchMode

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
EVAL_DEPTH = 100  # chunks retrieved per query: Recall@100 needs 100
BASE_MODES = ("vector", "lexical", "hybrid")
ADAPTIVE_MODE = "adaptive"  # hybrid with the per-query fusion (rag_engine.fusion), whatever RAGBOT_FUSION says
RERANK_MODE = "hybrid+rerank"

Run = dict[str, dict[str, float]]  # query id -> {doc id: score}


@dataclass(slots=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]
    latency: dict[str, float]  # p50_ms, p95_ms, mean_ms (the whole search call, query embedding included)


@dataclass(slots=True)
class RetrievalEvalResult:
    dataset: str
    collection: str
    queries: int
    documents: int
    ingest: dict[str, float | int]
    modes: list[ModeResult] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mode(self, name: str) -> ModeResult:
        return next(m for m in self.modes if m.mode == name)


def hits_to_run(hits: Sequence[SearchHit], depth: int = EVAL_DEPTH) -> dict[str, float]:
    """Document scores that keep the engine's order exactly (ties in fused scores included)."""
    run: dict[str, float] = {}
    for hit in hits:
        doc = doc_id_of(hit.source_uri)
        if doc not in run:
            run[doc] = float(depth - len(run))
    return run


def evaluate_run(qrels: dict[str, dict[str, int]], run: Run, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query without results scores 0)."""
    # ranx (numba) is heavy: loaded only when a run is scored
    from ranx import Qrels, evaluate
    from ranx import Run as RanxRun  # lazy: as above

    full = {q: dict(run.get(q, {})) for q in qrels}
    scores = evaluate(Qrels.from_dict(qrels), RanxRun.from_dict(full), list(metrics), make_comparable=True)
    if isinstance(scores, float):  # ranx returns a bare float for a single metric
        scores = {metrics[0]: scores}
    return {name: float(scores[name]) for name in metrics}


def ingest_dataset(engine: RagEngine, dataset: BeirDataset, collection: str,
                   progress: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest the corpus into ``collection``; unchanged documents are neither re-chunked nor re-embedded."""
    return engine.ingest_records(list(dataset.records()), collection, progress=progress)


def run_mode(engine: RagEngine, dataset: BeirDataset, scope: CollectionScope, mode: str, *, depth: int = EVAL_DEPTH,
             progress: Callable[[], None] | None = None) -> tuple[Run, list[float]]:
    """Every query of ``dataset`` in ``mode``; returns the run and per-query seconds."""
    rerank = mode == RERANK_MODE
    search_mode = "hybrid" if mode in (RERANK_MODE, ADAPTIVE_MODE) else cast(SearchMode, mode)
    fusion: Fusion | None = "adaptive" if mode == ADAPTIVE_MODE else None
    run: Run = {}
    seconds: list[float] = []
    for qid, query in dataset.queries.items():
        t0 = time.perf_counter()
        hits = engine.retriever.search(query, scope, depth, search_mode, rerank=rerank, fusion=fusion)
        seconds.append(time.perf_counter() - t0)
        run[qid] = hits_to_run(hits, depth)
        if progress:
            progress()
    return run, seconds


@dataclass(frozen=True, slots=True)
class RetrieverVersion:
    """A retrieval version pinned for an eval run: its label and the query transform (None: raw queries)."""

    label: str
    transform: QueryTransform | None


def retriever_versions(engine: RagEngine, version: str) -> list[RetrieverVersion]:
    """The active retrieval version (raw queries when none is active) and ``version``, to compare side by side.

    A version trained for another embedder is refused: its matrix would be applied to vectors it never saw."""
    repo = engine.store.query_adapters
    record = repo.get(version)
    if record is None:
        raise ValueError(f"no retrieval version {version!r} (see `ragbot retrieval list`)")
    model, dim = engine.embedder.model_name, engine.embedder.dim
    if (record.embedding_model, record.dim) != (model, dim):
        raise ValueError(f"retrieval version {version} fits embedder {record.embedding_model} (dim {record.dim}), "
                         f"not the configured {model} (dim {dim})")
    found = repo.weights(version)
    if found is None:
        raise ValueError(f"retrieval version {version!r} was deleted meanwhile")
    candidate = RetrieverVersion(version, PinnedQueryAdapter(version, QueryAdapter.from_bytes(found[2])))
    # what searches apply now, as they load it (a version that does not fit this embedder: raw queries)
    serving = engine.retriever.query_adapter
    active, transform = serving.current() if isinstance(serving, ActiveQueryAdapter) else (None, None)
    if active is None:
        return [RetrieverVersion("raw", None), candidate]
    if active == version:
        return [candidate]
    if transform is None:  # active, but fits another embedder: searches apply raw queries
        return [RetrieverVersion("raw", None), candidate]
    return [RetrieverVersion(f"active {active}", PinnedQueryAdapter(active, transform)), candidate]


@contextmanager
def pinned(engine: RagEngine, version: RetrieverVersion) -> Iterator[None]:
    """Searches of this process apply ``version`` (whatever is active) until the block ends."""
    before = engine.retriever.query_adapter
    engine.retriever.query_adapter = version.transform
    try:
        yield
    finally:
        engine.retriever.query_adapter = before


def available_modes(engine: RagEngine) -> list[str]:
    """The default modes (``adaptive`` is run when asked for)."""
    return [*BASE_MODES, RERANK_MODE] if engine.retriever.reranker is not None else list(BASE_MODES)


ALL_MODES = (*BASE_MODES, ADAPTIVE_MODE, RERANK_MODE)


def evaluate_retrieval(engine: RagEngine, dataset: BeirDataset, collection: str, *, modes: Sequence[str] | None = None,
                       depth: int = EVAL_DEPTH, on_document: Callable[[str], None] | None = None,
                       on_query: Callable[[str], None] | None = None,
                       versions: Sequence[RetrieverVersion] = ()) -> RetrievalEvalResult:
    """Ingest (cached), then every mode; ``on_document(uri)`` / ``on_query(mode)`` report progress.

    With ``versions`` (``retriever_versions``), every mode that searches vectors runs once per version,
    reported as ``<mode> [<label>]``; lexical search, which no query transform touches, runs once."""
    modes = list(modes or available_modes(engine))
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise ValueError(f"unknown mode {unknown[0]!r}: use {', '.join(ALL_MODES)}")
    if RERANK_MODE in modes and engine.retriever.reranker is None:
        raise ValueError("hybrid+rerank needs a reranker: set RAGBOT_RERANKER_MODEL")
    report = ingest_dataset(engine, dataset, collection, progress=on_document)
    scope = engine.scope_for([collection])
    s, chunking = engine.config.retrieval, engine.config.ingest
    result = RetrievalEvalResult(
        dataset=dataset.name, collection=collection, queries=len(dataset.queries), documents=len(dataset.corpus),
        ingest={"documents_written": report.documents_written, "documents_unchanged": report.documents_unchanged,
                "chunks_written": report.chunks_written, "embedded": report.embedded,
                "skipped": len(report.skipped), "seconds": round(report.seconds, 3)},
        settings={"embedding_model": engine.embedder.model_name, "embedding_backend": engine.embedder.backend,
                  "fusion": s.fusion, "rrf_k": s.rrf_k, "vector_weight": s.vector_weight,
                  "lexical_weight": s.lexical_weight, "candidate_depth": s.candidate_depth,
                  "hnsw_ef_search": s.hnsw_ef_search, "chunk_tokens": chunking.chunk_tokens,
                  "chunk_overlap": chunking.chunk_overlap, "reranker_model": s.reranker_model,
                  "rerank_depth": s.rerank_depth, "depth": depth},
    )
    if versions:
        result.settings["retriever_versions"] = [v.label for v in versions]
    for mode in modes:
        for version in versions if versions and mode != "lexical" else (None,):
            name = mode if version is None else f"{mode} [{version.label}]"
            step = (lambda name=name: on_query(name)) if on_query else None
            with pinned(engine, version) if version is not None else nullcontext():
                run, seconds = run_mode(engine, dataset, scope, mode, depth=depth, progress=step)
            result.modes.append(ModeResult(name, evaluate_run(dataset.qrels, run), latency_summary(seconds)))
    return result


def plot_retrieval(rows: Sequence[tuple[str, dict[str, float], dict[str, float]]], path: Path | str,
                   title: str = "") -> None:
    """Grouped bars of the metrics per mode, and p50/p95 latency per mode. ``rows``: (mode, metrics, latency)."""
    import matplotlib  # lazy: matplotlib loads only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the Agg backend is chosen

    metric_names = list(rows[0][1]) if rows else list(METRICS)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    x = np.arange(len(metric_names))
    width = 0.8 / max(1, len(rows))
    for i, (name, metrics, _) in enumerate(rows):
        bars = ax1.bar(x + i * width - 0.4 + width / 2, [metrics[m] for m in metric_names], width, label=name)
        ax1.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax1.set_xticks(x, metric_names)
    ax1.set_ylim(0, 1.1)
    ax1.set_ylabel("score")
    ax1.set_title(f"retrieval quality {title}".strip())
    ax1.legend(fontsize=7, ncol=2)
    timed = [(n, lat) for n, _, lat in rows if lat]
    y = np.arange(len(timed))
    ax2.barh(y - 0.2, [lat["p50_ms"] for _, lat in timed], 0.4, label="p50")
    ax2.barh(y + 0.2, [lat["p95_ms"] for _, lat in timed], 0.4, label="p95")
    ax2.set_yticks(y, [n for n, _ in timed])
    ax2.set_xlabel("query latency (ms)")
    ax2.set_title("latency")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
