"""The job queue: the ``jobs`` table and its ``ragbot_jobs`` notifications.

Every change after a claim is conditional on the owning worker and the
``running`` status, so a worker presumed dead cannot overwrite a new run; the
methods report whether their change applied and ``rag_engine.jobs`` decides
what that means. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow

OPEN_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("done", "failed")
# The predicates of the partial unique indexes ``jobs_one_open_retrain`` (migration 0001) and
# ``jobs_one_open_retrieval_retrain`` (0007): an insert that names one as its conflict target does
# nothing while a job of that kind is open.
_ONE_OPEN = {kind: f"kind = '{kind}' AND status IN ('queued', 'running')" for kind in ("retrain", "retrieval_retrain")}


class JobRepo:
    """Queue rows over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, kind: str, payload: dict[str, Any], requested_by: str | None, *, singleton: bool) -> int | None:
        """Queue a job and notify listeners; the new id, or None when ``singleton`` and one is open."""
        stmt = insert(t.jobs).values(kind=kind, payload=payload, requested_by=requested_by)
        if singleton:
            if kind not in _ONE_OPEN:
                raise ValueError(f"no one-open index for job kind {kind!r}")
            stmt = stmt.on_conflict_do_nothing(index_elements=["kind"], index_where=text(_ONE_OPEN[kind]))
        with self._db.begin() as conn:
            new_id = conn.execute(stmt.returning(t.jobs.c.id)).scalar()
            if new_id is not None:
                conn.execute(text("SELECT pg_notify('ragbot_jobs', :kind)"), {"kind": kind})
        return int(new_id) if new_id is not None else None

    def claim(self, worker_id: str, kinds: Sequence[str] | None) -> AnyRow | None:
        """Mark the oldest queued job (of ``kinds``) running for ``worker_id``; its row, or None.

        ``SKIP LOCKED`` lets concurrent workers each take a different row without waiting.
        """
        j = t.jobs.c
        pick = select(j.id).where(j.status == "queued").order_by(j.created_at, j.id).limit(1)
        if kinds:
            pick = pick.where(j.kind.in_(list(kinds)))
        picked = pick.with_for_update(skip_locked=True).scalar_subquery()
        with self._db.begin() as conn:
            return conn.execute(
                t.jobs.update()
                .where(j.id == picked)
                .values(status="running", worker_id=worker_id, attempts=j.attempts + 1, heartbeat_at=func.now(),
                        started_at=func.now(), error=None)
                .returning(*t.jobs.c)
            ).first()

    def heartbeat(self, job_id: int, worker_id: str) -> bool:
        """Mark the job alive; False if ``worker_id`` no longer runs it."""
        j = t.jobs.c
        with self._db.begin() as conn:
            updated = conn.execute(
                t.jobs.update()
                .where(j.id == job_id, j.worker_id == worker_id, j.status == "running")
                .values(heartbeat_at=func.now())
            ).rowcount
        return bool(updated)

    def close(self, job_id: int, worker_id: str, *, status: str, result: dict[str, Any] | None,
              error: str | None) -> bool:
        """Record the outcome of a running job; False if ``worker_id`` no longer runs it."""
        j = t.jobs.c
        with self._db.begin() as conn:
            updated = conn.execute(
                t.jobs.update()
                .where(j.id == job_id, j.worker_id == worker_id, j.status == "running")
                .values(status=status, finished_at=func.now(), result=result, error=error, heartbeat_at=func.now())
            ).rowcount
        return bool(updated)

    def release(self, job_id: int, worker_id: str, note: str) -> None:
        """Put a job ``worker_id`` runs back in the queue, ``note`` as its error."""
        j = t.jobs.c
        with self._db.begin() as conn:
            conn.execute(
                t.jobs.update()
                .where(j.id == job_id, j.worker_id == worker_id, j.status == "running")
                .values(status="queued", worker_id=None, heartbeat_at=None, error=note)
            )

    def requeue_stale(self, stale_after_s: float, max_attempts: int) -> list[int]:
        """Fail stale running jobs that used ``max_attempts`` claims, re-queue the other stale ones; their ids."""
        j = t.jobs.c
        stale = (j.status == "running") & (
            func.coalesce(j.heartbeat_at, j.started_at)
            < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, stale_after_s)
        )
        with self._db.begin() as conn:
            conn.execute(
                t.jobs.update()
                .where(stale, j.attempts >= max_attempts)
                .values(status="failed", finished_at=func.now(),
                        error=func.concat("worker stopped heartbeating; gave up after ", j.attempts, " attempts"))
            )
            rows = conn.execute(
                t.jobs.update()
                .where(stale)
                .values(status="queued", error=func.concat("re-queued: worker ", j.worker_id, " stopped heartbeating"),
                        worker_id=None, heartbeat_at=None)
                .returning(j.id)
            ).scalars().all()
        return [int(r) for r in rows]

    def get(self, job_id: int) -> AnyRow | None:
        with self._db.connect() as conn:
            return conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()

    def open(self, kinds: Sequence[str] | None) -> Sequence[AnyRow]:
        """Queued and running jobs (of ``kinds``), oldest first."""
        j = t.jobs.c
        query = select(t.jobs).where(j.status.in_(OPEN_STATUSES)).order_by(j.created_at, j.id)
        if kinds:
            query = query.where(j.kind.in_(list(kinds)))
        with self._db.connect() as conn:
            return conn.execute(query).all()

    def recent(self, kind: str | None, limit: int) -> Sequence[AnyRow]:
        """The latest finished jobs (of ``kind``), newest first."""
        j = t.jobs.c
        query = select(t.jobs).where(j.status.in_(FINISHED_STATUSES)).order_by(j.finished_at.desc(), j.id.desc())
        if kind:
            query = query.where(j.kind == kind)
        with self._db.connect() as conn:
            return conn.execute(query.limit(limit)).all()
