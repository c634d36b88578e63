"""Postgres + pgvector storage: the engine's only door to the database.

Every SQL statement of the project lives in this package, in a repository module named by
its table or concern. ``Store`` bundles the repositories over one ``Database``; the engine
owns it and hands it to the bot core, which never imports this package.
"""

from __future__ import annotations

from rag_engine.store.database import Database


class Store:
    """One repository per table or concern, all sharing one connection pool."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # repositories (one line each, alphabetical):
