"""Votes and corrections on logged interactions: the ``feedback`` and ``corrections`` tables.

The rules (one vote per user, what a repeated vote changes, who may approve a
correction) live in ``rag_engine.feedback``; where a rule sits between two
statements of one transaction, the methods take the caller's ``Connection``
from ``begin()``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.rows import AnyRow


@dataclass(frozen=True, slots=True)
class StoredVote:
    id: int
    vote: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class StoredReview:
    interaction_id: int
    status: str


class FeedbackRepo:
    """Reads and writes votes and corrections over one ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(self) -> AbstractContextManager[Connection]:
        """One transaction for a caller whose rule decides between statements (a vote, a review)."""
        return self._db.begin()

    # -- votes -------------------------------------------------------------------
    def interaction_exists(self, conn: Connection, interaction_id: int) -> bool:
        i = t.interactions.c
        return conn.execute(select(i.id).where(i.id == interaction_id)).first() is not None

    def insert_vote(self, conn: Connection, interaction_id: int, user_key: str, vote: int,
                    reason: str | None) -> bool:
        """Insert the user's first vote on the interaction; False (nothing written) if one exists."""
        inserted = conn.execute(
            insert(t.feedback)
            .values(interaction_id=interaction_id, user_key=user_key, vote=vote, reason=reason)
            .on_conflict_do_nothing(index_elements=["interaction_id", "user_key"])
            .returning(t.feedback.c.id)
        ).first()
        return inserted is not None

    def lock_vote(self, conn: Connection, interaction_id: int, user_key: str) -> StoredVote:
        """The user's existing vote, locked until the transaction ends."""
        f = t.feedback.c
        row = conn.execute(
            select(f.id, f.vote, f.reason)
            .where(f.interaction_id == interaction_id, f.user_key == user_key)
            .with_for_update()
        ).one()
        return StoredVote(int(row.id), int(row.vote), row.reason)

    def voted_before_refinement(self, conn: Connection, vote_id: int) -> bool:
        """Whether the vote is older than its answer's refinement (the model's answer replaced the quote since)."""
        f, i = t.feedback.c, t.interactions.c
        return bool(conn.execute(
            select(i.refined_at > f.updated_at)
            .select_from(t.feedback.join(t.interactions, i.id == f.interaction_id))
            .where(f.id == vote_id)
        ).scalar())

    def update_vote(self, conn: Connection, vote_id: int, vote: int, reason: str | None) -> None:
        f = t.feedback.c
        conn.execute(t.feedback.update().where(f.id == vote_id).values(vote=vote, reason=reason, updated_at=func.now()))

    # -- corrections -------------------------------------------------------------
    def insert_correction(self, conn: Connection, interaction_id: int, user_key: str, text: str, *,
                          is_admin: bool, approved_by: str | None) -> int:
        """Store a correction; ``approved_by`` stores it approved by that reviewer (now), else pending."""
        review: dict[str, Any] = (
            {"status": "approved", "reviewed_by": approved_by, "reviewed_at": func.now()}
            if approved_by is not None else {}
        )
        return int(
            conn.execute(
                t.corrections.insert()
                .values(interaction_id=interaction_id, user_key=user_key, text=text, is_admin=is_admin, **review)
                .returning(t.corrections.c.id)
            ).scalar_one()
        )

    def pending(self, limit: int) -> tuple[list[AnyRow], int]:
        """The oldest ``limit`` pending corrections (id, interaction_id, user_key, text, created_at,
        question, answer), and how many are pending in all."""
        c, i = t.corrections.c, t.interactions.c
        query = (
            select(c.id, c.interaction_id, c.user_key, c.text, c.created_at, i.question, i.answer)
            .join(t.interactions, i.id == c.interaction_id)
            .where(c.status == "pending")
            .order_by(c.created_at, c.id)
            .limit(limit)
        )
        with self._db.connect() as conn:
            found = list(conn.execute(query).all())
            total = conn.execute(select(func.count()).select_from(t.corrections)
                                 .where(c.status == "pending")).scalar_one()
        return found, int(total)

    def lock_correction(self, conn: Connection, correction_id: int) -> StoredReview | None:
        """The correction's interaction and review status, locked until the transaction ends."""
        c = t.corrections.c
        row = conn.execute(select(c.interaction_id, c.status).where(c.id == correction_id).with_for_update()).first()
        return StoredReview(int(row.interaction_id), row.status) if row is not None else None

    def set_review(self, conn: Connection, correction_id: int, status: str, reviewer: str) -> None:
        c = t.corrections.c
        conn.execute(t.corrections.update().where(c.id == correction_id)
                     .values(status=status, reviewed_by=reviewer, reviewed_at=func.now()))

    def for_interaction(self, interaction_id: int) -> tuple[list[AnyRow], list[AnyRow]]:
        """The votes (user_key, vote, reason, updated_at) and corrections (id, user_key, text, is_admin,
        status, created_at, reviewed_by, reviewed_at) on one interaction, oldest first."""
        f, c = t.feedback.c, t.corrections.c
        with self._db.connect() as conn:
            votes = conn.execute(select(f.user_key, f.vote, f.reason, f.updated_at)
                                 .where(f.interaction_id == interaction_id).order_by(f.id)).all()
            fixes = conn.execute(select(c.id, c.user_key, c.text, c.is_admin, c.status, c.created_at, c.reviewed_by,
                                        c.reviewed_at).where(c.interaction_id == interaction_id).order_by(c.id)).all()
        return list(votes), list(fixes)

    # -- report ------------------------------------------------------------------
    def counts(self, since: datetime | None) -> tuple[int, int, int, int]:
        """👍, 👎 (votes by their latest change), corrections and pending corrections since ``since``, or ever."""
        f, c = t.feedback.c, t.corrections.c
        votes = select(
            func.count(case((f.vote > 0, 1))).label("up"),
            func.count(case((f.vote < 0, 1))).label("down"),
        )
        corrections = select(func.count(), func.count(case((c.status == "pending", 1))))
        if since is not None:
            votes = votes.where(f.updated_at >= since)
            corrections = corrections.where(c.created_at >= since)
        with self._db.connect() as conn:
            up, down = conn.execute(votes).one()
            n_corrections, n_pending = conn.execute(corrections).one()
        return int(up), int(down), int(n_corrections), int(n_pending)
