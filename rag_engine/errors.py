"""Errors the engine raises to its callers, independent of the database driver.

The store translates driver errors into these in one place (``store.database``), so the
bot core can tell "try again later" from a bug without importing the store.
"""

from __future__ import annotations


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now (the caller may retry later)."""


class SchemaNotReady(RuntimeError):
    """The database has not been migrated to the code's schema."""


class EmbeddingDimensionMismatch(RuntimeError):
    """The configured embedder's dimension differs from the database's."""


class DuplicateKey(RuntimeError):
    """A write hit a unique constraint (``constraint`` names it): for a write retried after an
    ambiguous failure, the sign that an earlier attempt was committed after all."""

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"duplicate key ({constraint or 'unknown constraint'})")
        self.constraint = constraint
