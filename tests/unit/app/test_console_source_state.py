"""The Sources page's words for a source's sync state: running, queued, backing off, due, scheduled, on request."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.console.source_state import counts, source_states
from rag_engine.jobs import RETRAIN, SOURCE_SYNC, Job
from rag_engine.store.sources import SourceRow

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BASE = SourceRow(id=1, name="handbook", kind="git", config={}, collection_id=1, collection_name="docs",
                 schedule_s=3600, cursor=None, last_attempt_at=None, last_success_at=None, last_error=None,
                 error_count=0, backoff_until=None, sync_lease_until=None, last_counts={}, documents=0,
                 created_at=NOW - 10 * HOUR)


def job(job_id: int, kind: str, payload: dict) -> Job:
    return Job(id=job_id, kind=kind, payload=payload, status="queued", requested_by="cli", worker_id=None, attempts=0,
               heartbeat_at=None, created_at=NOW, started_at=None, finished_at=None, result=None, error=None)


def state_of(source: SourceRow, jobs: list[Job] | None = None) -> tuple[str, str, int | None]:
    (s,) = source_states([source], jobs or [], NOW)
    return s.state, s.next_due, s.job_id


def test_a_scheduled_source_is_due_an_interval_after_its_last_attempt():
    assert state_of(BASE)[:2] == ("due", "now (at the worker's next scheduling pass)")  # never attempted
    recent = replace(BASE, last_attempt_at=NOW - 0.5 * HOUR, last_success_at=NOW - 0.5 * HOUR)
    assert state_of(recent)[:2] == ("scheduled", "2026-12-03 12:30 UTC")
    assert state_of(replace(recent, last_attempt_at=NOW - 2 * HOUR))[0] == "due"
    (shown,) = source_states([recent], [], NOW)
    assert shown.schedule == "every 1h"


def test_a_failing_source_backs_off_and_a_running_or_queued_sync_comes_first():
    failing = replace(BASE, last_attempt_at=NOW - 2 * HOUR, last_error="clone failed", error_count=3,
                      backoff_until=NOW + 0.25 * HOUR)
    assert state_of(failing)[:2] == ("backing off", "2026-12-03 12:15 UTC (after 3 failures in a row)")
    assert state_of(replace(failing, backoff_until=NOW - HOUR))[0] == "due"  # the back-off is over
    queued = [job(7, RETRAIN, {}), job(8, SOURCE_SYNC, {"source_id": 2}), job(9, SOURCE_SYNC, {"source_id": 1})]
    assert state_of(failing, queued) == ("queued", "now (a sync is queued)", 9)
    running = replace(failing, sync_lease_until=NOW + HOUR)
    assert state_of(running, queued) == ("syncing", "after the running sync", 9)
    assert state_of(replace(running, sync_lease_until=NOW - HOUR), queued)[0] == "queued"  # an expired lease is no sync


def test_an_unscheduled_source_waits_for_a_request():
    manual = replace(BASE, schedule_s=None, last_attempt_at=NOW - 100 * HOUR)
    assert state_of(manual) == ("on request", "on request", None)
    failed = replace(manual, last_error="boom", error_count=1, backoff_until=NOW + HOUR)
    assert state_of(failed) == ("failing", "on request", None)  # the back-off holds only the scheduler
    (shown,) = source_states([manual], [], NOW)
    assert shown.schedule == "on request"


def test_counts_show_what_the_last_sync_changed():
    assert counts({}) == ""
    assert counts({"changed": 0, "written": 0, "unchanged": 4, "deleted": 0, "chunks": 0, "skipped": 0}) == \
        "4 unchanged"
    assert counts({"written": 0, "deleted": 0}) == "no changes"
    assert counts({"written": 3, "deleted": 1, "chunks": 12, "skipped": 0}) == "3 written, 1 deleted, 12 chunks"
