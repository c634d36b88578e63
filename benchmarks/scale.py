"""Vector search at scale: pgvector HNSW (vector and halfvec) vs FAISS HNSW vs exact scans.

    .venv/bin/python benchmarks/scale.py --n 10000,100000 [--n 1000000]

Vectors: embedding real text is not affordable at these sizes on a CPU
(~20-50 passages/s), so the set is synthetic and clustered in three levels
(topics > sub-topics > near-paraphrases): ``N/1000`` random unit roots; each
child is its parent plus isotropic Gaussian noise scaled so that its cosine to
the parent is 0.5, 0.6 and 0.7 at the three levels (fan-out 20, 10, 5),
L2-normalized. A query's nearest neighbour then sits at cosine ~0.5 and its 10th
at ~0.25 while unrelated pairs sit at ~0, like all-MiniLM-L6-v2 on passages; a
one-level mixture was too easy (HNSW recall 1.0 at ef_search 40). Caveat: by
1M rows the 10th true neighbour is no closer than chance alignments in 384
dimensions, so recall there measures the generator (docs/retrieval.md). Queries are
fresh points from the same tree (not in the base set). The dimension is the
configured embedder's.

Rows go through the project's own schema (``collections`` / ``documents`` /
``chunks``) with a binary ``COPY``; the schema's HNSW index is dropped for the
load and rebuilt (timed) with the migration's parameters (m=16,
ef_construction=64), then again as a ``halfvec`` expression index. FAISS
``IndexHNSWFlat`` gets the same M / efConstruction / efSearch. For each
``hnsw.ef_search`` in 40/100/200: recall@10 against the exact answer, and query
latency p50/p95 (SQL round trip included), with ratios against Postgres' own
exact scan and FAISS measured in the same run. Then a filtered query on a
collection holding 1 % of the rows, with iterative index scans on and off.

Writes ``benchmarks/out/scale.json`` and ``benchmarks/out/scale.png``.
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

from sqlalchemy import text  # noqa: E402

from rag_engine.settings import Settings  # noqa: E402
from rag_engine.store.database import Database  # noqa: E402
from rag_engine.store.migrate import ensure_schema  # noqa: E402

M, EF_CONSTRUCTION = 16, 64  # as in migrations/versions/0001_initial.py
EF_SEARCH = (40, 100, 200)
K = 10


LEVELS = ((20, 0.5), (10, 0.6), (5, 0.7))  # (fan-out, cosine to the parent) per level


def clustered_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of the three-level tree described in the module docstring."""
    per_root = int(np.prod([f for f, _ in LEVELS]))
    points = rng.normal(0, 1, (-(-n // per_root), dim)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    for fanout, cos in LEVELS:
        sigma = np.float32(np.sqrt((1 / cos**2 - 1) / dim))  # |noise|^2 = dim * sigma^2 = tan^2(angle)
        points = np.repeat(points, fanout, axis=0)
        points += rng.normal(0, 1, points.shape).astype(np.float32) * sigma
        points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points


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
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in zip(found, truth)]))


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q) * 1000)


class PgBench:
    def __init__(self, db: Database, dim: int) -> None:
        self.db = db
        self.dim = dim
        self.raw = db.engine.raw_connection()
        self.conn = self.raw.driver_connection
        self.conn.autocommit = True
        self.conn.execute("SET statement_timeout = 0")
        self.conn.execute("SET maintenance_work_mem = '2GB'")
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


