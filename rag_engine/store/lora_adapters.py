"""Trained LoRA/PEFT adapters of the generator: the ``adapters`` table and its change notifications.

The rules (which statuses a new row may take, what activation and rollback
change) live in ``rag_engine.training.registry``; where a rule sits between two
statements of one transaction, it runs inside :meth:`LoraAdapterRepo.transaction`
on a :class:`LoraAdapterTx`, whose reads can lock the rows they return. What the
two versioned tables share is in ``rag_engine.store.versions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text

from rag_engine.store import schema as t
from rag_engine.store.versions import VersionRepo, VersionTx

NOTIFY_CHANNEL = "ragbot_adapters"


@dataclass(frozen=True, slots=True)
class AdapterRecord:
    id: int
    version: str
    method: str
    base_model: str
    path: Path
    data_snapshot: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    previous_version: str | None
    created_at: datetime
    activated_at: datetime | None


class LoraAdapterTx(VersionTx[AdapterRecord]):
    """The ``adapters`` statements of one open transaction (see :meth:`LoraAdapterRepo.transaction`)."""

    table = t.adapters

    @classmethod
    def record(cls, row: Any) -> AdapterRecord:
        return AdapterRecord(
            id=int(row.id), version=row.version, method=row.method, base_model=row.base_model, path=Path(row.path),
            data_snapshot=dict(row.data_snapshot or {}), metrics=dict(row.metrics or {}), status=row.status,
            previous_version=row.previous_version, created_at=row.created_at, activated_at=row.activated_at,
        )

    def notify(self, payload: str) -> None:
        """``NOTIFY ragbot_adapters`` (sent at commit) so running bots switch without waiting for a poll."""
        self._conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                           {"channel": NOTIFY_CHANNEL, "payload": payload})


class LoraAdapterRepo(VersionRepo[AdapterRecord, LoraAdapterTx]):
    """Reads and writes adapter rows over one ``Database``."""

    tx = LoraAdapterTx

    def insert(self, *, adapter_id: int | None, version: str, method: str, base_model: str, path: Path,
               data_snapshot: dict[str, Any], metrics: dict[str, Any], status: str) -> AdapterRecord:
        return self._insert(adapter_id, {"version": version, "method": method, "base_model": base_model,
                                         "path": str(path), "data_snapshot": data_snapshot, "metrics": metrics,
                                         "status": status})

    def listen(self) -> psycopg.Connection[Any]:
        """A dedicated autocommit connection listening on ``NOTIFY ragbot_adapters`` (iterate ``notifies()``).

        Outside the pool: it stays open while idle, which a pooled connection must not.
        """
        url = self._db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        return conn
