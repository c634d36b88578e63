"""Vector search at scale: pgvector HNSW (vector and halfvec) vs FAISS HNSW vs exact scans.

    .venv/bin/python benchmarks/scale.py --n 10000,100000,1000000   # 1M: ~20 min on 2 cores, ~12 GB RAM

Vectors: embedding real text is not affordable at these sizes on a CPU
(~20-50 passages/s), so the set is synthetic, drawn from one fixed distribution
whatever N is (a bigger N is a denser sample, as a growing corpus of the same
domain would be): 500 topics whose centres lie on an 8-dimensional sphere (so
neighbouring topics overlap, as subjects in a real corpus shade into each
other), each topic a 12-dimensional Gaussian in its own random subspace
(spread 0.6), plus isotropic noise (0.3) in all dimensions and a shared offset
that gives unrelated pairs a small positive cosine, L2-normalized.
The parameters were chosen so that a 5,000-point sample has the neighbourhood
statistics of real all-MiniLM-L6-v2 embeddings of the 5,000 msmarco-5k
passages: cosine of random pairs and of the 1st/10th/20th nearest neighbour,
local intrinsic dimensionality (MLE over 20 neighbours), and a 10-NN graph that
is one connected piece. The script prints both rows when the corpus is at hand
(``--real``). Two earlier generators failed that comparison and gave
misleading recall: a tree of isotropic noise had an intrinsic dimensionality of
~105 (real: ~10), so exact neighbours at 1M were arbitrary; 50 well-separated
topics matched the local statistics but split the 10-NN graph into 50 islands,
and a few queries per hundred never reached their island (recall 0 whatever
the ef_search). Queries are fresh points from the same distribution (not in
the base set). The dimension is the configured embedder's.

Rows go through the project's own schema (``collections`` / ``documents`` /
``chunks``) with a binary ``COPY``; the schema's HNSW index is dropped for the
load and rebuilt (timed) with the migration's parameters (m=16,
ef_construction=64), then again as a ``halfvec`` expression index. The embedded
server is restarted with ``--shared-buffers`` (default 6 GB, so the indexes stay
cached as they should in production) and builds get ``--maintenance-work-mem``
(the graph must fit). FAISS ``IndexHNSWFlat`` gets the same M / efConstruction /
efSearch. For each ``hnsw.ef_search`` in 40/100/200, after untimed warm-up
queries: recall@10 against the exact answer and query latency p50/p95 (SQL round
trip included), with iterative scans ``relaxed_order`` (the engine's setting)
and ``off`` (like FAISS), and ratios against Postgres' own exact scan and FAISS
measured in the same run. Then a filtered query on a collection holding 1 % of
the rows, with iterative index scans on and off.

Writes ``benchmarks/out/scale-<sizes>.json`` and ``.png``; ``--keep`` leaves
the last size's rows and index in ``--data-dir`` for follow-up queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from app.configs import engine_config, store_config
from app.settings import Settings
from rag_engine.store.database import Database
from rag_engine.store.migrate import ensure_schema

M, EF_CONSTRUCTION = 16, 64  # as in migrations/versions/0001_initial.py
EF_SEARCH = (40, 100, 200)
K = 10


TOPICS, CENTRE_DIM, TOPIC_DIM, SPREAD, NOISE, OFFSET = 500, 8, 12, 0.6, 0.3, 0.16  # see the module docstring
DISTRIBUTION_SEED = 1  # fixes the topics; the sample seed (--seed) draws the points


def topic_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors from the topic mixture described in the module docstring."""
    topics = np.random.default_rng(DISTRIBUTION_SEED)
    offset = topics.normal(size=dim).astype(np.float32)
    offset *= OFFSET / np.linalg.norm(offset)
    centres = topics.normal(size=(TOPICS, CENTRE_DIM)).astype(np.float32) @ topics.normal(
        size=(CENTRE_DIM, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    centres += offset
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = topics.normal(size=(TOPICS, TOPIC_DIM, dim)).astype(np.float32) / np.float32(np.sqrt(dim))
    labels = rng.integers(0, TOPICS, n)
    out = np.empty((n, dim), np.float32)
    for k in range(TOPICS):
        idx = np.flatnonzero(labels == k)
        within = rng.normal(size=(len(idx), TOPIC_DIM)).astype(np.float32) * np.float32(SPREAD / np.sqrt(TOPIC_DIM))
        noise = rng.normal(size=(len(idx), dim)).astype(np.float32) * np.float32(NOISE / np.sqrt(dim))
        out[idx] = centres[k] + within @ bases[k] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def neighbourhood_stats(x: np.ndarray, rng: np.random.Generator, k: int = 20, sample: int = 1000) -> dict:
    """Cosine of random pairs and of the 1st/10th/20th neighbour; local intrinsic dimensionality (MLE)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    idx = rng.choice(len(x), min(sample, len(x)), replace=False)
    sims = x[idx] @ x.T
    sims[np.arange(len(idx)), idx] = -2.0
    top = -np.sort(-sims, axis=1)[:, :k]
    dist = np.sqrt(np.maximum(2 - 2 * top, 1e-12))
    lid = -1 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)
    pairs = x[rng.choice(len(x), 2000)] @ x[rng.choice(len(x), 2000)].T
    return {"random_pair_cos": float(pairs.mean()), "nn1_cos": float(top[:, 0].mean()),
            "nn10_cos": float(top[:, 9].mean()), "nn20_cos": float(top[:, 19].mean()),
            "lid_mle20": float(np.median(lid)), "knn10_largest_component": knn_largest_component(x, 10)}


def knn_largest_component(x: np.ndarray, k: int) -> float:
    """Share of the points in the largest connected piece of the k-nearest-neighbour graph."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = [], []
    for s in range(0, len(x), 1000):
        sims = x[s:s + 1000] @ x.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -2.0
        rows.append(np.repeat(np.arange(s, s + len(sims)), k))
        cols.append(np.argpartition(-sims, k, axis=1)[:, :k].ravel())
    graph = csr_matrix((np.ones(len(x) * k), (np.concatenate(rows), np.concatenate(cols))), shape=(len(x), len(x)))
    _, labels = connected_components(graph, directed=False)
    return float(np.bincount(labels).max() / len(x))


def real_embeddings(corpus_dir: Path, cache: Path, settings: Settings) -> np.ndarray | None:
    """The embedder's vectors for a BEIR corpus (cached), or None when it is not at hand."""
    if not (corpus_dir / "corpus.jsonl").exists():
        return None
    if cache.exists():
        return np.load(cache)
    from rag_engine.embedding import build_embedder
    from rag_engine.eval.beir import load_beir

    corpus = load_beir(corpus_dir).corpus
    vectors = np.asarray(build_embedder(engine_config(settings).embedding).embed_documents(
        [f"{title}\n{text}".strip() for title, text in corpus.values()]), dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    ids = np.arange(len(base))
    if mask is not None:
        base, ids = base[mask], ids[mask]
    result = []
    for s in range(0, len(queries), 50):
        sims = queries[s:s + 50] @ base.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, top, 1).argsort(axis=1)[:, ::-1]
        result.append(ids[np.take_along_axis(top, order, 1)])
    return np.vstack(result)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth, strict=True)]))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q) * 1000)


