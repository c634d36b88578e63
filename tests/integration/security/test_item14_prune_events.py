"""Issue 15 item 14: ``processed_events`` no longer grows forever.

Delivery ids older than ``processed_events_retention_s`` (a day by default: Slack retries within
minutes, a Discord gateway replays within a session) are deleted by the worker and by every running
bot, every ``housekeeping_interval_s``.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from app.worker import Worker
from rag_engine.store import schema as t
from rag_engine.store.processed_events import ProcessedEventRepo
from tests.conftest import make_settings


def _record(db, key: str, age_s: float) -> None:
    with db.begin() as conn:
        conn.execute(text("INSERT INTO processed_events (event_key, created_at) "
                          "VALUES (:key, now() - make_interval(secs => :age))"), {"key": key, "age": age_s})


def _keys(db) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(select(t.processed_events.c.event_key)).scalars())


def _wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def test_prune_deletes_only_ids_older_than_the_retention(db):
    _record(db, "slack:Ev-old", 2 * 86_400)
    _record(db, "discord:old", 86_400 + 60)
    _record(db, "slack:Ev-recent", 3_600)
    _record(db, "slack:Ev-now", 0)
    assert ProcessedEventRepo(db).prune(86_400) == 2
    assert _keys(db) == {"slack:Ev-recent", "slack:Ev-now"}
    assert ProcessedEventRepo(db).prune(86_400) == 0
    with pytest.raises(ValueError):
        ProcessedEventRepo(db).prune(0)  # would forget deliveries that may still be retried


def test_the_worker_prunes_periodically(db, scratch_dir):
    settings = make_settings(scratch_dir, housekeeping_interval_s=0.2, processed_events_retention_s=3_600)
    worker = Worker(settings, db, worker_id="pruner", handlers={"echo": lambda ctx: {}})
    _record(db, "slack:Ev-stale", 7_200)
    _record(db, "slack:Ev-fresh", 10)
    loop = threading.Thread(target=worker.run_forever, kwargs={"idle_s": 0.1}, daemon=True)
    loop.start()
    try:
        _wait_until(lambda: "slack:Ev-stale" not in _keys(db))
        _record(db, "slack:Ev-later", 7_200)  # not only once at start: again on the next round
        _wait_until(lambda: "slack:Ev-later" not in _keys(db))
    finally:
        worker.stop()
        loop.join(10)
    assert not loop.is_alive()
    assert _keys(db) == {"slack:Ev-fresh"}


def test_a_running_bot_prunes_too_when_no_worker_is_deployed(engine, scratch_dir):
    from app.runtime import BotRuntime

    _record(db := engine.db, "discord:stale", 2 * 86_400)
    _record(db, "discord:fresh", 60)
    runtime = BotRuntime.start(make_settings(scratch_dir, housekeeping_interval_s=0.2), engine)
    try:
        _wait_until(lambda: "discord:stale" not in _keys(db))
    finally:
        runtime.close()
    assert _keys(db) == {"discord:fresh"}
