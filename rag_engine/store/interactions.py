"""The interaction log: the ``interactions`` table.

What a row holds and who may see it as history is decided in
``rag_engine.interactions``; the access filter of ``thread_rows`` runs in SQL so
that a turn the asker may not read never leaves the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow


class InteractionRepo:
    """Writes and reads logged asks over one ``Database``; each method is its own transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, values: dict[str, Any]) -> int:
        """Store one ask (the columns of ``interactions``); returns its id."""
        with self._db.begin() as conn:
            return int(conn.execute(t.interactions.insert().values(**values)
                                    .returning(t.interactions.c.id)).scalar_one())

    def set_thread(self, interaction_id: int, *, platform: str, channel_id: str, thread_id: str) -> bool:
        """Set the thread of an ask logged in that channel with no thread yet; False if there was none."""
        c = t.interactions.c
        with self._db.begin() as conn:
            changed = conn.execute(t.interactions.update()
                                   .where(c.id == interaction_id, c.platform == platform, c.channel_id == channel_id,
                                          c.thread_id.is_(None))
                                   .values(thread_id=thread_id))
        return changed.rowcount == 1

    def get(self, interaction_id: int) -> AnyRow | None:
        with self._db.connect() as conn:
            return conn.execute(select(t.interactions).where(t.interactions.c.id == interaction_id)).first()

    def thread_rows(self, platform: str, channel_id: str, thread_id: str, limit: int, *, readable: Sequence[int],
                    user_key: str, skip_status: str) -> Sequence[AnyRow]:
        """The newest ``limit`` asks of a thread (id, question, answer, retrieved, history_collection_ids).

        Only asks whose retrieved and history collections are all in ``readable``, that are not
        ephemeral or were asked by ``user_key``, and whose status is not ``skip_status``.
        """
        c = t.interactions.c
        allowed = list(readable)
        retrieved_collections = func.jsonb_path_query_array(c.retrieved, cast("$[*].collection_id", JSONPATH),
                                                            type_=JSONB)
        rows = (
            select(c.id, c.question, c.answer, c.retrieved, c.history_collection_ids)
            .where(c.platform == platform, c.channel_id == channel_id, c.thread_id == thread_id,
                   c.status != skip_status,
                   or_(c.ephemeral.is_(False), c.user_key == user_key),
                   retrieved_collections.contained_by(allowed),
                   c.history_collection_ids.contained_by(allowed))
            .order_by(c.id.desc())
            .limit(limit)
        )
        with self._db.connect() as conn:
            return conn.execute(rows).all()
