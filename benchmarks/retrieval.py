"""Query latency per search mode at 10k and 100k chunks, and HNSW recall@10 of
vector mode against an exact scan, in one run.

    .venv/bin/python benchmarks/retrieval.py [--n 10000,100000] [--queries 100]

Data (documented synthetic set): vectors from ``benchmarks/scale.py``'s
topic-mixture generator (calibrated on real all-MiniLM-L6-v2 embeddings); each
chunk's text is 60 pseudo-words drawn from a Zipf(1.1) distribution over a
20,000-word vocabulary (so lexical queries meet common and rare terms as in
real text); a query is 8 words from the same distribution plus its vector. Rows go through the project's schema and the
real ``Retriever.search`` (k=5, default settings) times each call; the query
"embedding" is looked up from the generated set, so the numbers are the
database's share of latency (add the embedder's query time, ~10-30 ms on CPU).
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale import PgBench, exact_topk, topic_vectors

from app.configs import engine_config, store_config
from app.settings import Settings
from rag_engine.retrieval import Retriever
from rag_engine.scope import CollectionScope
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.database import Database
from rag_engine.store.migrate import ensure_schema

DIM = 384


class LookupEmbedder:
    """Returns the generated vector of a generated query (benchmark harness only)."""

    model_name, backend, dim = "synthetic", "synthetic", DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def embed_query(self, text: str) -> np.ndarray:
        return self.table[text]

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.vstack([self.table[t] for t in texts])


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "be", "do", "fa", "gu", "pe", "ri", "zo", "ha"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables, rng.integers(2, 5))))
    return sorted(words)


def zipf_words(rng: np.random.Generator, vocab: list[str], count: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.1, count), len(vocab)) - 1
    return [vocab[r] for r in ranks]


def load(pg: PgBench, vectors: np.ndarray, texts: list[str]) -> int:
    big, _small = pg.reset()
    with pg.conn.cursor() as cur:
        docs = [cur.execute("INSERT INTO documents (collection_id, source_uri, title, content_hash) VALUES "
                            "(%s, %s, %s, 'x') RETURNING id", (big, f"synthetic://{d}", f"doc {d}")).fetchone()[0]
                for d in range((len(vectors) + 999) // 1000)]
        with cur.copy("COPY chunks (document_id, collection_id, ordinal, text, text_hash, token_count, embedding) "
                      "FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "int4", "text", "text", "int4", "vector"])
            for i, (v, t) in enumerate(zip(vectors, texts, strict=True)):
                copy.write_row((docs[i // 1000], big, i, t, f"h{i}", 78, v))
    pg.conn.execute("VACUUM ANALYZE chunks")
    pg.build("vector")
    return big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10000,100000")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "out" / "retrieval-data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    settings = Settings(_env_file=None, data_dir=args.data_dir, database_url=None)
    db = Database.from_config(store_config(settings))
    ensure_schema(db, DIM)
    pg = PgBench(db, DIM, maintenance_work_mem="2GB")
    rng = np.random.default_rng(11)
    vocab = vocabulary(rng, 20_000)
    results = []
    for n in (int(x) for x in args.n.split(",")):
        base, qvecs = topic_vectors(n, DIM, rng), topic_vectors(args.queries, DIM, rng)
        texts = [" ".join(zipf_words(rng, vocab, 60)) for _ in range(n)]
        queries = [" ".join(zipf_words(rng, vocab, 8)) + f" q{i}" for i in range(args.queries)]
        cid = load(pg, base, texts)
        retriever = Retriever(ChunkRepo(db), LookupEmbedder(dict(zip(queries, qvecs, strict=True))),
                              engine_config(settings).retrieval)
        legacy = Retriever(retriever.chunks, retriever.embedder,
                           engine_config(settings.model_copy(update={"lexical_scoring": "ts_rank_cd"})).retrieval)
        row: dict = {"n": n}
        scope = CollectionScope.of([cid])
        for label, r, mode in (("vector", retriever, "vector"), ("lexical", retriever, "lexical"),
                               ("hybrid", retriever, "hybrid"), ("lexical ts_rank_cd", legacy, "lexical")):
            for q in queries[:10]:
                r.search(q, scope, 5, mode)  # warm caches
            seconds = []
            for q in queries:
                t0 = time.perf_counter()
                r.search(q, scope, 5, mode)
                seconds.append(time.perf_counter() - t0)
            row[label] = {"p50_ms": float(np.percentile(seconds, 50) * 1000),
                          "p95_ms": float(np.percentile(seconds, 95) * 1000)}
        truth = exact_topk(base, qvecs, 10)
        found = [[h.chunk_id for h in retriever.search(q, scope, 10, "vector")] for q in queries]
        with db.connect() as conn:
            from sqlalchemy import text

            ordinal = dict(conn.execute(text("SELECT id, ordinal FROM chunks")).all())
        row["vector_recall@10"] = float(np.mean([len({ordinal[i] for i in f} & set(t)) / 10
                                                 for f, t in zip(found, truth, strict=True)]))
        print(json.dumps(row), flush=True)
        results.append(row)
    pg.reset()

    from rich.console import Console
    from rich.table import Table

    table = Table(title="Retriever.search latency (k=5, default settings, synthetic chunks)")
    modes = ("vector", "lexical", "hybrid", "lexical ts_rank_cd")
    for col in ("chunks", *[f"{m} p50/p95 ms" for m in modes], "HNSW recall@10"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(f"{r['n']:,}", *[f"{r[m]['p50_ms']:.1f} / {r[m]['p95_ms']:.1f}" for m in modes],
                      f"{r['vector_recall@10']:.3f}")
    Console(width=140).print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
