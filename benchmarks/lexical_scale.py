"""Lexical (BM25) search at scale: the exhaustive SQL query vs the capped one over lexical postings.

    .venv/bin/python benchmarks/lexical_scale.py --n 10000,100000 --data-dir /tmp/lexscale/bench

Text: embedding real text is not affordable at these sizes on this CPU, so chunks are synthetic, from
a fixed-seed vocabulary of 50,000 made-up words (consonant-vowel syllables: no English stop words,
few stemmer collisions) drawn with a Zipf law (exponent 1.07, rank r weighs r^-1.07), 40-180 tokens
per chunk (mean ~110, msmarco-5k's chunks average 95), 10 chunks per document whose title (3 Zipf
words) is every chunk's context. Embeddings: unit vectors from ``benchmarks/scale.py``'s topic
mixture (not embeddings of the text: the vector side is there only for hybrid *timing*).

Rows go in through the store (``DocumentRepo.replace``, so the postings/statistics triggers of
migration 0006 run as in ingestion); the HNSW index is dropped for the load and rebuilt after it
(timed separately), as ``benchmarks/scale.py`` does. Questions (fixed seed, 40 per class):
``rare`` 3 words of rank 2,000-50,000; ``mixed`` 2 of rank 3-60 and 2 of rank 200-5,000;
``common`` 4 of rank 3-60 (each in 10-60 % of chunks at this Zipf law). For each class: p50/p95
of the lexical search (SQL round trip, after 5 warm-up questions) with ``term_cap`` 0 (the
exhaustive query, every posting of every term) and the default cap, the share of the exhaustive
top 10 the capped query returns, and hybrid p95 (``Retriever.search``, convex fusion, candidate
depth 100, the query embedding precomputed so it is excluded).

Writes ``benchmarks/out/lexical_scale-<sizes>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from app.configs import engine_config, store_config
from app.settings import Settings
from benchmarks.scale import topic_vectors
from rag_engine.retrieval import Retriever
from rag_engine.scope import CollectionScope
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.collections import CollectionRepo
from rag_engine.store.database import Database
from rag_engine.store.documents import DocumentRepo
from rag_engine.store.migrate import ensure_schema

VOCAB, ZIPF_S, SEED, DIM = 50_000, 1.07, 17, 384
CHUNKS_PER_DOC, QUESTIONS, WARMUP, DEPTH = 10, 40, 5, 100
CAP = int(Settings.model_fields["bm25_term_cap"].default)  # the shipped default
CLASSES = {"rare": ((2000, 50000, 3),), "mixed": ((3, 60, 2), (200, 5000, 2)), "common": ((3, 60, 4),)}


def vocabulary(rng: np.random.Generator) -> list[str]:
    """``VOCAB`` distinct made-up words, in rank order."""
    cons, vows = list("bdfgklmnprstvz"), list("aiou")
    words: set[str] = set()
    out: list[str] = []
    while len(out) < VOCAB:
        n = int(rng.integers(2, 4))
        w = "".join(cons[rng.integers(len(cons))] + vows[rng.integers(len(vows))] for _ in range(n))
        w += cons[rng.integers(len(cons))]
        if w not in words:
            words.add(w)
            out.append(w)
    return out


class Corpus:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = np.random.default_rng(seed)
        self.words = np.array(vocabulary(self.rng))
        p = 1.0 / np.arange(1, VOCAB + 1) ** ZIPF_S
        self.p = p / p.sum()

    def text(self, n: int) -> str:
        return " ".join(self.words[self.rng.choice(VOCAB, size=n, p=self.p)])

    def questions(self, cls: str, n: int) -> list[str]:
        q = np.random.default_rng(SEED + sum(map(ord, cls)))  # fixed per class (str hash is salted)
        return [" ".join(self.words[r - 1] for lo, hi, k in CLASSES[cls] for r in q.integers(lo, hi, size=k))
                for _ in range(n)]


def load(db: Database, corpus: Corpus, n: int, collection_id: int) -> dict[str, float]:
    """``n`` chunks through ``DocumentRepo.replace``; HNSW rebuilt after the load."""
    vectors = topic_vectors(n, DIM, np.random.default_rng(SEED))
    with db.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS chunks_embedding_hnsw"))
    repo = DocumentRepo(db)
    t0 = time.perf_counter()
    for d in range(n // CHUNKS_PER_DOC):
        title = corpus.text(3)
        vecs = vectors[d * CHUNKS_PER_DOC:(d + 1) * CHUNKS_PER_DOC]
        chunks = []
        for o in range(CHUNKS_PER_DOC):
            body = corpus.text(int(corpus.rng.integers(40, 181)))
            chunks.append({"collection_id": collection_id, "ordinal": o, "heading_path": "", "context": title,
                           "text": body, "text_hash": f"{d}-{o}", "token_count": len(body.split()),
                           "embedding": vecs[o]})
        repo.replace(collection_id, f"doc{d}", title=title, content_hash=str(d), metadata={}, chunks=chunks)
        if d and d % 1000 == 0:
            print(f"  {d * CHUNKS_PER_DOC} chunks, {time.perf_counter() - t0:.0f} s", flush=True)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with db.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        conn.execute(text("CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
                          "WITH (m = 16, ef_construction = 64)"))
    hnsw_s = time.perf_counter() - t0
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        sizes = conn.execute(text(
            "SELECT pg_total_relation_size('chunk_terms') AS postings, pg_total_relation_size('chunks') AS chunks, "
            "(SELECT count(*) FROM chunk_terms) AS rows")).one()
    return {"insert_s": insert_s, "chunks_per_s": n / insert_s, "hnsw_build_s": hnsw_s,
            "postings_rows": sizes.rows, "postings_mb": sizes.postings / 2**20, "chunks_mb": sizes.chunks / 2**20}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def time_lexical(db: Database, cid: int, questions: list[str], cap: int) -> tuple[list[float], list[list[int]]]:
    repo, times, tops = ChunkRepo(db), [], []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        with repo.searching() as s:
            run = s.lexical_bm25(q, [cid], DEPTH, k1=0.9, b=0.4, context_weight=2.0, term_cap=cap)
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
        tops.append(list(run)[:10])
    return times, tops


class FixedEmbedder:
    """Query vectors computed beforehand: hybrid timing excludes the embedding."""

    model_name, backend, dim = "synthetic", "synthetic", DIM

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors, self.i = vectors, 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        self.i += 1
        return self.vectors[(self.i - 1) % len(self.vectors)]


def time_hybrid(db: Database, settings: Settings, cid: int, questions: list[str], cap: int) -> list[float]:
    config = engine_config(settings.model_copy(update={"bm25_term_cap": cap})).retrieval
    vectors = topic_vectors(len(questions), DIM, np.random.default_rng(SEED + 1))
    retriever = Retriever(ChunkRepo(db), FixedEmbedder(vectors), config)
    scope = CollectionScope.of([cid])
    times = []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        retriever.search(q, scope, k=10, mode="hybrid", rerank=False)
        if i >= WARMUP:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def run_size(n: int, data_dir: Path) -> dict[str, object]:
    settings = Settings(data_dir=data_dir / f"n{n}")
    db = Database.from_config(store_config(settings))
    try:
        ensure_schema(db, DIM)
        corpus = Corpus()
        coll = CollectionRepo(db).get("lexical-scale") or CollectionRepo(db).insert(
            "lexical-scale", visibility="public", allow_training=False)
        assert coll is not None
        with db.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM chunks WHERE collection_id = :c"), {"c": coll.id}).scalar()
        print(f"n={n}: {have} chunks already there", flush=True)
        result: dict[str, object] = {"n": n}
        if have != n:
            result["load"] = load(db, corpus, n, coll.id)
            print(f"  load: {result['load']}", flush=True)
        classes: dict[str, object] = {}
        for cls in CLASSES:
            qs = corpus.questions(cls, QUESTIONS + WARMUP)
            old_t, old_top = time_lexical(db, coll.id, qs, cap=0)
            new_t, new_top = time_lexical(db, coll.id, qs, cap=CAP)
            pairs = zip(old_top, new_top, strict=True)
            overlap = statistics.mean(len(set(a) & set(b)) / len(a) for a, b in pairs if a)
            hyb_old = time_hybrid(db, settings, coll.id, qs, cap=0)
            hyb_new = time_hybrid(db, settings, coll.id, qs, cap=CAP)
            classes[cls] = {"old_p50": pct(old_t, 50), "old_p95": pct(old_t, 95), "new_p50": pct(new_t, 50),
                            "new_p95": pct(new_t, 95), "top10_overlap": overlap,
                            "hybrid_old_p95": pct(hyb_old, 95), "hybrid_new_p95": pct(hyb_new, 95),
                            "example": qs[WARMUP]}
            print(f"  {cls}: {classes[cls]}", flush=True)
        result["classes"] = classes
        return result
    finally:
        db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/lexscale/bench"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.n.split(",")]
    results = [run_size(n, args.data_dir) for n in sizes]
    out = ROOT / "benchmarks" / "out" / f"lexical_scale-{'-'.join(map(str, sizes))}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