def run_one(pg: PgBench, n: int, dim: int, n_queries: int, exact_queries: int, seed: int, log) -> dict:
    rng = np.random.default_rng(seed)
    points = clustered_vectors(n + n_queries, dim, rng)
    pick = rng.permutation(len(points))
    base, queries = np.ascontiguousarray(points[pick[:n]]), np.ascontiguousarray(points[pick[n:n + n_queries]])
    del points
    in_small = rng.random(n) < 0.01
    truth = exact_topk(base, queries, K)
    res: dict = {"n": n, "dim": dim, "queries": n_queries}
    big, small = pg.reset()
    res["load_s"] = pg.load(base, in_small, big, small)
    log(f"N={n}: COPY {res['load_s']:.1f}s")
    _, pg_exact_s = pg.query(queries[:exact_queries], "vector", None)
    res["pg_exact"] = {"p50_ms": pct(pg_exact_s, 50), "p95_ms": pct(pg_exact_s, 95)}
    res["numpy_exact"] = numpy_exact(base, queries)
    log(f"N={n}: exact scan p95 {res['pg_exact']['p95_ms']:.1f} ms")
    for kind in ("vector", "halfvec"):
        build_s, size = pg.build(kind)
        entry = {"build_s": build_s, "index_bytes": size, "ef": {}}
        log(f"N={n}: {kind} HNSW build {build_s:.1f}s, {size / 1e6:.1f} MB")
        for ef in EF_SEARCH:
            pg.query(queries[:20], kind, ef)  # warm the index into shared buffers
            found, seconds = pg.query(queries, kind, ef)
            entry["ef"][ef] = {"recall@10": recall(found, truth), "p50_ms": pct(seconds, 50),
                               "p95_ms": pct(seconds, 95)}
            log(f"N={n}: {kind} ef={ef} recall {entry['ef'][ef]['recall@10']:.3f} p95 "
                f"{entry['ef'][ef]['p95_ms']:.2f} ms")
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


def _has_index(pg: PgBench) -> bool:
    return pg.conn.execute("SELECT to_regclass('chunks_embedding_hnsw') IS NOT NULL").fetchone()[0]


def print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pgvector HNSW at scale (synthetic clustered vectors)")
    for col in ("N", "index", "ef", "recall@10", "p50 ms", "p95 ms", "exact/p95", "p95/faiss p95", "build s",
                "index MB"):
        table.add_column(col, justify="right")
    for r in results:
        for kind in ("vector", "halfvec"):
            for ef, e in r[kind]["ef"].items():
                f = r["faiss"]["ef"][ef]
                table.add_row(f"{r['n']:,}", kind, str(ef), f"{e['recall@10']:.3f}", f"{e['p50_ms']:.2f}",
                              f"{e['p95_ms']:.2f}", f"{r['pg_exact']['p95_ms'] / e['p95_ms']:.0f}x",
                              f"{e['p95_ms'] / f['p95_ms']:.1f}x", f"{r[kind]['build_s']:.1f}",
                              f"{r[kind]['index_bytes'] / 1e6:.1f}")
        for ef, f in r["faiss"]["ef"].items():
            table.add_row(f"{r['n']:,}", "faiss", str(ef), f"{f['recall@10']:.3f}", f"{f['p50_ms']:.2f}",
                          f"{f['p95_ms']:.2f}", "", "", f"{r['faiss']['build_s']:.1f}", "")
        table.add_row(f"{r['n']:,}", "pg exact", "", "1.000", f"{r['pg_exact']['p50_ms']:.1f}",
                      f"{r['pg_exact']['p95_ms']:.1f}", "", "", f"COPY {r['load_s']:.1f}", "")
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


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    for ax, r in zip(axes[0], results):
        for name, entry in (("pgvector vector", r["vector"]), ("pgvector halfvec", r["halfvec"]),
                            ("faiss HNSW", r["faiss"])):
            efs = sorted(entry["ef"], key=int)
            ax.plot([entry["ef"][e]["p95_ms"] for e in efs], [entry["ef"][e]["recall@10"] for e in efs], "o-",
                    label=name)
            for e in efs:
                ax.annotate(f"ef={e}", (entry["ef"][e]["p95_ms"], entry["ef"][e]["recall@10"]), fontsize=6)
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
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=30, help="queries timed on the Postgres exact scan")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "scale-data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = Settings(_env_file=None, data_dir=args.data_dir, database_url=None)
    dim = args.dim
    if not dim:
        from rag_engine.embedding import build_embedder

        dim = build_embedder(settings).dim
    db = Database.from_settings(settings)
    ensure_schema(db, dim)
    pg = PgBench(db, dim)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "-".join(str(int(x)) for x in args.n.split(","))
    results = []

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    for n in (int(x) for x in args.n.split(",")):
        results.append(run_one(pg, n, dim, args.queries, args.exact_queries, args.seed, log))
        (args.out / f"scale-{tag}.json").write_text(json.dumps(results, indent=2))
    print_table(results)
    plot(results, args.out / f"scale-{tag}.png")
    print(f"wrote {args.out / f'scale-{tag}.json'} and {args.out / f'scale-{tag}.png'}")
    pg.reset()  # leave the benchmark database small


if __name__ == "__main__":
    main()
