"""BM25 over the lexical postings (migration 0006): same results as the exhaustive query, and term
statistics that stay right through ingest, replace, prune, collection removal and truncate."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.configs import store_config
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.collections import CollectionRepo
from rag_engine.store.database import Database
from rag_engine.store.documents import DocumentRepo
from rag_engine.store.migrate import current_revision, downgrade, upgrade
from tests.conftest import make_settings

WORDS = ("server backup restore password vpn laptop printer invoice holiday policy expense travel badge "
         "office parking kitchen meeting calendar release deploy rollback incident pager oncall database index "
         "query latency cache memory disk network firewall certificate token secret rotation audit review "
         "budget contract vendor payroll benefit pension insurance training onboarding offboarding").split()

QUERIES = (
    "how do I rotate the certificate token",  # rarer words
    "server backup after an incident",  # mixed
    "policy policy office meeting",  # common words
    "pension insurance benefit for offboarding",
    "deploy rollback",
    "a question with no known word zzzz",
)


def _zipf_text(rng: random.Random, n: int) -> str:
    weights = [1 / (r + 1) for r in range(len(WORDS))]
    return " ".join(rng.choices(WORDS, weights, k=n))


def _chunk(rng: random.Random, collection_id: int, ordinal: int, dim: int) -> dict[str, object]:
    body = _zipf_text(rng, rng.randint(5, 60))
    vec = np.asarray([rng.gauss(0, 1) for _ in range(dim)], dtype=np.float32)
    return {"collection_id": collection_id, "ordinal": ordinal, "heading_path": "", "context": _zipf_text(rng, 3),
            "text": body, "text_hash": hashlib.sha256(body.encode()).hexdigest(),
            "token_count": len(body.split()), "embedding": vec / np.linalg.norm(vec)}


def _dim(db: Database) -> int:
    with db.connect() as conn:
        return int(conn.execute(text("SELECT value FROM ragbot_meta WHERE key = 'embedding_dim'")).scalar_one())


def _ingest(db: Database, collection_id: int, docs: int, seed: int, prefix: str = "doc") -> None:
    rng, dim, repo = random.Random(seed), _dim(db), DocumentRepo(db)
    for i in range(docs):
        chunks = [_chunk(rng, collection_id, o, dim) for o in range(rng.randint(1, 4))]
        repo.replace(collection_id, f"{prefix}{i}", title=f"{prefix} {i}", content_hash=str(i), metadata={},
                     chunks=chunks)


def _collection(db: Database, name: str) -> int:
    created = CollectionRepo(db).insert(name, visibility="public", allow_training=True)
    assert created is not None
    return created.id


def _bm25(db: Database, query: str, cids: list[int], depth: int, cap: int) -> dict[int, float]:
    with ChunkRepo(db).searching() as search:
        return search.lexical_bm25(query, cids, depth, k1=0.9, b=0.4, context_weight=2.0, term_cap=cap)


def _assert_stats_match_chunks(db: Database) -> None:
    """The trigger-kept statistics equal what the chunks themselves say, recounted here."""
    with db.connect() as conn:
        rows = conn.execute(text("SELECT id, collection_id, token_count, tsvector_to_array(tsv) AS terms "
                                 "FROM chunks")).all()
        df = {(r.collection_id, r.term): r.df for r in conn.execute(text("SELECT * FROM lexical_terms"))}
        sizes = {r.collection_id: (r.chunk_count, r.token_total)
                 for r in conn.execute(text("SELECT * FROM lexical_collections"))}
        postings = Counter(r.chunk_id for r in conn.execute(text("SELECT chunk_id FROM chunk_terms")))
        wrong_length = conn.execute(text("SELECT count(*) FROM chunk_terms ct JOIN chunks c ON c.id = ct.chunk_id "
                                         "WHERE ct.doc_len <> c.token_count")).scalar_one()
    expected_df: Counter[tuple[int, str]] = Counter()
    expected_sizes: dict[int, tuple[int, int]] = {}
    for r in rows:
        expected_df.update((r.collection_id, term) for term in set(r.terms))
        n, total = expected_sizes.get(r.collection_id, (0, 0))
        expected_sizes[r.collection_id] = (n + 1, total + r.token_count)
    assert df == dict(expected_df)
    assert sizes == expected_sizes
    assert postings == Counter({r.id: len(set(r.terms)) for r in rows})
    assert wrong_length == 0  # the rescoring reads a chunk's length from its postings (migration 0008)


def test_capped_bm25_returns_the_exhaustive_top_results(db: Database) -> None:
    a, b = _collection(db, "lex-a"), _collection(db, "lex-b")
    _ingest(db, a, 150, seed=1)
    _ingest(db, b, 60, seed=2)
    for cids in ([a], [a, b]):
        for query in QUERIES:
            old = _bm25(db, query, cids, depth=10, cap=0)
            new = _bm25(db, query, cids, depth=10, cap=1000)
            assert list(new) == list(old), query
            assert new == pytest.approx(old, rel=1e-5), query
            if "zzzz" not in query:
                assert old, query  # the fixture matches: an empty comparison would prove nothing
    # a cap far below the common terms' document frequency: the top of the ranking still holds
    for query in QUERIES[:5]:
        old = _bm25(db, query, [a, b], depth=10, cap=0)
        capped = _bm25(db, query, [a, b], depth=10, cap=40)
        assert list(capped)[:3] == list(old)[:3], query
        for chunk_id in capped:  # whatever is returned carries its exact score
            if chunk_id in old:
                assert capped[chunk_id] == pytest.approx(old[chunk_id], rel=1e-5)


def test_collection_filter_applies_to_postings_and_statistics(db: Database) -> None:
    a, b = _collection(db, "lex-a"), _collection(db, "lex-b")
    _ingest(db, a, 40, seed=3)
    _ingest(db, b, 40, seed=4)
    with db.connect() as conn:
        in_b = {r.id for r in conn.execute(text("SELECT id FROM chunks WHERE collection_id = :b"), {"b": b})}
    hits = _bm25(db, "server backup incident", [b], depth=50, cap=1000)
    assert hits and set(hits) <= in_b
    assert hits == pytest.approx(_bm25(db, "server backup incident", [b], depth=50, cap=0), rel=1e-5)


def test_term_statistics_follow_ingest_replace_prune_and_removal(db: Database) -> None:
    a, b = _collection(db, "lex-a"), _collection(db, "lex-b")
    _ingest(db, a, 30, seed=5)
    _ingest(db, b, 20, seed=6)
    _assert_stats_match_chunks(db)
    _ingest(db, a, 10, seed=7)  # documents doc0..doc9 replaced with other chunks (delete + insert)
    _assert_stats_match_chunks(db)
    assert DocumentRepo(db).prune(a, lambda uri: uri.endswith(("1", "3", "5"))) > 0
    _assert_stats_match_chunks(db)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM collections WHERE id = :b"), {"b": b})  # cascades to its chunks
    _assert_stats_match_chunks(db)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM lexical_terms WHERE collection_id = :b"), {"b": b}).scalar() == 0
    DocumentRepo(db).prune(a, lambda uri: True)  # the last chunk of a collection: its size row goes too
    _assert_stats_match_chunks(db)
    _ingest(db, a, 5, seed=8)
    with db.begin() as conn:
        conn.execute(text("TRUNCATE chunks CASCADE"))
    _assert_stats_match_chunks(db)


def test_chunk_text_is_replaced_not_edited(db: Database) -> None:
    a = _collection(db, "lex-a")
    _ingest(db, a, 2, seed=9)
    with pytest.raises(DBAPIError, match="replaced, not edited"), db.begin() as conn:
        conn.execute(text("UPDATE chunks SET text = 'something else'"))
    with db.begin() as conn:  # re-embedding stays possible
        conn.execute(text("UPDATE chunks SET embedding = embedding"))
    _assert_stats_match_chunks(db)


def test_upgrading_to_the_covering_key_fills_the_lengths_of_existing_postings(tmp_path):
    """Migration 0008 on a database that already has postings, and its downgrade (the 0006 trigger back)."""
    db = Database.from_config(store_config(make_settings(tmp_path)))
    try:
        upgrade(db, 16, "0007")
        assert current_revision(db) == "0007"
        a = _collection(db, "lex-a")
        _ingest(db, a, 30, seed=11)
        upgrade(db, 16)  # 0008: doc_len backfilled from chunks, key rebuilt covering
        _assert_stats_match_chunks(db)
        for query in QUERIES[:5]:
            assert _bm25(db, query, [a], depth=10, cap=1000) == pytest.approx(
                _bm25(db, query, [a], depth=10, cap=0), rel=1e-5), query
        downgrade(db, "0007")
        _ingest(db, a, 5, seed=12, prefix="late")  # the restored insert trigger writes postings again
        with db.connect() as conn:
            late = conn.execute(text("SELECT count(*) FROM chunk_terms ct JOIN chunks c ON c.id = ct.chunk_id "
                                     "JOIN documents d ON d.id = c.document_id "
                                     "WHERE d.source_uri LIKE 'late%'")).scalar_one()
        assert late > 0
    finally:
        db.dispose()
