"""Versioned model tables (the generator's LoRA adapters, query adapters): the statements they share.

Each table holds one row per version with a status, at most one of them active (a partial unique index);
activating a row records the version it replaces, and a rollback reactivates that one. ``VersionTx`` holds
one open transaction's reads (which can lock the rows they return) and status changes; ``VersionRepo`` the
reads and writes that take a transaction of their own. A table's module names the table, the columns a
record reads and how a row becomes its record; the rules themselves live in the registries
(``rag_engine.training.registry``, ``rag_engine.training.retrieval_registry``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Connection, Select, Table, func, select, text
from sqlalchemy.sql.elements import ColumnElement

from rag_engine.store.database import Database

R = TypeVar("R")  # a table's record type
T = TypeVar("T", bound="VersionTx[Any]")


class VersionTx(Generic[R]):
    """A versions table's statements inside one open transaction."""

    table: ClassVar[Table]

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @classmethod
    def columns(cls) -> Sequence[ColumnElement[Any]]:
        """What a record reads (every column unless a table leaves some out)."""
        return tuple(cls.table.c)

    @classmethod
    def record(cls, row: Any) -> R:
        raise NotImplementedError

    def get(self, version: str, *, lock: bool = False) -> R | None:
        return self._first(select(*self.columns()).where(self.table.c.version == version), lock)

    def active(self, *, lock: bool = False) -> R | None:
        return self._first(select(*self.columns()).where(self.table.c.status == "active"), lock)

    def retire(self, row_id: int) -> None:
        self._conn.execute(self.table.update().where(self.table.c.id == row_id).values(status="retired"))

    def activate(self, row_id: int, *, previous_version: str | None) -> None:
        """Make the row active, recording the version it replaces (what a rollback restores)."""
        self._conn.execute(self.table.update().where(self.table.c.id == row_id)
                           .values(status="active", previous_version=previous_version, activated_at=func.now()))

    def reactivate(self, row_id: int) -> None:
        """Make a retired row active again; its ``previous_version`` stays, so rolling back walks further back."""
        self._conn.execute(self.table.update().where(self.table.c.id == row_id)
                           .values(status="active", activated_at=func.now()))

    def _first(self, query: Select[Any], lock: bool) -> R | None:
        row = self._conn.execute(query.with_for_update() if lock else query).first()
        return self.record(row) if row is not None else None


class VersionRepo(Generic[R, T]):
    """A versions table's reads and writes over one ``Database``, each in a transaction of its own."""

    tx: type[T]  # the table's ``VersionTx``

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve_id(self) -> int:
        """A fresh id from the table's sequence, never handed out twice (a version name is made from it)."""
        with self._db.begin() as conn:
            return int(conn.execute(text("SELECT nextval(pg_get_serial_sequence(:table, 'id'))"),
                                    {"table": self.tx.table.name}).scalar_one())

    def get(self, version: str) -> R | None:
        with self._db.connect() as conn:
            found: R | None = self.tx(conn).get(version)
            return found

    def active(self) -> R | None:
        with self._db.connect() as conn:
            found: R | None = self.tx(conn).active()
            return found

    def list(self) -> list[R]:
        """All versions, newest first."""
        c = self.tx.table.c
        with self._db.connect() as conn:
            rows = conn.execute(select(*self.tx.columns()).order_by(c.created_at.desc(), c.id.desc()))
            return [self.tx.record(r) for r in rows]

    def set_outcome(self, version: str, *, status: str, metrics: dict[str, Any]) -> None:
        table = self.tx.table
        with self._db.begin() as conn:
            conn.execute(table.update().where(table.c.version == version).values(status=status, metrics=metrics))

    @contextmanager
    def transaction(self) -> Iterator[T]:
        """One transaction (committed on success, rolled back on an exception) for a rule of several statements."""
        with self._db.begin() as conn:
            yield self.tx(conn)

    def _insert(self, row_id: int | None, values: dict[str, Any]) -> R:
        """Insert a version row (with ``row_id`` when one was reserved) and return its record."""
        ids = {"id": row_id} if row_id is not None else {}
        with self._db.begin() as conn:
            row = conn.execute(self.tx.table.insert().values(**ids, **values).returning(*self.tx.columns())).one()
        result: R = self.tx.record(row)
        return result
