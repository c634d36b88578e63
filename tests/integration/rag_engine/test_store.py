"""Schema management against the real embedded PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import inspect, text

from app.configs import store_config
from rag_engine.store.database import Database, EmbeddingDimensionMismatch, SchemaNotReady
from rag_engine.store.migrate import current_revision, downgrade, ensure_schema, head_revision, upgrade
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def fresh_db(tmp_path_factory):
    db = Database.from_config(store_config(make_settings(tmp_path_factory.mktemp("migrations"))))
    yield db
    db.dispose()


def test_migrations_up_and_down(fresh_db):
    upgrade(fresh_db, 384)
    assert current_revision(fresh_db) == head_revision()
    tables = set(inspect(fresh_db.engine).get_table_names())
    assert {"collections", "documents", "chunks", "interactions", "feedback", "jobs", "adapters"} <= tables
    with fresh_db.connect() as conn:
        indexes = {r.indexname: r.indexdef for r in conn.execute(text("SELECT indexname, indexdef FROM pg_indexes"))}
        coltype = conn.execute(text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                                    "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'")).scalar()
    assert "hnsw" in indexes["chunks_embedding_hnsw"] and "vector_cosine_ops" in indexes["chunks_embedding_hnsw"]
    assert "gin" in indexes["chunks_tsv_gin"]
    assert coltype == "vector(384)"

    downgrade(fresh_db, "base")
    assert current_revision(fresh_db) is None
    assert "chunks" not in set(inspect(fresh_db.engine).get_table_names())

    upgrade(fresh_db, 384)  # and back up again: migrations are repeatable
    assert current_revision(fresh_db) == head_revision()


def test_external_database_is_not_migrated_silently(tmp_path):
    db = Database.from_config(store_config(make_settings(tmp_path)))
    try:
        with pytest.raises(SchemaNotReady, match="ragbot db upgrade"):
            ensure_schema(db, 384, auto_upgrade=False)
        ensure_schema(db, 384, auto_upgrade=True)
        ensure_schema(db, 384, auto_upgrade=False)  # now at head: accepted
    finally:
        db.dispose()


def test_dimension_mismatch_is_a_clear_error(_scratch_db):
    with pytest.raises(EmbeddingDimensionMismatch, match="384-dimensional"):
        ensure_schema(_scratch_db, 768)


def test_hnsw_index_is_usable_on_this_cpu(db):
    """The shipped pgvector binary crashed on CPUs without AVX-512; ours must not."""
    with db.begin() as conn:
        conn.execute(text("INSERT INTO collections (name, allow_training) VALUES ('c', true)"))
        conn.execute(text("INSERT INTO documents (collection_id, source_uri, title, content_hash) "
                          "VALUES (1, 'u', 't', 'h')"))
        vectors = np.random.default_rng(0).normal(size=(50, 384)).astype(np.float32)
        for i, v in enumerate(vectors):
            conn.execute(text("INSERT INTO chunks (document_id, collection_id, ordinal, text, text_hash, "
                              "token_count, embedding) VALUES (1, 1, :o, 'x', 'h', 1, :v)"), {"o": i, "v": v})
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(
            text("EXPLAIN SELECT id FROM chunks ORDER BY embedding <=> :v LIMIT 3"), {"v": vectors[7]}))
        top = conn.execute(text("SELECT ordinal FROM chunks ORDER BY embedding <=> :v LIMIT 1"),
                           {"v": vectors[7]}).scalar()
    assert "chunks_embedding_hnsw" in plan
    assert top == 7
