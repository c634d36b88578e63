"""What the Sources page says of each source's sync state: when it is next due or why it waits
(a sync running, one queued, backing off after failures), worked out from the row's timestamps
and the open ``source_sync`` jobs by the same rules ``SourceRepo.enqueue_due`` applies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from rag_engine.jobs import SOURCE_SYNC, Job
from rag_engine.source_admin import describe_counts, describe_schedule
from rag_engine.store.sources import SourceRow

State = Literal["syncing", "queued", "backing off", "failing", "due", "scheduled", "on request"]
COUNT_KEYS = ("written", "deleted", "unchanged", "skipped", "chunks")


@dataclass(frozen=True, slots=True)
class SourceState:
    source: SourceRow
    schedule: str  # "every 1h" / "on request"
    state: State
    next_due: str  # what waits, in words: "now", "2026-12-03 05:10 UTC", "after the running sync", ...
    job_id: int | None  # the open sync job of this source, if any
    counts: str  # the last successful sync's counts ("3 written, 1 deleted"; "no changes")


def source_states(sources: Iterable[SourceRow], open_jobs: Iterable[Job], now: datetime) -> list[SourceState]:
    """One ``SourceState`` per source; ``open_jobs``: the queued and running jobs (any kind)."""
    job_of: dict[int, int] = {}
    for job in open_jobs:
        source_id = job.payload.get("source_id")
        if job.kind == SOURCE_SYNC and isinstance(source_id, int):
            job_of.setdefault(source_id, job.id)
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return [_state(s, job_of.get(s.id), now) for s in sources]


def _state(s: SourceRow, job_id: int | None, now: datetime) -> SourceState:
    lease, backoff = _utc(s.sync_lease_until), _utc(s.backoff_until)
    if lease is not None and lease > now:
        state: State = "syncing"
        due = "after the running sync"
    elif job_id is not None:
        state, due = "queued", "now (a sync is queued)"
    elif s.schedule_s is None:  # the back-off only holds the scheduler back
        state, due = ("failing" if s.last_error else "on request"), "on request"
    elif backoff is not None and backoff > now:
        state, due = "backing off", f"{when(backoff)} (after {_failures(s.error_count)} in a row)"
    else:
        last = _utc(s.last_attempt_at)
        at = last + timedelta(seconds=s.schedule_s) if last is not None else None
        if at is None or at <= now:
            state, due = "due", "now (at the worker's next scheduling pass)"
        else:
            state, due = ("failing" if s.last_error else "scheduled"), when(at)
    return SourceState(s, describe_schedule(s.schedule_s), state, due, job_id, counts(s.last_counts))


def counts(last: dict[str, object]) -> str:
    """The non-zero counts of the last successful sync; "" before the first."""
    return describe_counts(last, COUNT_KEYS)


def _failures(n: int) -> str:
    return f"{n} failure{'' if n == 1 else 's'}"


def when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at is not None else "never"


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
