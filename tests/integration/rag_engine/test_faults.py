"""Failure handling against a real, dedicated embedded PostgreSQL that the tests
stop and start (the shared fixtures' servers are never touched): users get a
clear "temporarily unavailable", nothing dies, the bot recovers by itself, and
every acknowledged interaction and feedback write is in the database afterwards."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.configs import bot_config, engine_config, store_config
from bot.core import UNAVAILABLE, BotCore
from bot.types import Actor, AskRequest, Location
from bot.write_queue import WriteQueue
from rag_engine.chunking import chunk_document
from rag_engine.engine import RagEngine
from rag_engine.interactions import InteractionContext, get_interaction
from rag_engine.parsing import parse_file
from rag_engine.scope import CollectionScope
from rag_engine.store import schema as t
from rag_engine.store.database import Database, DatabaseUnavailable
from tests.conftest import make_settings

DOCS = {
    "vpn.md": "# VPN\n\nRequest VPN access in the it-help channel. You get a WireGuard profile within one business "
              "day. The VPN client must be version 2.4 or newer.\n",
    "expenses.md": "# Expenses\n\nTeam dinners are capped at $75 per person. File receipts in Expensify within "
                   "30 days. Flights over $900 need a director's approval.\n",
    "oncall.md": "# On-call\n\nThe on-call rotation changes every Monday at 10:00. The secondary takes over if the "
                 "primary does not acknowledge a page within 15 minutes.\n",
}
QUESTIONS = ["How do I get VPN access?", "What is the cap for team dinners?", "When does the on-call rotation change?",
             "Who approves expensive flights?", "What happens if the primary misses a page?"]
WHERE = Location("slack", "T1", "C1")
ANSWERED = ("answer", "not_found", "ask_back")


@pytest.fixture(scope="module")
def dedicated(tmp_path_factory, embedder):
    """A private embedded Postgres for this module, with three small documents."""
    data_dir = tmp_path_factory.mktemp("fault-db")
    settings = make_settings(data_dir, db_connect_timeout_s=2, db_retry_attempts=2)
    db = Database.from_config(store_config(settings))
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)
    docs = data_dir / "docs"
    docs.mkdir()
    for name, body in DOCS.items():
        (docs / name).write_text(body)
    assert engine.ingest([docs], "default").documents_written == len(DOCS)
    yield settings, engine, docs
    engine.close()  # a restarted server is stopped at exit by EmbeddedPostgres.start's own hook


def _start(db) -> None:
    """Start the stopped server again. Running as root, pgserver runs Postgres as its own user; another
    pytest session may have closed /tmp/pytest-of-root to others since, so reopen the path first."""
    if os.geteuid() == 0:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(db.embedded.pgdata)
    db.embedded.start()


@pytest.fixture()
def fresh(dedicated):
    """The dedicated server, running, with the logs of earlier tests removed (documents kept)."""
    settings, engine, docs = dedicated
    if not engine.db.ping():
        _start(engine.db)
    with engine.db.begin() as conn:
        conn.exec_driver_sql("TRUNCATE processed_events, audit_log, corrections, feedback, interactions "
                             "RESTART IDENTITY CASCADE")
    return settings, engine, docs


def _count(db, table) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@contextmanager
def _stopped(db):
    db.embedded.stop()
    try:
        yield
    finally:
        _start(db)


async def test_outage_during_concurrent_asks_loses_no_acknowledged_write(fresh):
    settings, engine, _ = fresh
    db = engine.db
    core = BotCore(bot_config(settings), engine)
    stopped, restarted = asyncio.Event(), asyncio.Event()
    replies: dict[int, object] = {}
    votes: list[tuple[int, str, object]] = []  # (interaction id, user key, result)

    async def one(i: int) -> None:
        # 0-24 run before and across the stop, 25-39 during the outage, 40-49 after the restart
        if 25 <= i < 40:
            await stopped.wait()
        elif i >= 40:
            await restarted.wait()
        actor = Actor("slack", f"U{i}")
        reply = await core.ask(AskRequest(actor, WHERE, QUESTIONS[i % len(QUESTIONS)], event_id=f"ev-{i}"))
        replies[i] = reply
        if reply.interaction_id is not None:
            result = await core.vote(actor, reply.interaction_id, 1 if i % 2 else -1, reason="fault test")
            votes.append((reply.interaction_id, actor.user_key, result))

    async def outage() -> None:
        while len(replies) < 10:
            await asyncio.sleep(0.02)
        await asyncio.to_thread(db.embedded.stop)
        stopped.set()
        # feedback on answers given before the outage, sent while the database is down, must wait in memory
        early = [(i, r) for i, r in list(replies.items()) if r.interaction_id is not None][:5]
        for i, reply in early:
            actor = Actor("slack", f"UOUT{i}")
            result = await core.vote(actor, reply.interaction_id, 1)
            assert result.ok and result.data.get("queued"), result
            votes.append((reply.interaction_id, actor.user_key, result))
        while not all(i in replies for i in range(25, 40)):
            await asyncio.sleep(0.02)
        await asyncio.to_thread(_start, db)
        restarted.set()

    await asyncio.gather(*(one(i) for i in range(50)), outage())
    assert await asyncio.to_thread(core.writes.queue.drain, 60.0), core.writes.queue.stats

    assert len(replies) == 50
    for i, reply in replies.items():
        assert reply.kind in (*ANSWERED, "error"), (i, reply)
        if reply.kind == "error":
            assert reply.text == UNAVAILABLE or reply.text.startswith("Something went wrong"), reply.text
    assert all(replies[i].text == UNAVAILABLE for i in range(25, 40))  # the outage was real and said so
    assert all(replies[i].kind in ANSWERED for i in range(40, 50))  # and the bot recovered by itself

    acknowledged_interactions = sum(r.kind in ANSWERED or (r.kind == "error" and r.interaction_id is not None)
                                    for r in replies.values())
    acknowledged_votes = {(iid, user) for iid, user, result in votes if result.ok}
    stats = core.writes.queue.stats
    assert stats.given_up == 0 and stats.queued >= 5 and stats.pending == 0
    assert _count(db, t.interactions) == acknowledged_interactions
    assert _count(db, t.feedback) == len(acknowledged_votes)
    with db.connect() as conn:
        stored = set(conn.execute(select(t.feedback.c.interaction_id, t.feedback.c.user_key)).all())
    assert stored == acknowledged_votes


async def test_answer_logged_during_an_outage_keeps_its_id(fresh):
    settings, engine, _ = fresh
    core = BotCore(bot_config(settings), engine)
    answer = engine.answer("How do I get VPN access?", engine.every_collection())
    ctx = InteractionContext("slack", "T1", "C1", None, "slack:U1")
    first = core.writes.log_interaction(ctx, "warm-up", answer, CollectionScope.of([1]))  # also fills the spare ids
    with _stopped(engine.db):
        queued_id = core.writes.log_interaction(ctx, "How do I get VPN access?", answer, CollectionScope.of([1]))
        assert queued_id is not None and queued_id != first
        vote = await core.vote(Actor("slack", "U2"), queued_id, 1)
        assert vote.ok and vote.data["queued"]
        assert core.writes.queue.stats.pending == 2
    assert core.writes.queue.drain(30.0)
    stored = get_interaction(engine.db, queued_id)
    assert stored is not None and stored.question == "How do I get VPN access?" and stored.answer == answer.text
    assert _count(engine.db, t.feedback) == 1


def test_a_write_retried_after_it_was_committed_is_stored_once(fresh):
    settings, engine, _ = fresh
    core = BotCore(bot_config(settings), engine)
    ctx = InteractionContext("slack", "T1", "C1", None, "slack:U1")
    interaction_id = core.writes.ids.take()
    write = core.writes.interaction_write(interaction_id, ctx, "q", None, CollectionScope.of([1]), error="boom")
    assert core.writes.queue.submit("interaction", write).result == interaction_id
    assert core.writes.queue.submit("interaction", write).result == interaction_id  # e.g. reply lost, retried
    assert _count(engine.db, t.interactions) == 1


async def test_a_full_queue_gives_up_loudly_and_keeps_the_rest(fresh, caplog):
    settings, engine, _ = fresh
    core = BotCore(bot_config(settings.model_copy(update={"write_queue_size": 2})), engine)
    ctx = InteractionContext("slack", "T1", "C1", None, "slack:U1")
    interaction_id = core.writes.log_interaction(ctx, "q", None, CollectionScope.of([1]), error="x")
    with _stopped(engine.db):
        results = [await core.vote(Actor("slack", f"U{n}"), interaction_id, 1) for n in range(3)]
    assert [r.ok for r in results] == [True, True, False]
    assert results[2].message == UNAVAILABLE  # the user is told it was not saved
    assert core.writes.queue.stats.given_up == 1
    assert any(r.levelno == logging.ERROR and "given up" in r.getMessage() for r in caplog.records)
    assert core.writes.queue.drain(30.0)
    assert _count(engine.db, t.feedback) == 2


def test_a_write_that_can_never_succeed_does_not_block_the_queue(fresh, caplog):
    settings, engine, _ = fresh
    core = BotCore(bot_config(settings), engine)
    ctx = InteractionContext("slack", "T1", "C1", None, "slack:U1")
    good = core.writes.log_interaction(ctx, "q", None, CollectionScope.of([1]), error="x")
    with _stopped(engine.db):
        assert core.writes.record_vote(999_999, "slack:U1", 1).queued  # no such interaction
        assert core.writes.record_vote(good, "slack:U2", -1).queued
    assert core.writes.queue.drain(30.0)
    assert core.writes.queue.stats.given_up == 1
    assert _count(engine.db, t.feedback) == 1
    assert any("vote write given up: LookupError" in r.getMessage() for r in caplog.records)


async def test_ask_and_admin_while_the_database_is_down_get_a_clear_message(fresh):
    settings, engine, _ = fresh
    core = BotCore(bot_config(settings.model_copy(update={"admin_user_ids": ["slack:UADMIN"]})), engine)
    first = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "When does the on-call rotation change?"))
    assert first.interaction_id is not None
    with _stopped(engine.db):
        reply = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "How do I get VPN access?", event_id="x1"))
        assert (reply.kind, reply.text) == ("error", UNAVAILABLE)
        admin = await core.admin(Actor("slack", "UADMIN"), WHERE, "collections list")
        assert not admin.ok and admin.message == UNAVAILABLE
        correction = await core.correct(Actor("slack", "U1"), first.interaction_id, "Mondays at 10:00 [1]")
        assert correction.ok and correction.data["queued"]
    # the same event delivered again after recovery is answered: the failed attempt did not consume it
    again = await core.ask(AskRequest(Actor("slack", "U1"), WHERE, "How do I get VPN access?", event_id="x1"))
    assert again.kind == "answer"
    assert core.writes.queue.drain(30.0) and _count(engine.db, t.corrections) == 1


def test_write_queue_orders_writes_behind_waiting_ones(fresh):
    """While anything waits, a new write queues behind it even if the database is back."""
    queue = WriteQueue(maxsize=10, retry_attempts=1, flush_initial_s=0.05)
    order: list[str] = []
    gate = threading.Event()

    def first() -> None:
        if not gate.is_set():
            raise DatabaseUnavailable("down")
        order.append("first")

    assert queue.submit("a", first).queued
    assert queue.submit("b", lambda: order.append("second")).queued  # would succeed, but must wait
    gate.set()
    assert queue.drain(10.0)
    assert order == ["first", "second"]
    queue.close()


def test_a_write_failing_mid_document_leaves_no_half_document(tmp_path_factory, fresh):
    """A real trigger makes Postgres refuse one chunk in the middle of a document's insert."""
    settings, engine, _ = fresh
    docs = tmp_path_factory.mktemp("policies")
    for n in range(4):
        body = "\n\n".join(f"## Rule {p}\n\nRule {p} of policy {n} applies to every team member "
                            f"{'FAIL-HERE ' if (n, p) == (2, 3) else ''}from the first day on." for p in range(6))
        (docs / f"policy-{n}.md").write_text(f"# Policy {n}\n\n{body}\n")
    with engine.db.begin() as conn:
        conn.exec_driver_sql("""
            CREATE FUNCTION refuse_marked_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF strpos(NEW.text, 'FAIL-HERE') > 0 THEN
                    RAISE EXCEPTION USING MESSAGE = 'refused chunk ' || NEW.ordinal;
                END IF;
                RETURN NEW;
            END $$""")
        conn.exec_driver_sql("CREATE TRIGGER refuse_marked_chunk BEFORE INSERT ON chunks "
                             "FOR EACH ROW EXECUTE FUNCTION refuse_marked_chunk()")
    try:
        with pytest.raises(Exception, match="refused chunk 3"):
            engine.ingest([docs], "atomic")
    finally:
        with engine.db.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_marked_chunk ON chunks")
            conn.exec_driver_sql("DROP FUNCTION refuse_marked_chunk()")

    d, c = t.documents.c, t.chunks.c
    with engine.db.connect() as conn:
        stored = conn.execute(select(d.source_uri, func.count(c.id), func.min(c.ordinal), func.max(c.ordinal))
                              .join(t.chunks, c.document_id == d.id, isouter=True)
                              .join(t.collections, t.collections.c.id == d.collection_id)
                              .where(t.collections.c.name == "atomic")
                              .group_by(d.source_uri)).all()
    written = {Path(uri).name: (n, lo, hi) for uri, n, lo, hi in stored}
    assert "policy-2.md" not in written  # its document row went with its chunks
    assert set(written) == {"policy-0.md", "policy-1.md"}  # written before it, each whole
    for name, (n, lo, hi) in written.items():
        expected = chunk_document(parse_file(docs / name, max_bytes=10**8), max_tokens=settings.chunk_tokens,
                                  overlap=settings.chunk_overlap, count_tokens=engine.ingestor.count_tokens)
        assert (n, lo, hi) == (len(expected), 0, len(expected) - 1), name
    # once the cause is gone, a second run writes what the first could not
    report = engine.ingest([docs], "atomic")
    assert (report.documents_written, report.documents_unchanged) == (2, 2)
