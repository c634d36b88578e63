"""A job queue in Postgres: enqueue, claim (``FOR UPDATE SKIP LOCKED``), heartbeat, finish.

A running job belongs to the worker named in ``worker_id``; every state change
after the claim checks that owner, so a worker that was presumed dead (stale
heartbeat) and whose job was handed to another cannot overwrite the new run's
result. At most one retrain, and one retrieval retrain, is queued or running (partial
unique indexes ``jobs_one_open_retrain``, ``jobs_one_open_retrieval_retrain``); asking
for another returns the open one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rag_engine.redact import redact_secrets
from rag_engine.store.database import Database
from rag_engine.store.jobs import JobRepo

RETRAIN = "retrain"
RETRIEVAL_RETRAIN = "retrieval_retrain"  # a query adapter from feedback pairs; queued on request or automatically
SOURCE_SYNC = "source_sync"  # payload {"source_id": id}; queued by the scheduler (rag_engine.sync) or on request
DEFAULT_MAX_ATTEMPTS = 3
# Kinds limited to one open job by a partial unique index (see migrations 0001, 0007 and JobRepo.add).
_SINGLETON_KINDS = frozenset({RETRAIN, RETRIEVAL_RETRAIN})


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    requested_by: str | None
    worker_id: str | None
    attempts: int
    heartbeat_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_id: int
    created: bool  # False: an open job of this kind already existed and is returned


class JobLost(RuntimeError):
    """This worker no longer owns the job (it was re-queued as stale and maybe re-claimed)."""


def enqueue(db: Database, kind: str, payload: dict[str, Any] | None = None, *,
            requested_by: str | None = None) -> Enqueued:
    """Queue a job. For a singleton kind (the retrains) an open job is returned instead of a second one."""
    new_id = JobRepo(db).add(kind, payload or {}, requested_by, singleton=kind in _SINGLETON_KINDS)
    if new_id is not None:
        return Enqueued(new_id, True)
    # Lost the race to another request (or one is open): return that one. Its
    # transaction has committed, or our insert would have waited on it.
    open_job = open_jobs(db, kinds=[kind])
    if not open_job:  # it finished in between: try once more
        return enqueue(db, kind, payload, requested_by=requested_by)
    return Enqueued(open_job[0].id, False)


def claim(db: Database, worker_id: str, kinds: Sequence[str] | None = None) -> Job | None:
    """Take the oldest queued job (of ``kinds``) for ``worker_id``, or None.

    ``SKIP LOCKED`` lets concurrent workers each take a different row without
    waiting on one another.
    """
    row = JobRepo(db).claim(worker_id, kinds)
    return _job(row) if row is not None else None


def heartbeat(db: Database, job_id: int, worker_id: str) -> None:
    """Mark the job alive; raises ``JobLost`` if this worker no longer owns it."""
    if not JobRepo(db).heartbeat(job_id, worker_id):
        raise JobLost(f"job {job_id} is no longer owned by worker {worker_id}")


def finish(db: Database, job_id: int, worker_id: str, result: dict[str, Any]) -> None:
    _close(db, job_id, worker_id, status="done", result=result, error=None)


def fail(db: Database, job_id: int, worker_id: str, error: str, result: dict[str, Any] | None = None) -> None:
    _close(db, job_id, worker_id, status="failed", result=result, error=redact_secrets(error, db.config.secrets)[:4000])


def release(db: Database, job_id: int, worker_id: str, note: str) -> None:
    """Give a running job back to the queue (e.g. the worker is shutting down)."""
    JobRepo(db).release(job_id, worker_id, redact_secrets(note, db.config.secrets)[:4000])


def requeue_stale(db: Database, stale_after_s: float, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[int]:
    """Re-queue running jobs whose heartbeat is older than ``stale_after_s``.

    Their worker is presumed dead. A job that has already used ``max_attempts``
    claims fails instead, so a job that kills its worker does not loop forever.
    Returns the ids re-queued.
    """
    return JobRepo(db).requeue_stale(stale_after_s, max_attempts)


def get(db: Database, job_id: int) -> Job | None:
    row = JobRepo(db).get(job_id)
    return _job(row) if row is not None else None


def open_jobs(db: Database, kinds: Sequence[str] | None = None) -> list[Job]:
    """Queued and running jobs, oldest first."""
    return [_job(r) for r in JobRepo(db).open(kinds)]


def recent(db: Database, kind: str | None = None, limit: int = 5) -> list[Job]:
    """The latest finished (done or failed) jobs, newest first."""
    return [_job(r) for r in JobRepo(db).recent(kind, limit)]


def _close(db: Database, job_id: int, worker_id: str, *, status: str, result: dict[str, Any] | None,
           error: str | None) -> None:
    if not JobRepo(db).close(job_id, worker_id, status=status, result=result, error=error):
        raise JobLost(f"job {job_id} is no longer owned by worker {worker_id}; its outcome was not recorded")


def _job(row: Any) -> Job:
    return Job(
        id=int(row.id), kind=row.kind, payload=dict(row.payload or {}), status=row.status,
        requested_by=row.requested_by, worker_id=row.worker_id, attempts=int(row.attempts),
        heartbeat_at=row.heartbeat_at, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, result=row.result, error=row.error,
    )
