"""Connection management: the engine behind transaction pooling (PgBouncer-style).

A pool of ONE server connection shared by two engines stands in for PgBouncer
in transaction mode: every transaction of every "client" runs on the same
backend, one after another, and nothing is reset in between except what the
transaction itself undoes. The engine must therefore keep no session state:
``hnsw.ef_search`` is ``SET LOCAL`` and must not leak into the next transaction.

To make ``ef_search`` observable on a dozen rows, the database defaults to
``enable_seqscan = off`` (so the HNSW index is used), and the checks re-run the
retriever's vector SQL with ``hnsw.iterative_scan`` off in the same
transaction: an HNSW scan then returns at most ``ef_search`` rows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.configs import store_config
from rag_engine.engine import RagEngine
from rag_engine.store.chunks import VECTOR_SQL
from rag_engine.store.database import Database
from rag_engine.values import Record
from tests.conftest import make_engine_config, make_settings

PGVECTOR_DEFAULT_EF_SEARCH = "40"
TOPICS = ["parental leave", "expense reports", "laptop refresh", "on-call rotation", "office plants",
          "badge access", "travel booking", "code review", "vacation carry-over", "security training",
          "coffee machine", "parking permits"]


@contextmanager
def fresh_database(server: Database, name: str, *defaults: str) -> Iterator[str]:
    """A new, empty database on ``server`` (``ALTER DATABASE ... SET`` each default); yields its URL."""
    admin = server.engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
        for default in defaults:
            conn.execute(text(f"ALTER DATABASE {name} SET {default}"))
    try:
        yield make_url(server.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def pooled_url(_scratch_db):
    """A fresh database on the scratch server, configured as described above (no extension yet:
    the engine's first connection predates the migration that creates it)."""
    with fresh_database(_scratch_db, f"ragbot_pooling_{os.getpid()}", "enable_seqscan = off") as url:
        yield url


def pooled_db(url: str, tmp_path, **overrides) -> Database:
    options: dict[str, object] = {"db_pool_size": 1, "db_max_overflow": 0, "db_prepared_statements": False}
    options.update(overrides)
    return Database(url, store_config(make_settings(tmp_path, **options)))


@pytest.fixture(scope="module")
def bouncer(pooled_url, embedder, tmp_path_factory):
    """One server connection (the 'bouncer') and two engines (two 'bot replicas') on it."""
    db = pooled_db(pooled_url, tmp_path_factory.mktemp("pooled"))
    first = RagEngine(make_engine_config(db.config.data_dir), db=db, embedder=embedder, generator=None, reranker=None,
                      auto_migrate=True)
    first.ingest_records([Record(source_uri=f"mem://{i}", title=t.title(), text=f"Our policy on {t}: ask the {t} team.")
                          for i, t in enumerate(TOPICS)], "policies")
    second = RagEngine(make_engine_config(db.config.data_dir), db=db, embedder=embedder, generator=None, reranker=None)
    yield db, first, second
    db.dispose()


def backend_pid(db: Database) -> int:
    with db.begin() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def current_ef_search(db: Database) -> str:
    with db.begin() as conn:
        return conn.execute(text("SELECT current_setting('hnsw.ef_search')")).scalar_one()


def test_set_local_ef_search_is_visible_inside_the_transaction_and_gone_after(bouncer):
    db, first, _ = bouncer
    pid = backend_pid(db)
    qv = first.embedder.embed_query("who handles parking permits?")
    everything = first.every_collection().ids()
    with first.store.chunks.searching() as search:
        search.vector(qv, everything, depth=10, ef_search=7)
        inside = search.conn.execute(text("SELECT current_setting('hnsw.ef_search'), "
                                   "current_setting('hnsw.iterative_scan'), pg_backend_pid()")).one()
    assert inside == ("7", "relaxed_order", pid)
    # the next transaction gets the very same server connection, with the defaults back
    with db.begin() as conn:
        after = conn.execute(text("SELECT current_setting('hnsw.ef_search'), "
                                  "current_setting('hnsw.iterative_scan'), pg_backend_pid()")).one()
    assert after == (PGVECTOR_DEFAULT_EF_SEARCH, "off", pid)


def rows_within_ef_search(conn, qv) -> int:
    """The retriever's vector SQL without iterative scan: HNSW returns at most ef_search rows."""
    conn.execute(text("SELECT set_config('hnsw.iterative_scan', 'off', true)"))
    return len(conn.execute(text(VECTOR_SQL.format(filter="")), {"qv": qv, "depth": 50}).all())


def test_ef_search_takes_effect_per_transaction_across_interleaved_clients(bouncer):
    db, first, second = bouncer
    pid = backend_pid(db)
    qv = first.embedder.embed_query("what is the policy on code review?")
    everything = first.every_collection().ids()
    seen = []
    for client, ef in [(first, 1), (second, 200), (first, 1), (second, 200)]:
        with client.store.chunks.searching() as search:
            search.vector(qv, everything, depth=50, ef_search=ef)
            seen.append(rows_within_ef_search(search.conn, qv))
    assert seen == [1, len(TOPICS), 1, len(TOPICS)]
    # a transaction that sets nothing runs with pgvector's default, not the previous client's 200
    with db.begin() as conn:
        assert conn.execute(text("SELECT current_setting('hnsw.ef_search')")).scalar_one() == PGVECTOR_DEFAULT_EF_SEARCH
        conn.execute(text("SELECT set_config('hnsw.ef_search', '3', true)"))
        assert rows_within_ef_search(conn, qv) == 3
    assert current_ef_search(db) == PGVECTOR_DEFAULT_EF_SEARCH
    assert backend_pid(db) == pid  # all of it on one server connection


def test_searches_with_low_and_high_ef_search_both_find_the_answer(bouncer):
    """Through the engine (iterative scan on), ef_search=1 still finds the right chunk."""
    _, first, second = bouncer
    question = "what is the policy on code review?"
    everything = first.every_collection()
    narrow = first.retriever.search(question, everything, k=3, mode="vector", ef_search=1)
    wide = second.retriever.search(question, everything, k=3, mode="vector", ef_search=200)
    assert narrow[0].title == wide[0].title == "Code Review"
    assert [h.chunk_id for h in narrow] == [h.chunk_id for h in wide]


def test_the_engine_leaves_no_session_state_on_the_connection(bouncer):
    db, first, second = bouncer
    second.answer("How do I book travel?", second.scope_for(["policies"]))
    for _ in range(6):  # past psycopg's prepare threshold (5), all in committed transactions
        first.retriever.search("expense reports", first.every_collection(), k=3)
    with db.begin() as conn:
        session_settings = conn.execute(text("SELECT name FROM pg_settings WHERE source = 'session'")).scalars().all()
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        advisory = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND pid = pg_backend_pid()")).scalar_one()
        channels = conn.execute(text("SELECT count(*) FROM pg_listening_channels()")).scalar_one()
        temp_tables = conn.execute(text("SELECT count(*) FROM pg_class WHERE relpersistence = 't'")).scalar_one()
    assert session_settings == []
    assert (prepared, advisory, channels, temp_tables) == (0, 0, 0, 0)


def test_prepared_statements_are_kept_unless_turned_off(bouncer, pooled_url, embedder, tmp_path):
    """The default prepares repeated queries (fine on a direct connection or PgBouncer >= 1.21)."""
    db = pooled_db(pooled_url, tmp_path, db_prepared_statements=True)
    try:
        engine = RagEngine(make_engine_config(db.config.data_dir), db=db, embedder=embedder, generator=None,
                           reranker=None)
        everything = engine.every_collection()  # before the loop: its read-only transaction ends in a ROLLBACK,
        for _ in range(6):                      # which makes psycopg forget what it prepared
            engine.retriever.search("expense reports", everything, k=3)
        with db.begin() as conn:
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        assert prepared > 0
    finally:
        db.dispose()


def test_statement_timeout_cancels_a_runaway_query(pooled_url, tmp_path):
    db = pooled_db(pooled_url, tmp_path, db_statement_timeout_ms=200)
    try:
        with db.begin() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "200ms"
        with pytest.raises(OperationalError, match="statement timeout"), db.begin() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert db.ping()  # the pool recovers: the connection is still usable
    finally:
        db.dispose()


def test_statement_timeout_zero_leaves_the_server_default(pooled_url, tmp_path):
    """0 sends no startup option, so a role/database default (the PgBouncer set-up) applies."""
    db = pooled_db(pooled_url, tmp_path, db_statement_timeout_ms=0)
    try:
        with db.begin() as conn:
            source = conn.execute(text("SELECT source FROM pg_settings WHERE name = 'statement_timeout'")).scalar_one()
        assert source == "default"
    finally:
        db.dispose()


def test_one_sized_pool_is_shared_by_every_thread(bouncer, pooled_url, embedder, tmp_path):
    db = pooled_db(pooled_url, tmp_path, db_pool_size=2, db_max_overflow=0)
    engine = RagEngine(make_engine_config(db.config.data_dir), db=db, embedder=embedder, generator=None, reranker=None)
    pids: set[int] = set()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        try:
            for _ in range(3):
                engine.search("badge access", engine.scope_for(["policies"]), k=2)
                pid = backend_pid(db)
                with lock:
                    pids.add(pid)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert 1 <= len(pids) <= 2
        assert db.engine.pool.size() == 2
    finally:
        db.dispose()


def test_a_connection_opened_before_pgvector_existed_can_use_vectors_once_it_does(_scratch_db, tmp_path):
    with fresh_database(_scratch_db, f"ragbot_vector_late_{os.getpid()}") as url:
        db = pooled_db(url, tmp_path)
        try:
            assert db.ping()  # the pool's only connection, opened without the extension
            pid = backend_pid(db)
            with db.begin() as conn:
                conn.execute(text("CREATE EXTENSION vector"))
            with db.begin() as conn:
                distance = conn.execute(text("SELECT CAST(:v AS vector) <=> CAST('[1,0]' AS vector), "
                                             "pg_backend_pid()"), {"v": np.array([0.0, 1.0], dtype=np.float32)}).one()
            assert distance == (pytest.approx(1.0), pid)
        finally:
            db.dispose()
