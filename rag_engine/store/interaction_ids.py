"""Ids from the ``interactions`` sequence, taken before the insert so a retried write is idempotent."""

from __future__ import annotations

from sqlalchemy import text

from rag_engine.store.database import Database


class InteractionIdRepo:
    """Hands out ``interactions.id`` values ahead of the row's insert."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, n: int) -> list[int]:
        """``n`` fresh ids (at least one), ascending."""
        with self.db.connect() as conn:
            ids = conn.execute(text("SELECT nextval(pg_get_serial_sequence('interactions', 'id')) "
                                    "FROM generate_series(1, :n)"), {"n": max(1, n)}).scalars()
            return sorted(int(i) for i in ids)
