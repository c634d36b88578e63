"""Query adapters (learned transforms of query embeddings): the ``query_adapters`` table.

The rules (which statuses a new row may take, what activation and rollback change)
live in ``rag_engine.training.retrieval_registry``; a rule spanning several statements
runs inside :meth:`QueryAdapterRepo.transaction` on a :class:`QueryAdapterTx`. The
search path reads only :meth:`QueryAdapterRepo.active_version` (one indexed row) per
question and the weights once per version. What the two versioned tables share is in
``rag_engine.store.versions``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.sql.elements import ColumnElement

from rag_engine.store import schema as t
from rag_engine.store.versions import VersionRepo, VersionTx

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


class QueryAdapterTx(VersionTx[QueryAdapterRecord]):
    """The ``query_adapters`` statements of one open transaction."""

    table = t.query_adapters

    @classmethod
    def columns(cls) -> Sequence[ColumnElement[Any]]:
        return _SUMMARY

    @classmethod
    def record(cls, row: Any) -> QueryAdapterRecord:
        return QueryAdapterRecord(
            id=int(row.id), version=row.version, embedding_model=row.embedding_model, dim=int(row.dim),
            rank=int(row.rank), data_snapshot=dict(row.data_snapshot or {}), metrics=dict(row.metrics or {}),
            status=row.status, previous_version=row.previous_version, created_at=row.created_at,
            activated_at=row.activated_at,
        )

    def active_version(self) -> str | None:
        """The active version's name (a search asks this once per question, in its own transaction)."""
        value = self._conn.execute(select(_q.version).where(_q.status == "active")).scalar_one_or_none()
        return str(value) if value is not None else None

    def weights(self, version: str) -> tuple[str, int, bytes] | None:
        """(embedding model, dimension, weight bytes) of ``version``."""
        row = self._conn.execute(select(_q.embedding_model, _q.dim, _q.weights).where(_q.version == version)).first()
        return (str(row.embedding_model), int(row.dim), bytes(row.weights)) if row is not None else None


class QueryAdapterRepo(VersionRepo[QueryAdapterRecord, QueryAdapterTx]):
    """Reads and writes query adapter rows over one ``Database``."""

    tx = QueryAdapterTx

    def insert(self, *, adapter_id: int | None, version: str, embedding_model: str, dim: int, rank: int,
               weights: bytes, data_snapshot: dict[str, Any], metrics: dict[str, Any],
               status: str) -> QueryAdapterRecord:
        return self._insert(adapter_id, {"version": version, "embedding_model": embedding_model, "dim": dim,
                                         "rank": rank, "weights": weights, "data_snapshot": data_snapshot,
                                         "metrics": metrics, "status": status})

    def active_version(self) -> str | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).active_version()

    def weights(self, version: str) -> tuple[str, int, bytes] | None:
        with self._db.connect() as conn:
            return QueryAdapterTx(conn).weights(version)
