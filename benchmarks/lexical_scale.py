"""Lexical (BM25) search at scale: the exhaustive SQL query vs the capped one over lexical postings.

    .venv/bin/python benchmarks/lexical_scale.py --n 10000,100000 --data-dir /tmp/lexscale/bench
    # 1M: load under nice in one process, time in another (the server inherits the first one's priority)
    nice -n 5 .venv/bin/python benchmarks/lexical_scale.py --n 1000000 --bulk --load-only --data-dir /tmp/lexscale1m
    .venv/bin/python benchmarks/lexical_scale.py --n 1000000 --old-questions 10 --data-dir /tmp/lexscale1m
    .venv/bin/python benchmarks/lexical_scale.py --n 1000000 --old-questions 0 --warm-pass --shared-buffers 6GB \
        --data-dir /tmp/lexscale1m
    .venv/bin/python benchmarks/lexical_scale.py --check 2000 --data-dir /tmp/lexscale/check  # bulk == store

Text: embedding real text is not affordable at these sizes on this CPU, so chunks are synthetic, from
a fixed-seed vocabulary of 50,000 made-up words (consonant-vowel syllables: no English stop words,
few stemmer collisions) drawn with a Zipf law (exponent 1.07, rank r weighs r^-1.07), 40-180 tokens
per chunk (mean ~110, msmarco-5k's chunks average 95), 10 chunks per document whose title (3 Zipf
words) is every chunk's context. Embeddings: unit vectors from ``benchmarks/scale.py``'s topic
mixture (not embeddings of the text: the vector side is there only for hybrid *timing*).

Rows go in through the store (``DocumentRepo.replace``, so the postings/statistics triggers of
migration 0006 run as in ingestion); the HNSW index is dropped for the load and rebuilt after it
(timed separately), as ``benchmarks/scale.py`` does. ``--bulk`` (1M through the store would take over
an hour here) writes the same rows with one binary ``COPY`` per 20,000 chunks, so the same statement-level
triggers fill the postings and statistics per batch; the postings' key and the secondary indexes are
dropped for the load and rebuilt from their own definitions; ``--check N`` loads N chunks both ways and
compares every row of documents/chunks/postings/statistics, the index and constraint definitions and the
search results. Questions (fixed seed, 40 per class):
``rare`` 3 words of rank 2,000-50,000; ``mixed`` 2 of rank 3-60 and 2 of rank 200-5,000;
``common`` 4 of rank 3-60 (each in 10-60 % of chunks at this Zipf law). For each class: p50/p95
of the lexical search (SQL round trip, after 5 warm-up questions) with ``term_cap`` 0 (the
exhaustive query, every posting of every term) and the default cap, the share of the exhaustive
top 10 the capped query returns, and hybrid p95 (``Retriever.search``, convex fusion, candidate
depth 100, the query embedding precomputed so it is excluded). ``--old-questions`` times the old query
on fewer questions per class (after one warm-up) when it takes seconds; ``--warm-pass`` times the new
query and hybrid a second time over the same questions (their pages then in memory).

Writes ``benchmarks/out/lexical_scale-<sizes>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from app.configs import engine_config, store_config
from app.settings import Settings
from benchmarks.scale import topic_vectors, tune_embedded_server
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
        # what ``rng.choice(VOCAB, size=n, p=self.p)`` does, with the cumulative sum computed once (same draws)
        self.cdf = self.p.cumsum()
        self.cdf /= self.cdf[-1]

    def text(self, n: int) -> str:
        return " ".join(self.words[self.cdf.searchsorted(self.rng.random(n), side="right")])

    def documents(self, n: int) -> Iterator[tuple[int, str, list[str]]]:
        """``(index, title, chunk bodies)`` of ``n // CHUNKS_PER_DOC`` documents, in one fixed order."""
        for d in range(n // CHUNKS_PER_DOC):
            title = self.text(3)
            yield d, title, [self.text(int(self.rng.integers(40, 181))) for _ in range(CHUNKS_PER_DOC)]

    def questions(self, cls: str, n: int) -> list[str]:
        q = np.random.default_rng(SEED + sum(map(ord, cls)))  # fixed per class (str hash is salted)
        return [" ".join(self.words[r - 1] for lo, hi, k in CLASSES[cls] for r in q.integers(lo, hi, size=k))
                for _ in range(n)]


def load(db: Database, corpus: Corpus, n: int, collection_id: int) -> dict[str, object]:
    """``n`` chunks through ``DocumentRepo.replace``; HNSW rebuilt after the load."""
    vectors = topic_vectors(n, DIM, np.random.default_rng(SEED))
    with db.begin() as conn:
        conn.execute(text("DROP INDEX IF EXISTS chunks_embedding_hnsw"))
    repo = DocumentRepo(db)
    t0 = time.perf_counter()
    for d, title, bodies in corpus.documents(n):
        vecs = vectors[d * CHUNKS_PER_DOC:(d + 1) * CHUNKS_PER_DOC]
        chunks = []
        for o, body in enumerate(bodies):
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
    return {"method": "repo", "insert_s": insert_s, "chunks_per_s": n / insert_s, "hnsw_build_s": hnsw_s,
            **vacuum_and_measure(db)}


# indexes dropped for a bulk load and rebuilt after it from their own definitions (pg_indexes.indexdef), so
# they end up as the migrations made them; the unique/primary keys of chunks and the key of lexical_terms
# (the trigger's ON CONFLICT needs it) stay
BULK_INDEXES = ("chunks_tsv_gin", "chunks_collection", "chunks_text_hash", "chunk_terms_impact")


def bulk_load(db: Database, corpus: Corpus, n: int, collection_id: int, batch: int = 20_000) -> dict[str, object]:
    """``n`` chunks with one binary ``COPY`` per ``batch`` chunks (documents with a multi-row ``COPY`` first).

    Each ``COPY`` is one statement, so migration 0006's statement-level insert trigger fills the postings
    and statistics for the whole batch at once, as it does for one document in ingestion. The text, titles,
    vectors and ids are those :func:`load` writes (same generator, same order, fresh sequences). The
    postings' primary key and the secondary indexes are dropped for the load and rebuilt after it."""
    vectors = topic_vectors(n, DIM, np.random.default_rng(SEED))
    raw = db.engine.raw_connection()
    conn = raw.driver_connection
    assert conn is not None
    timings: dict[str, object] = {"method": "bulk", "batch": batch}
    try:
        with conn.transaction():
            defs = dict(conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
                ([*BULK_INDEXES, "chunks_embedding_hnsw"],)).fetchall())
            pkey = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                                "WHERE conname = 'chunk_terms_pkey'").fetchone()
            assert pkey is not None and set(defs) >= set(BULK_INDEXES), (defs, pkey)
            for name in defs:
                conn.execute(f"DROP INDEX {name}")
            conn.execute("ALTER TABLE chunk_terms DROP CONSTRAINT chunk_terms_pkey")
        t0 = time.perf_counter()
        docs = corpus.documents(n)
        done = 0
        while done < n:
            part = [doc for _, doc in zip(range(batch // CHUNKS_PER_DOC), docs, strict=False)]
            if not part:
                break
            with conn.transaction(), conn.cursor() as cur:
                ids = [r[0] for r in cur.execute("SELECT nextval('documents_id_seq') FROM generate_series(1, %s)",
                                                 (len(part),))]
                with cur.copy("COPY documents (id, collection_id, source_uri, title, content_hash, metadata) "
                              "FROM STDIN") as copy:
                    for doc_id, (d, title, _) in zip(ids, part, strict=True):
                        copy.write_row((doc_id, collection_id, f"doc{d}", title, str(d), "{}"))
                with cur.copy("COPY chunks (document_id, collection_id, ordinal, heading_path, context, text, "
                              "text_hash, token_count, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["int8", "int4", "int4", "text", "text", "text", "text", "int4", "vector"])
                    for doc_id, (d, title, bodies) in zip(ids, part, strict=True):
                        for o, body in enumerate(bodies):
                            copy.write_row((doc_id, collection_id, o, "", title, body, f"{d}-{o}",
                                            len(body.split()), vectors[d * CHUNKS_PER_DOC + o]))
            done += len(part) * CHUNKS_PER_DOC
            print(f"  {done} chunks, {time.perf_counter() - t0:.0f} s", flush=True)
        insert_s = time.perf_counter() - t0
        timings.update(insert_s=insert_s, chunks_per_s=n / insert_s)
        conn.autocommit = True
        conn.execute("SET maintenance_work_mem = '1GB'")
        t0 = time.perf_counter()
        conn.execute(f"ALTER TABLE chunk_terms ADD CONSTRAINT chunk_terms_pkey {pkey[0]}")
        timings["postings_pkey_s"] = time.perf_counter() - t0
        for name in BULK_INDEXES:
            t0 = time.perf_counter()
            conn.execute(defs[name])
            timings[f"{name}_s"] = time.perf_counter() - t0
            print(f"  {name}: {timings[f'{name}_s']:.0f} s", flush=True)
        conn.execute("SET maintenance_work_mem = '4GB'")  # the 1M graph must fit, or the build crawls
        t0 = time.perf_counter()
        conn.execute(defs["chunks_embedding_hnsw"])
        timings["hnsw_build_s"] = time.perf_counter() - t0
        conn.autocommit = False  # as the pool handed it out
    finally:
        raw.close()
    return {**timings, **vacuum_and_measure(db)}


def vacuum_and_measure(db: Database) -> dict[str, float]:
    with db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        sizes = conn.execute(text(
            "SELECT pg_total_relation_size('chunk_terms') AS postings, pg_total_relation_size('chunks') AS chunks, "
            "(SELECT count(*) FROM chunk_terms) AS rows, pg_database_size(current_database()) AS database")).one()
    return {"postings_rows": sizes.rows, "postings_mb": sizes.postings / 2**20, "chunks_mb": sizes.chunks / 2**20,
            "database_mb": sizes.database / 2**20}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def time_lexical(db: Database, cid: int, questions: list[str], cap: int,
                 warmup: int = WARMUP) -> tuple[list[float], list[list[int]]]:
    repo, times, tops = ChunkRepo(db), [], []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        with repo.searching() as s:
            run = s.lexical_bm25(q, [cid], DEPTH, k1=0.9, b=0.4, context_weight=2.0, term_cap=cap)
        if i >= warmup:
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


def time_hybrid(db: Database, settings: Settings, cid: int, questions: list[str], cap: int,
                warmup: int = WARMUP) -> list[float]:
    config = engine_config(settings.model_copy(update={"bm25_term_cap": cap})).retrieval
    vectors = topic_vectors(len(questions), DIM, np.random.default_rng(SEED + 1))
    retriever = Retriever(ChunkRepo(db), FixedEmbedder(vectors), config)
    scope = CollectionScope.of([cid])
    times = []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        retriever.search(q, scope, k=10, mode="hybrid", rerank=False)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def open_db(data_dir: Path) -> tuple[Settings, Database, int]:
    settings = Settings(data_dir=data_dir, db_statement_timeout_ms=0)  # the old query / VACUUM at 1M take long
    db = Database.from_config(store_config(settings))
    ensure_schema(db, DIM)
    coll = CollectionRepo(db).get("lexical-scale") or CollectionRepo(db).insert(
        "lexical-scale", visibility="public", allow_training=False)
    assert coll is not None
    return settings, db, coll.id


def run_size(n: int, data_dir: Path, *, bulk: bool, old_questions: int, load_only: bool = False,
             warm_pass: bool = False, shared_buffers: str | None = None) -> dict[str, object]:
    """Load ``n`` chunks (unless there) and time every class; the old query on ``old_questions`` of them
    (0: not run). ``warm_pass``: time the new query and hybrid a second time over the same questions, so
    that their pages are in memory (the first pass reads them: at 1M, from disk on this machine)."""
    settings, db, cid = open_db(data_dir / f"n{n}")
    try:
        result: dict[str, object] = {"n": n, "old_questions": old_questions}
        if shared_buffers:
            result["shared_buffers"] = tune_embedded_server(db, shared_buffers)
        corpus = Corpus()
        with db.connect() as conn:
            have = conn.execute(text("SELECT count(*) FROM chunks WHERE collection_id = :c"), {"c": cid}).scalar()
            result.setdefault("shared_buffers", conn.execute(text("SHOW shared_buffers")).scalar())
        print(f"n={n}: {have} chunks already there", flush=True)
        if have != n:
            assert not have, "a partial load: delete the data directory"
            result["load"] = (bulk_load if bulk else load)(db, corpus, n, cid)
            print(f"  load: {result['load']}", flush=True)
        if load_only:
            return result
        classes: dict[str, dict[str, object]] = {}
        old_warmup = WARMUP if old_questions >= QUESTIONS else 1
        for cls in CLASSES:
            qs = corpus.questions(cls, QUESTIONS + WARMUP)
            load_avg = [os.getloadavg()[0]]
            new_t, new_top = time_lexical(db, cid, qs, cap=CAP)
            hyb_new = time_hybrid(db, settings, cid, qs, cap=CAP)
            load_avg.append(os.getloadavg()[0])
            row: dict[str, object] = {"new_p50": pct(new_t, 50), "new_p95": pct(new_t, 95),
                                      "hybrid_new_p50": pct(hyb_new, 50), "hybrid_new_p95": pct(hyb_new, 95),
                                      "new_timed": len(new_t), "example": qs[WARMUP]}
            if warm_pass:
                warm_t, _ = time_lexical(db, cid, qs, cap=CAP)
                hyb_warm = time_hybrid(db, settings, cid, qs, cap=CAP)
                load_avg.append(os.getloadavg()[0])
                row.update(new_warm_p50=pct(warm_t, 50), new_warm_p95=pct(warm_t, 95),
                           hybrid_new_warm_p50=pct(hyb_warm, 50), hybrid_new_warm_p95=pct(hyb_warm, 95))
            if old_questions > 0:
                old_qs = qs if old_questions >= QUESTIONS else qs[WARMUP - old_warmup:WARMUP + old_questions]
                old_t, old_top = time_lexical(db, cid, old_qs, cap=0, warmup=old_warmup)
                new_on_old = new_top[WARMUP - old_warmup:WARMUP + old_questions] if old_qs is not qs else new_top
                pairs = zip(old_top, new_on_old, strict=True)
                hyb_old = time_hybrid(db, settings, cid, old_qs, cap=0, warmup=old_warmup)
                load_avg.append(os.getloadavg()[0])
                row.update(old_p50=pct(old_t, 50), old_p95=pct(old_t, 95), old_timed=len(old_t),
                           top10_overlap=statistics.mean(len(set(a) & set(b)) / len(a) for a, b in pairs if a),
                           hybrid_old_p95=pct(hyb_old, 95))
            row["load_avg_1m"] = load_avg
            classes[cls] = row
            print(f"  {cls}: {row}", flush=True)
        result["classes"] = classes
        return result
    finally:
        db.dispose()


# what ingestion leaves behind, compared between a bulk load and a load through the store
FINGERPRINTS = {
    "documents": "SELECT md5(string_agg(concat_ws('|', id, collection_id, source_uri, title, content_hash, "
                 "metadata::text, source_id, external_id, url), E'\\n' ORDER BY id)) FROM documents",
    "chunks": "SELECT md5(string_agg(concat_ws('|', id, document_id, collection_id, ordinal, heading_path, context, "
              "text, text_hash, token_count, embedding::text, tsv::text), E'\\n' ORDER BY id)) FROM chunks",
    "chunk_terms": "SELECT md5(string_agg(concat_ws('|', chunk_id, collection_id, term, tf_body, tf_context, impact, "
                   "doc_len), E'\\n' ORDER BY chunk_id, term)) FROM chunk_terms",
    "lexical_terms": "SELECT md5(string_agg(concat_ws('|', collection_id, term, df), E'\\n' ORDER BY collection_id, "
                     "term)) FROM lexical_terms",
    "lexical_collections": "SELECT string_agg(concat_ws('|', collection_id, chunk_count, token_total), ';') "
                           "FROM lexical_collections",
    "indexes": "SELECT md5(string_agg(indexdef, E'\\n' ORDER BY indexname)) FROM pg_indexes "
               "WHERE schemaname = 'public'",
    "constraints": "SELECT md5(string_agg(conname || pg_get_constraintdef(oid), E'\\n' ORDER BY conname)) "
                   "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
}


def check(n: int, data_dir: Path) -> dict[str, object]:
    """Load ``n`` chunks both ways into fresh databases; the contents, indexes and search results must agree."""
    seen: dict[str, dict[str, object]] = {}
    for method in ("repo", "bulk"):
        settings, db, cid = open_db(data_dir / f"check-{method}-{n}")
        try:
            with db.connect() as conn:
                assert not conn.execute(text("SELECT count(*) FROM chunks")).scalar(), "use a fresh --data-dir"
            info = (bulk_load(db, Corpus(), n, cid, batch=max(n // 4, CHUNKS_PER_DOC)) if method == "bulk"
                    else load(db, Corpus(), n, cid))
            with db.connect() as conn:
                got: dict[str, object] = {k: conn.execute(text(sql)).scalar() for k, sql in FINGERPRINTS.items()}
            for cls in CLASSES:
                qs = Corpus().questions(cls, 10)
                got[f"{cls}_capped"] = time_lexical(db, cid, qs, cap=CAP, warmup=0)[1]
                got[f"{cls}_exhaustive"] = time_lexical(db, cid, qs, cap=0, warmup=0)[1]
                vectors = topic_vectors(len(qs), DIM, np.random.default_rng(SEED + 1))
                config = engine_config(settings).retrieval
                retriever = Retriever(ChunkRepo(db), FixedEmbedder(vectors), config)
                got[f"{cls}_hybrid"] = [[h.chunk_id for h in retriever.search(q, CollectionScope.of([cid]), k=10,
                                                                              mode="hybrid", rerank=False)]
                                        for q in qs]
            seen[method] = got
            print(f"  {method}: {info}", flush=True)
        finally:
            db.dispose()
    diff = sorted(k for k in seen["repo"] if seen["repo"][k] != seen["bulk"][k])
    print(f"check n={n}: {'IDENTICAL' if not diff else f'DIFFERENT: {diff}'} ({len(seen['repo'])} fingerprints)")
    return {"n": n, "different": diff, "fingerprints": seen["repo"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/lexscale/bench"))
    ap.add_argument("--bulk", action="store_true", help="load with COPY batches (same triggers, indexes after)")
    ap.add_argument("--old-questions", type=int, default=QUESTIONS,
                    help="timed questions per class for the old (exhaustive) query, when it is too slow for all")
    ap.add_argument("--load-only", action="store_true",
                    help="stop after loading (e.g. load under nice, time in a second run: the server is started "
                         "by the first process that opens the data directory and inherits its priority)")
    ap.add_argument("--warm-pass", action="store_true",
                    help="time the new query and hybrid a second time over the same questions (pages in memory)")
    ap.add_argument("--shared-buffers", help="restart the embedded server with this buffer pool first (e.g. 6GB)")
    ap.add_argument("--check", type=int, metavar="N", help="only compare a bulk and a store load of N chunks")
    args = ap.parse_args()
    if args.check:
        sys.exit(1 if check(args.check, args.data_dir)["different"] else 0)
    sizes = [int(x) for x in args.n.split(",")]
    tag = "-".join(map(str, sizes)) + ("-load" if args.load_only else "") + ("-warm" if args.warm_pass else "")
    out = ROOT / "benchmarks" / "out" / f"lexical_scale-{tag}.json"
    out.parent.mkdir(exist_ok=True)
    results = []
    for n in sizes:
        results.append(run_size(n, args.data_dir, bulk=args.bulk, old_questions=args.old_questions,
                                load_only=args.load_only, warm_pass=args.warm_pass,
                                shared_buffers=args.shared_buffers))
        out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
