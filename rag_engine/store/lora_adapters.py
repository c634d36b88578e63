"""Trained LoRA/PEFT adapters of the generator: the ``adapters`` table and its change notifications.

The rules (which statuses a new row may take, what activation and rollback
change) live in ``rag_engine.training.registry``; where a rule sits between two
statements of one transaction, it runs inside :meth:`LoraAdapterRepo.transaction`
on a :class:`LoraAdapterTx`, whose reads can lock the rows they return.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Select, func, select, text

from rag_engine.store import schema as t
from rag_engine.store.database import Database

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


class LoraAdapterTx:
    """The ``adapters`` statements of one open transaction (see :meth:`LoraAdapterRepo.transaction`)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, version: str, *, lock: bool = False) -> AdapterRecord | None:
        return self._first(select(t.adapters).where(t.adapters.c.version == version), lock)

    def active(self, *, lock: bool = False) -> AdapterRecord | None:
        return self._first(select(t.adapters).where(t.adapters.c.status == "active"), lock)

    def retire(self, adapter_id: int) -> None:
        self._conn.execute(t.adapters.update().where(t.adapters.c.id == adapter_id).values(status="retired"))

    def activate(self, adapter_id: int, *, previous_version: str | None) -> None:
        """Make the row active, recording the version it replaces (what a rollback restores)."""
        self._conn.execute(
            t.adapters.update()
            .where(t.adapters.c.id == adapter_id)
            .values(status="active", previous_version=previous_version, activated_at=func.now())
        )

    def reactivate(self, adapter_id: int) -> None:
        """Make a retired row active again; its ``previous_version`` stays, so rolling back walks further back."""
        self._conn.execute(
            t.adapters.update().where(t.adapters.c.id == adapter_id).values(status="active", activated_at=func.now())
        )

    def notify(self, payload: str) -> None:
        """``NOTIFY ragbot_adapters`` (sent at commit) so running bots switch without waiting for a poll."""
        self._conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                           {"channel": NOTIFY_CHANNEL, "payload": payload})

    def _first(self, query: Select[Any], lock: bool) -> AdapterRecord | None:
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        return _record(row) if row is not None else None


class LoraAdapterRepo:
    """Reads and writes adapter rows over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve_id(self) -> int:
        """A fresh id from the table's sequence, never handed out twice (a version name is made from it)."""
        with self._db.begin() as conn:
            return int(conn.execute(text("SELECT nextval(pg_get_serial_sequence('adapters', 'id'))")).scalar_one())

    def insert(self, *, adapter_id: int | None, version: str, method: str, base_model: str, path: Path,
               data_snapshot: dict[str, Any], metrics: dict[str, Any], status: str) -> AdapterRecord:
        ids = {"id": adapter_id} if adapter_id is not None else {}
        with self._db.begin() as conn:
            row = conn.execute(
                t.adapters.insert()
                .values(**ids, version=version, method=method, base_model=base_model, path=str(path),
                        data_snapshot=data_snapshot, metrics=metrics, status=status)
                .returning(*t.adapters.c)
            ).one()
        return _record(row)

    def get(self, version: str) -> AdapterRecord | None:
        with self._db.connect() as conn:
            return LoraAdapterTx(conn).get(version)

    def active(self) -> AdapterRecord | None:
        with self._db.connect() as conn:
            return LoraAdapterTx(conn).active()

    def list(self) -> list[AdapterRecord]:
        """All adapters, newest first."""
        a = t.adapters.c
        with self._db.connect() as conn:
            return [_record(r) for r in conn.execute(select(t.adapters).order_by(a.created_at.desc(), a.id.desc()))]

    def set_outcome(self, version: str, *, status: str, metrics: dict[str, Any]) -> None:
        with self._db.begin() as conn:
            conn.execute(
                t.adapters.update().where(t.adapters.c.version == version).values(status=status, metrics=metrics)
            )

    @contextmanager
    def transaction(self) -> Iterator[LoraAdapterTx]:
        """One transaction (committed on success, rolled back on an exception) for a rule of several statements."""
        with self._db.begin() as conn:
            yield LoraAdapterTx(conn)

    def listen(self) -> psycopg.Connection[Any]:
        """A dedicated autocommit connection listening on ``NOTIFY ragbot_adapters`` (iterate ``notifies()``).

        Outside the pool: it stays open while idle, which a pooled connection must not.
        """
        url = self._db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        return conn


def _record(row: Any) -> AdapterRecord:
    return AdapterRecord(
        id=int(row.id), version=row.version, method=row.method, base_model=row.base_model, path=Path(row.path),
        data_snapshot=dict(row.data_snapshot or {}), metrics=dict(row.metrics or {}), status=row.status,
        previous_version=row.previous_version, created_at=row.created_at, activated_at=row.activated_at,
    )
