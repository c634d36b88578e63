"""Sources and their sync state: the ``sources`` table, the documents each one owns, and the
sync jobs the scheduler queues for them.

A sync is claimed with a lease (``sync_lease_until``) rather than a session-level lock, so it
works behind a transaction-pooling PgBouncer and a crashed worker's claim simply expires. The
end of a sync (deletions, cursor, counts) is one transaction, and the cursor moves only from
the value the sync started at (compare and set), so a superseded sync changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Text, cast, delete, exists, func, insert, or_, select, text

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow

_OPEN_JOB = ("queued", "running")


@dataclass(frozen=True, slots=True)
class SourceRow:
    id: int
    name: str
    kind: str
    config: dict[str, Any]
    collection_id: int
    collection_name: str
    schedule_s: int | None
    cursor: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    error_count: int
    backoff_until: datetime | None
    sync_lease_until: datetime | None
    last_counts: dict[str, Any]
    documents: int  # documents it owns now
    created_at: datetime


def _seconds(value: Any) -> Any:
    """An interval of ``value`` seconds (a number or a column)."""
    return func.make_interval(0, 0, 0, 0, 0, 0, cast(value, Float))


class SourceRepo:
    """``sources`` rows, the ``documents`` they own, and their ``jobs``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- definitions -----------------------------------------------------------
    def add(self, name: str, kind: str, config: Mapping[str, Any], collection_id: int,
            schedule_s: int | None) -> int:
        """A new source; ``DuplicateKey`` when the name is taken."""
        with self.db.begin() as conn:
            return int(conn.execute(
                insert(t.sources).values(name=name, kind=kind, config=dict(config), collection_id=collection_id,
                                         schedule_s=schedule_s).returning(t.sources.c.id)
            ).scalar_one())

    def all(self) -> list[SourceRow]:
        with self.db.connect() as conn:
            return [_source(r) for r in conn.execute(_select().order_by(t.sources.c.name))]

    def by_name(self, name: str) -> SourceRow | None:
        with self.db.connect() as conn:
            row = conn.execute(_select().where(t.sources.c.name == name)).first()
        return _source(row) if row is not None else None

    def get(self, source_id: int) -> SourceRow | None:
        with self.db.connect() as conn:
            row = conn.execute(_select().where(t.sources.c.id == source_id)).first()
        return _source(row) if row is not None else None

    def remove(self, source_id: int, *, keep_documents: bool) -> int:
        """Delete the source and (unless ``keep_documents``: detached instead) its documents; how many."""
        d = t.documents.c
        with self.db.begin() as conn:
            if keep_documents:
                n = conn.execute(t.documents.update().where(d.source_id == source_id)
                                 .values(source_id=None, external_id=None)).rowcount
            else:
                n = conn.execute(select(func.count()).select_from(t.documents)
                                 .where(d.source_id == source_id)).scalar_one()
            conn.execute(delete(t.sources).where(t.sources.c.id == source_id))  # cascades to its documents
        return int(n)

    # -- one sync --------------------------------------------------------------
    def acquire(self, source_id: int, lease_s: float) -> SourceRow | None:
        """Claim the source for one sync (``lease_s`` seconds, renewable); None if another sync holds it."""
        s = t.sources.c
        with self.db.begin() as conn:
            claimed = conn.execute(
                t.sources.update()
                .where(s.id == source_id, or_(s.sync_lease_until.is_(None), s.sync_lease_until < func.now()))
                .values(sync_lease_until=func.now() + _seconds(lease_s), last_attempt_at=func.now())
                .returning(s.id)
            ).scalar()
        return self.get(source_id) if claimed is not None else None

    def renew(self, source_id: int, lease_s: float) -> None:
        s = t.sources.c
        with self.db.begin() as conn:
            conn.execute(t.sources.update().where(s.id == source_id)
                         .values(sync_lease_until=func.now() + _seconds(lease_s)))

    def release(self, source_id: int) -> None:
        """End a sync's claim without recording an outcome (it was interrupted)."""
        with self.db.begin() as conn:
            conn.execute(t.sources.update().where(t.sources.c.id == source_id).values(sync_lease_until=None))

    def external_ids(self, source_id: int) -> dict[str, str]:
        """``external_id -> source_uri`` of the documents the source owns."""
        d = t.documents.c
        with self.db.connect() as conn:
            rows = conn.execute(select(d.external_id, d.source_uri).where(d.source_id == source_id)).all()
        return {r.external_id: r.source_uri for r in rows if r.external_id is not None}

    def commit_sync(self, source_id: int, *, from_cursor: str | None, to_cursor: str,
                    delete_external_ids: Iterable[str], counts: Mapping[str, Any]) -> int | None:
        """In one transaction: delete the documents (and chunks) of ``delete_external_ids``, move the
        cursor from ``from_cursor`` to ``to_cursor``, record success and release the lease.

        Returns how many documents were deleted, or None (nothing changed) when the cursor is no
        longer ``from_cursor``: another sync committed first.
        """
        s, d = t.sources.c, t.documents.c
        with self.db.begin() as conn:
            moved = conn.execute(
                t.sources.update()
                .where(s.id == source_id, s.cursor.is_not_distinct_from(from_cursor))
                .values(cursor=to_cursor, last_success_at=func.now(), last_error=None, error_count=0,
                        backoff_until=None, sync_lease_until=None, last_counts=dict(counts))
            ).rowcount
            if not moved:
                return None
            doomed = sorted(set(delete_external_ids))
            if not doomed:
                return 0
            return int(conn.execute(
                delete(t.documents).where(d.source_id == source_id, d.external_id.in_(doomed))
            ).rowcount)

    def record_failure(self, source_id: int, error: str, *, backoff_base_s: float,
                       backoff_max_s: float) -> SourceRow | None:
        """Count a failed sync, keep its error, release the lease and back off:
        ``min(backoff_max_s, backoff_base_s * 2 ** (failures - 1))`` seconds from now."""
        s = t.sources.c
        delay = func.least(backoff_max_s, backoff_base_s * func.power(2, s.error_count))  # error_count before +1
        with self.db.begin() as conn:
            conn.execute(
                t.sources.update().where(s.id == source_id)
                .values(last_error=error, error_count=s.error_count + 1, sync_lease_until=None,
                        backoff_until=func.now() + _seconds(delay))
            )
        return self.get(source_id)

    # -- scheduling ------------------------------------------------------------
    def enqueue_due(self, job_kind: str) -> list[int]:
        """Queue a ``job_kind`` job (payload ``{"source_id": id}``) for every scheduled source that is due:
        its interval has passed since its last attempt, it is not backing off, not being synced and has
        no open job. Returns the source ids queued. Rows are taken ``SKIP LOCKED`` so two workers
        scheduling at once do not both queue the same source."""
        s, j = t.sources.c, t.jobs.c
        open_job = exists().where(j.kind == job_kind, j.status.in_(_OPEN_JOB),
                                  j.payload["source_id"].astext == cast(s.id, Text))
        due = (
            select(s.id)
            .where(
                s.schedule_s.is_not(None),
                or_(s.last_attempt_at.is_(None), s.last_attempt_at + _seconds(s.schedule_s) <= func.now()),
                or_(s.backoff_until.is_(None), s.backoff_until <= func.now()),
                or_(s.sync_lease_until.is_(None), s.sync_lease_until < func.now()),
                ~open_job,
            )
            .order_by(s.id)
            .with_for_update(of=t.sources, skip_locked=True)
        )
        with self.db.begin() as conn:
            ids = [int(i) for i in conn.execute(due).scalars()]
            if ids:
                conn.execute(insert(t.jobs), [{"kind": job_kind, "payload": {"source_id": i},
                                               "requested_by": "scheduler"} for i in ids])
                conn.execute(text("SELECT pg_notify('ragbot_jobs', :kind)"), {"kind": job_kind})
        return ids


def _select() -> Any:
    s, d = t.sources.c, t.documents.c
    n_docs = (select(func.count()).select_from(t.documents).where(d.source_id == s.id)
              .scalar_subquery().label("documents"))
    return (select(t.sources, t.collections.c.name.label("collection_name"), n_docs)
            .join(t.collections, t.collections.c.id == s.collection_id))


def _source(row: AnyRow) -> SourceRow:
    return SourceRow(
        id=int(row.id), name=row.name, kind=row.kind, config=dict(row.config or {}),
        collection_id=int(row.collection_id), collection_name=row.collection_name, schedule_s=row.schedule_s,
        cursor=row.cursor, last_attempt_at=row.last_attempt_at, last_success_at=row.last_success_at,
        last_error=row.last_error, error_count=int(row.error_count), backoff_until=row.backoff_until,
        sync_lease_until=row.sync_lease_until, last_counts=dict(row.last_counts or {}),
        documents=int(row.documents or 0), created_at=row.created_at,
    )