class PgBench:
    def __init__(self, db: Database, dim: int, maintenance_work_mem: str) -> None:
        self.db = db
        self.dim = dim
        self.raw = db.engine.raw_connection()
        self.conn = self.raw.driver_connection
        self.conn.autocommit = True
        self.conn.execute("SET statement_timeout = 0")
        # the whole graph must fit, or pgvector's build falls back to inserting on disk (several times slower)
        self.conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
        self.conn.execute("SET max_parallel_maintenance_workers = 1")

    def reset(self) -> tuple[int, int]:
        with self.db.begin() as c:
            c.execute(text("TRUNCATE chunks, documents, collections RESTART IDENTITY CASCADE"))
            c.execute(text("DROP INDEX IF EXISTS chunks_embedding_hnsw"))
            c.execute(text("DROP INDEX IF EXISTS chunks_embedding_halfvec_hnsw"))
            big = c.execute(text("INSERT INTO collections (name, allow_training, embedding_model, embedding_backend)"
                                 " VALUES ('scale-99', false, 'synthetic', 'synthetic') RETURNING id")).scalar()
            small = c.execute(text("INSERT INTO collections (name, allow_training, embedding_model, "
                                   "embedding_backend) VALUES ('scale-1', false, 'synthetic', 'synthetic') "
                                   "RETURNING id")).scalar()
        return big, small

    def load(self, vectors: np.ndarray, in_small: np.ndarray, big: int, small: int) -> float:
        """COPY the rows in binary (one document per 1,000 chunks); returns seconds."""
        n = len(vectors)
        per_doc = 1000
        t0 = time.perf_counter()
        with self.conn.cursor() as cur:
            docs = {}
            for cid in (big, small):
                for d in range((n + per_doc - 1) // per_doc):
                    docs[(cid, d)] = cur.execute(
                        "INSERT INTO documents (collection_id, source_uri, title, content_hash) "
                        "VALUES (%s, %s, %s, 'synthetic') RETURNING id", (cid, f"synthetic://{cid}/{d}", f"doc {d}")
                    ).fetchone()[0]
            with cur.copy("COPY chunks (document_id, collection_id, ordinal, text, text_hash, token_count, "
                          "embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "int4", "int4", "text", "text", "int4", "vector"])
                for i in range(n):
                    cid = small if in_small[i] else big
                    copy.write_row((docs[(cid, i // per_doc)], cid, i, f"chunk {i}", f"h{i}", 2, vectors[i]))
        self.conn.execute("VACUUM ANALYZE chunks")
        return time.perf_counter() - t0

    def build(self, kind: str) -> tuple[float, int]:
        if kind == "vector":
            sql = (f"CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
                   f"WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})")
            name = "chunks_embedding_hnsw"
        else:
            sql = (f"CREATE INDEX chunks_embedding_halfvec_hnsw ON chunks USING hnsw "
                   f"((embedding::halfvec({self.dim})) halfvec_cosine_ops) "
                   f"WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})")
            name = "chunks_embedding_halfvec_hnsw"
        t0 = time.perf_counter()
        self.conn.execute(sql)
        seconds = time.perf_counter() - t0
        size = self.conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
        return seconds, int(size)

    def drop(self, kind: str) -> None:
        name = "chunks_embedding_hnsw" if kind == "vector" else "chunks_embedding_halfvec_hnsw"
        self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def query(self, queries: np.ndarray, kind: str, ef: int | None, *, cid: int | None = None,
              iterative: str = "relaxed_order", force_hnsw: bool = False) -> tuple[list[list[int]], list[float]]:
        """Top-K ordinals per query; ef None = exact scan (index scans off)."""
        if kind == "vector":
            order = "embedding <=> %(q)s"
        else:
            order = f"embedding::halfvec({self.dim}) <=> %(q)s::vector::halfvec({self.dim})"
        where = "WHERE collection_id = %(cid)s" if cid is not None else ""
        sql = f"SELECT ordinal FROM chunks {where} ORDER BY {order} LIMIT {K}"
        found, seconds = [], []
        for q in queries:
            with self.conn.transaction():
                if ef is None:
                    self.conn.execute("SET LOCAL enable_indexscan = off")
                else:
                    self.conn.execute("SELECT set_config('hnsw.ef_search', %s, true), "
                                      "set_config('hnsw.iterative_scan', %s, true)", (str(ef), iterative))
                if force_hnsw:
                    self.conn.execute("SET LOCAL enable_seqscan = off")
                    self.conn.execute("SET LOCAL enable_bitmapscan = off")
                t0 = time.perf_counter()
                rows = self.conn.execute(sql, {"q": q, "cid": cid}).fetchall()
                seconds.append(time.perf_counter() - t0)
            found.append([r[0] for r in rows])
        return found, seconds

    def round_trip(self, times: int = 300) -> dict:
        """Latency of a trivial query: the fixed cost every search pays before any vector work."""
        seconds = []
        for _ in range(times):
            t0 = time.perf_counter()
            self.conn.execute("SELECT 1").fetchall()
            seconds.append(time.perf_counter() - t0)
        return {"p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95)}

    def uses_index(self, q: np.ndarray, cid: int | None) -> bool:
        where = "WHERE collection_id = %(cid)s" if cid is not None else ""
        with self.conn.transaction():
            plan = self.conn.execute(f"EXPLAIN SELECT ordinal FROM chunks {where} ORDER BY embedding <=> %(q)s "
                                     f"LIMIT {K}", {"q": q, "cid": cid}).fetchall()
        return any("hnsw" in r[0] for r in plan)


def faiss_bench(base: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time, like a Postgres backend
    index = faiss.IndexHNSWFlat(base.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)
    out = {"build_s": build, "ef": {}}
    for ef in EF_SEARCH:
        index.hnsw.efSearch = ef
        found, seconds = [], []
        for q in queries:
            t0 = time.perf_counter()
            _, ids = index.search(q[None, :], K)
            seconds.append(time.perf_counter() - t0)
            found.append(ids[0].tolist())
        out["ef"][ef] = {"recall@10": recall(found, truth), "p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95)}
    return out


def numpy_exact(base: np.ndarray, queries: np.ndarray) -> dict:
    seconds = []
    base @ queries[0]  # warm-up
    for q in queries[:50]:
        t0 = time.perf_counter()
        sims = base @ q
        np.argpartition(-sims, K)[:K]
        seconds.append(time.perf_counter() - t0)
    return {"p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95)}


def run_one(pg: PgBench, n: int, dim: int, n_queries: int, n_warm: int, exact_queries: int, seed: int,
            log) -> dict:
    rng = np.random.default_rng(seed)
    base = topic_vectors(n, dim, rng)
    queries, warm = topic_vectors(n_queries, dim, rng), topic_vectors(n_warm, dim, rng)
    in_small = rng.random(n) < 0.01
    truth = exact_topk(base, queries, K)
    res: dict = {"n": n, "dim": dim, "queries": n_queries, "warm_up_queries": n_warm}
    big, small = pg.reset()
    res["load_s"] = pg.load(base, in_small, big, small)
    log(f"N={n}: COPY {res['load_s']:.1f}s")
    _, pg_exact_s = pg.query(queries[:exact_queries], "vector", None)
    res["pg_exact"] = {"p50_ms": pct(pg_exact_s, 50), "p95_ms": pct(pg_exact_s, 95)}
    res["numpy_exact"] = numpy_exact(base, queries)
    res["pg_round_trip"] = pg.round_trip()
    log(f"N={n}: exact scan p95 {res['pg_exact']['p95_ms']:.1f} ms")
    for kind in ("vector", "halfvec"):
        build_s, size = pg.build(kind)
        entry = {"build_s": build_s, "index_bytes": size, "ef": {}}
        log(f"N={n}: {kind} HNSW build {build_s:.1f}s, {size / 1e6:.1f} MB")
        for ef in EF_SEARCH:
            pg.query(warm, kind, ef)  # bring the pages these searches touch into shared buffers
            # relaxed_order is what the engine sets (its searches are filtered by collection); an
            # unfiltered search does not need iterative scans, so "off" is the like-for-like FAISS comparison
            for iterative, key in (("relaxed_order", "ef"), ("off", "ef_iterative_off")):
                found, seconds = pg.query(queries, kind, ef, iterative=iterative)
                entry.setdefault(key, {})[ef] = {
                    "recall@10": recall(found, truth), "p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95),
                    "queries_below_half_recall": int(sum(len(set(f) & set(t)) < K / 2
                                                         for f, t in zip(found, truth, strict=True))),
                    "load_avg_1m": os.getloadavg()[0]}
                log(f"N={n}: {kind} ef={ef} iterative={iterative} recall {entry[key][ef]['recall@10']:.3f} "
                    f"p95 {entry[key][ef]['p95_ms']:.2f} ms")
        res[kind] = entry
        if kind == "halfvec":
            pg.drop("halfvec")
    if not _has_index(pg):
        pg.build("vector")
    small_truth = exact_topk(base, queries, K, mask=in_small)
    res["filtered"] = {"rows_in_collection": int(in_small.sum()),
                       "planner_uses_hnsw": pg.uses_index(queries[0], small)}

    def filtered(label: str, setting: str, *, forced: bool) -> None:
        found, seconds = pg.query(queries, "vector", 40, cid=small, iterative=setting, force_hnsw=forced)
        res["filtered"][label] = {"recall@10": recall(found, small_truth),
                                  "rows_returned_mean": float(np.mean([len(f) for f in found])),
                                  "p50_ms": pct(seconds, 50), "p95_ms": pct(seconds, 95)}

    filtered("planner", "relaxed_order", forced=False)  # what the engine gets
    # without the collection_id b-tree and seq scans the only plan left is the HNSW index: shows what
    # iterative scans change when the planner does pick it (large collections, spread rows)
    pg.conn.execute("DROP INDEX IF EXISTS chunks_collection")
    for setting in ("off", "relaxed_order", "strict_order"):
        filtered(f"hnsw/{setting}", setting, forced=True)
    pg.conn.execute("CREATE INDEX chunks_collection ON chunks (collection_id)")
    log(f"N={n}: filtered {json.dumps(res['filtered'])}")
    res["faiss"] = faiss_bench(base, queries, truth)
    log(f"N={n}: faiss build {res['faiss']['build_s']:.1f}s")
    return res


def tune_embedded_server(db: Database, shared_buffers: str) -> str:
    """Give the embedded server a buffer pool that holds the indexes (needs a restart); returns the setting."""
    if db.embedded is None:  # someone else's server: measure it as it is configured
        with db.connect() as c:
            return str(c.execute(text("SHOW shared_buffers")).scalar())
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'"))
    db.engine.dispose()
    db.embedded.stop()
    db.embedded.start()
    with db.connect() as c:
        return str(c.execute(text("SHOW shared_buffers")).scalar())


def _has_index(pg: PgBench) -> bool:
    return pg.conn.execute("SELECT to_regclass('chunks_embedding_hnsw') IS NOT NULL").fetchone()[0]


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pgvector HNSW at scale (synthetic topic-mixture vectors)")
    for col in ("N", "index", "ef", "recall@10", "p50 ms", "p95 ms", "exact/p95", "p95/faiss p95", "build s",
                "index MB"):
        table.add_column(col, justify="right")
    for r in results:
        for kind, key, label in (("vector", "ef", "vector"), ("vector", "ef_iterative_off", "vector, iter. off"),
                                 ("halfvec", "ef", "halfvec"), ("halfvec", "ef_iterative_off", "halfvec, iter. off")):
            for ef, e in r[kind][key].items():
                f = r["faiss"]["ef"][ef]
                table.add_row(f"{r['n']:,}", label, str(ef), f"{e['recall@10']:.3f}", f"{e['p50_ms']:.2f}",
                              f"{e['p95_ms']:.2f}", f"{r['pg_exact']['p95_ms'] / e['p95_ms']:.0f}x",
                              f"{e['p95_ms'] / f['p95_ms']:.1f}x", f"{r[kind]['build_s']:.1f}",
                              f"{r[kind]['index_bytes'] / 1e6:.1f}")
        for ef, f in r["faiss"]["ef"].items():
            table.add_row(f"{r['n']:,}", "faiss", str(ef), f"{f['recall@10']:.3f}", f"{f['p50_ms']:.2f}",
                          f"{f['p95_ms']:.2f}", "", "", f"{r['faiss']['build_s']:.1f}", "")
        table.add_row(f"{r['n']:,}", "pg exact", "", "1.000", f"{r['pg_exact']['p50_ms']:.1f}",
                      f"{r['pg_exact']['p95_ms']:.1f}", "", "", f"COPY {r['load_s']:.1f}", "")
        table.add_row(f"{r['n']:,}", "pg SELECT 1", "", "", f"{r['pg_round_trip']['p50_ms']:.2f}",
                      f"{r['pg_round_trip']['p95_ms']:.2f}", "", "", "", "")
        table.add_row(f"{r['n']:,}", "numpy exact", "", "1.000", f"{r['numpy_exact']['p50_ms']:.2f}",
                      f"{r['numpy_exact']['p95_ms']:.2f}", "", "", "", "")
    Console(width=170).print(table)
    ft = Table(title="Filtered query: collection with 1 % of the rows, ef_search=40")
    for col in ("N", "rows in collection", "planner picks HNSW", "plan / iterative_scan", "recall@10", "rows returned",
                "p95 ms"):
        ft.add_column(col, justify="right")
    for r in results:
        f = r["filtered"]
        for setting in ("planner", "hnsw/off", "hnsw/relaxed_order", "hnsw/strict_order"):
            ft.add_row(f"{r['n']:,}", str(f["rows_in_collection"]), str(f["planner_uses_hnsw"]), setting,
                       f"{f[setting]['recall@10']:.3f}", f"{f[setting]['rows_returned_mean']:.1f}",
                       f"{f[setting]['p95_ms']:.2f}")
    Console(width=170).print(ft)


def calibrate(corpus_dir: Path, cache: Path, settings: Settings, dim: int, seed: int) -> dict:
    """Neighbourhood statistics of 5,000 generated points, and of the real corpus' embeddings if at hand."""
    rng = np.random.default_rng(seed)
    out = {"synthetic (5,000-point sample)": neighbourhood_stats(topic_vectors(5000, dim, rng), rng)}
    real = real_embeddings(corpus_dir, cache, settings)
    if real is not None and real.shape[1] == dim:
        model = "all-MiniLM-L6-v2" if settings.embedding_model == "default" else settings.embedding_model
        out[f"real: {model} on {corpus_dir.name}"] = neighbourhood_stats(real, rng)
    return out


def print_calibration(calibration: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Synthetic set vs real embeddings (cosine; LID = local intrinsic dimensionality)")
    cols = ("random_pair_cos", "nn1_cos", "nn10_cos", "nn20_cos", "lid_mle20", "knn10_largest_component")
    table.add_column("vectors")
    for col in cols:
        table.add_column(col, justify="right")
    for name, stats in calibration.items():
        table.add_row(name, *(f"{stats[c]:.1f}" if c == "lid_mle20" else f"{stats[c]:.3f}" for c in cols))
    Console(width=170).print(table)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        for name, curve, style in (("pgvector vector", r["vector"]["ef"], "o-"),
                                   ("pgvector vector, iterative off", r["vector"]["ef_iterative_off"], "o--"),
                                   ("pgvector halfvec", r["halfvec"]["ef"], "s-"),
                                   ("pgvector halfvec, iterative off", r["halfvec"]["ef_iterative_off"], "s--"),
                                   ("faiss HNSW", r["faiss"]["ef"], "^-")):
            efs = sorted(curve, key=int)
            ax.plot([curve[e]["p95_ms"] for e in efs], [curve[e]["recall@10"] for e in efs], style, label=name)
            for e in efs:
                ax.annotate(f"ef={e}", (curve[e]["p95_ms"], curve[e]["recall@10"]), fontsize=6)
        ax.axvline(r["pg_exact"]["p95_ms"], color="grey", ls="--", label="pg exact scan p95")
        ax.set_xscale("log")
        ax.set_xlabel("query p95 (ms, log)")
        ax.set_ylabel("recall@10")
        ax.set_title(f"N = {r['n']:,}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10000,100000", help="comma-separated sizes")
    parser.add_argument("--dim", type=int, default=0, help="vector dimension (default: the embedder's)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=30, help="queries timed on the Postgres exact scan")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "scale-data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warm-up", type=int, default=300, help="untimed queries per index and ef_search first")
    parser.add_argument("--shared-buffers", default="6GB",
                        help="embedded server's buffer pool: big enough for the heap and both indexes at the top N")
    parser.add_argument("--maintenance-work-mem", default="8GB", help="memory for the HNSW builds")
    parser.add_argument("--keep", action="store_true", help="leave the last N's rows and index in the database")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "eval" / "msmarco-5k",
                        help="BEIR corpus whose real embeddings the generator is compared with")
    args = parser.parse_args()
    settings = Settings(_env_file=None, data_dir=args.data_dir, database_url=None)
    dim = args.dim
    if not dim:
        from rag_engine.embedding import build_embedder

        dim = build_embedder(engine_config(settings).embedding).dim
    args.out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in f"{settings.embedding_model}-{settings.embedding_backend}")
    calibration = calibrate(args.real, args.out / f"scale-real-embeddings-{slug}.npy", settings, dim, args.seed)
    db = Database.from_config(store_config(settings))
    ensure_schema(db, dim)
    shared_buffers = tune_embedded_server(db, args.shared_buffers)
    pg = PgBench(db, dim, args.maintenance_work_mem)
    tag = "-".join(str(int(x)) for x in args.n.split(","))
    results = []

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    log(f"shared_buffers {shared_buffers}, maintenance_work_mem {args.maintenance_work_mem}")
    for n in (int(x) for x in args.n.split(",")):
        results.append(run_one(pg, n, dim, args.queries, args.warm_up, args.exact_queries, args.seed, log))
        (args.out / f"scale-{tag}.json").write_text(json.dumps(
            {"shared_buffers": shared_buffers, "maintenance_work_mem": args.maintenance_work_mem,
             "calibration": calibration, "results": results}, indent=2))
    print_calibration(calibration)
    print_table(results)
    plot(results, args.out / f"scale-{tag}.png")
    print(f"wrote {args.out / f'scale-{tag}.json'} and {args.out / f'scale-{tag}.png'}")
    if not args.keep:
        pg.reset()  # leave the benchmark database small


if __name__ == "__main__":
    main()
