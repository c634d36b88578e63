"""The interaction log: the ``interactions`` table.

What a row holds and who may see it as history is decided in
``rag_engine.interactions``; the access filter of ``thread_rows`` runs in SQL so
that a turn the asker may not read never leaves the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import cast, exists, func, or_, select
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

    def replace_answer(self, interaction_id: int, values: dict[str, Any], *,
                       add_timings: dict[str, float] | None = None) -> bool:
        """Replace a logged answer by a better one (``values``: columns of ``interactions``), keeping the
        first text in ``first_answer``; only once per ask. False if there was no such unreplaced ask."""
        c = t.interactions.c
        return self._update((c.id == interaction_id, c.refined_at.is_(None)),
                            {"first_answer": c.answer, "refined_at": func.now(), **values}, add_timings)

    def update(self, interaction_id: int, values: dict[str, Any], *,
               add_timings: dict[str, float] | None = None) -> bool:
        """Set columns of one logged ask, and add ``add_timings`` to its timings; False if there is none."""
        return self._update((t.interactions.c.id == interaction_id,), values, add_timings)

    def _update(self, where: tuple[Any, ...], values: dict[str, Any], add_timings: dict[str, float] | None) -> bool:
        if add_timings:
            values = {**values, "timings": t.interactions.c.timings.op("||")(cast(add_timings, JSONB))}
        with self._db.begin() as conn:
            changed = conn.execute(t.interactions.update().where(*where).values(**values))
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

    def most_asked(self, platform: str, workspace_id: str, *, channel_ids: Sequence[str], asker: str,
                   readable: Sequence[int], statuses: Sequence[str], limit: int) -> list[str]:
        """The questions asked most often (ties: most recently), one phrasing each, for suggested prompts.

        Only asks in ``channel_ids`` or in a channel where ``asker`` asked before (a channel they are in),
        not ephemeral, with a status in ``statuses``, and whose every collection (searched, retrieved and
        through history) is in ``readable``: a question asked where something unreadable was searched
        never leaves the database.
        """
        c = t.interactions.c
        allowed = list(readable)
        retrieved_collections = func.jsonb_path_query_array(c.retrieved, cast("$[*].collection_id", JSONPATH),
                                                            type_=JSONB)
        asker_channels = select(c.channel_id).where(c.platform == platform, c.workspace_id == workspace_id,
                                                    c.user_key == asker)
        key = func.lower(func.btrim(c.question))
        rows = (
            select(func.min(c.question).label("question"))
            .where(c.platform == platform, c.workspace_id == workspace_id, c.status.in_(list(statuses)),
                   c.ephemeral.is_(False), c.question != "",
                   or_(c.channel_id.in_(list(channel_ids)), c.channel_id.in_(asker_channels)),
                   c.collection_ids.contained_by(allowed),
                   retrieved_collections.contained_by(allowed),
                   c.history_collection_ids.contained_by(allowed))
            .group_by(key)
            .order_by(func.count().desc(), func.max(c.id).desc())
            .limit(max(1, limit))
        )
        with self._db.connect() as conn:
            return [row.question for row in conn.execute(rows)]

    def search(self, *, text: str = "", channel_id: str = "", status: str = "", vote: str = "", limit: int = 50,
               offset: int = 0) -> Sequence[AnyRow]:
        """Newest first: asks whose question or answer contains ``text``, in ``channel_id``, with ``status``,
        and ``vote`` ``up`` / ``down`` (has such a vote) or ``none`` (no vote); empty filters match all.
        Each row: id, created_at, platform, channel_id, user_key, question, status, up, down, corrections."""
        c, f, k = t.interactions.c, t.feedback.c, t.corrections.c
        up = select(func.count()).where(f.interaction_id == c.id, f.vote > 0).scalar_subquery()
        down = select(func.count()).where(f.interaction_id == c.id, f.vote < 0).scalar_subquery()
        fixes = select(func.count()).where(k.interaction_id == c.id).scalar_subquery()
        query = select(c.id, c.created_at, c.platform, c.channel_id, c.user_key, c.question, c.status,
                       up.label("up"), down.label("down"), fixes.label("corrections"))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(or_(c.question.ilike(pattern, escape="\\"), c.answer.ilike(pattern, escape="\\")))
        if channel_id:
            query = query.where(c.channel_id == channel_id)
        if status:
            query = query.where(c.status == status)
        if vote in ("up", "down"):
            query = query.where(exists().where(f.interaction_id == c.id, f.vote > 0 if vote == "up" else f.vote < 0))
        elif vote == "none":
            query = query.where(~exists().where(f.interaction_id == c.id))
        with self._db.connect() as conn:
            return conn.execute(query.order_by(c.id.desc()).limit(max(1, limit)).offset(max(0, offset))).all()
