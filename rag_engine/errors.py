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
