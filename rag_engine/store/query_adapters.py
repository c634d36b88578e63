"""Query adapters (learned transforms of query embeddings): the ``query_adapters`` table.

The rules (which statuses a new row may take, what activation and rollback change)
live in ``rag_engine.training.retrieval_registry``; a rule spanning several statements
runs inside :meth:`QueryAdapterRepo.transaction` on a :class:`QueryAdapterTx`. The
search path reads only :meth:`QueryAdapterRepo.active_version` (one indexed row) per
question and the weights once per version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, text

from rag_engine.store import schema as t
from rag_engine.store.database import Database

_q = t.query_adapters.c
# every column but the weights: listing versions never moves the matrices
_SUMMARY = (_q.id, _q.version, _q.embedding_model, _q.dim, _q.rank, _q.data_snapshot, _q.metrics, _q.status,
            _q.previous_version, _q.created_at, _q.activated_at)


@dataclass(frozen=True, slots=True)
class QueryAdapterRecord:
    id: int
    version: str
    embedding_model: str
    dim: int
    rank: int
    data_snapshot: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    previous_version: str | None
    created_at: datetime
    activated_at: datetime | None


class QueryAdapterTx:
    """The ``query_adapters`` statements of one open transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, version: str, *, lock: bool = False) -> QueryAdapterRecord | None:
        return self._first(select(*_SUMMARY).where(_q.version == version), lock)

    def active(self, *, lock: bool = False) -> QueryAdapterRecord | None:
        return self._first(select(*_SUMMARY).where(_q.status == "active"), lock)

    def active_version(self) -> str | None:
        """The active version's name (a search asks this once per question, in its own transaction)."""
        value = self._conn.execute(select(_q.version).where(_q.status == "active")).scalar_one_or_none()
        return str(value) if value is not None else None

    def weights(self, version: str) -> tuple[str, int, bytes] | None:
        """(embedding model, dimension, weight bytes) of ``version``."""
        row = self._conn.execute(select(_q.embedding_model, _q.dim, _q.weights).where(_q.version == version)).first()
        return (str(row.embedding_model), int(row.dim), bytes(row.weights)) if row is not None else None

    def retire(self, adapter_id: int) -> None:
        self._conn.execute(t.query_adapters.update().where(_q.id == adapter_id).values(status="retired"))

    def activate(self, adapter_id: int, *, previous_version: str | None) -> None:
        """Make the row active, recording the version it replaces (what a rollback restores)."""
        self._conn.execute(t.query_adapters.update().where(_q.id == adapter_id)
                           .values(status="active", previous_version=previous_version, activated_at=func.now()))

    def reactivate(self, adapter_id: int) -> None:
        """Make a retired row active again; its ``previous_version`` stays (rolling back walks further back)."""
        self._conn.execute(t.query_adapters.update().where(_q.id == adapter_id)
                           .values(status="active", activated_at=func.now()))

    def _first(self, query: Select[Any], lock: bool) -> QueryAdapterRecord | None:
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        return _record(row) if row is not None else None


class QueryAdapterRepo:
    """Reads and writes query adapter rows over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve_id(self) -> int:
        """A fresh id from the table's sequence, never handed out twice (the version name is made from it)."""
        with self._db.begin() as conn:
            return int(conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('query_adapters', 'id'))")).scalar_one())

    def insert(self, *, adapter_id: int | None, version: str, embedding_model: str, dim: int, rank: int,
               weights: bytes, data_snapshot: dict[str, Any], metrics: dict[str, Any],
               status: str) -> QueryAdapterRecord:
        ids = {"id": adapter_id} if adapter_id is not None else {}
        with self._db.begin() as conn:
            row = conn.execute(
                t.query_adapters.insert()
                .values(**ids, version=version, embedding_model=embedding_model, dim=dim, rank=rank,
                        weights=weights, data_snapshot=data_snapshot, metrics=metrics, status=status)
                .returning(*_SUMMARY)
            ).one()
        return _record(row)

    def get(self, version: str) -> QueryAdapterRecord | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).get(version)

    def active(self) -> QueryAdapterRecord | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).active()

    def active_version(self) -> str | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).active_version()

    def weights(self, version: str) -> tuple[str, int, bytes] | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).weights(version)

    def list(self) -> list[QueryAdapterRecord]:
        """All versions, newest first."""
        with self._db.connect() as conn:
            return [_record(r) for r in conn.execute(select(*_SUMMARY).order_by(_q.created_at.desc(), _q.id.desc()))]

    def set_outcome(self, version: str, *, status: str, metrics: dict[str, Any]) -> None:
        with self._db.begin() as conn:
            conn.execute(t.query_adapters.update().where(_q.version == version).values(status=status, metrics=metrics))

    @contextmanager
    def transaction(self) -> Iterator[QueryAdapterTx]:
        """One transaction (committed on success, rolled back on an exception) for a rule of several statements."""
        with self._db.begin() as conn:
            yield QueryAdapterTx(conn)


def _record(row: Any) -> QueryAdapterRecord:
    return QueryAdapterRecord(
        id=int(row.id), version=row.version, embedding_model=row.embedding_model, dim=int(row.dim),
        rank=int(row.rank), data_snapshot=dict(row.data_snapshot or {}), metrics=dict(row.metrics or {}),
        status=row.status, previous_version=row.previous_version, created_at=row.created_at,
        activated_at=row.activated_at,
    )
