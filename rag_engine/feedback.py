"""Votes (👍 / 👎 with an optional reason) and corrections on logged interactions.

Platform-neutral: the bot core calls these for every adapter. One vote per user
per interaction: voting again the same way is a no-op, the other way updates it.

A correction is training data only once an admin approved it: anyone who can
see an answer can suggest one, so an unreviewed correction could teach the
shared adapter a phishing link. Non-admin corrections are stored ``pending``;
an admin's own are ``approved`` on entry; ``review_correction`` decides the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from typing import Literal

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects.postgresql import insert

from rag_engine.redact import redact_secrets
from rag_engine.store import schema as t
from rag_engine.store.database import Database

MAX_REASON_CHARS = 1000
MAX_CORRECTION_CHARS = 8000

CorrectionStatus = Literal["pending", "approved", "rejected"]


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    created: bool  # first vote of this user on this interaction
    changed: bool  # an earlier vote was flipped


@dataclass(frozen=True, slots=True)
class FeedbackCounts:
    up: int
    down: int
    corrections: int
    pending_corrections: int = 0  # of ``corrections``: still awaiting an admin's review

    @property
    def total(self) -> int:
        return self.up + self.down + self.corrections


def record_vote(db: Database, interaction_id: int, user_key: str, vote: int, reason: str | None = None) -> VoteOutcome:
    """Record 👍 (``+1``) or 👎 (``-1``).

    A repeated identical vote changes nothing (a new reason, if given, replaces
    the old one); the opposite vote replaces the earlier one. Raises
    ``ValueError`` for another vote value, ``LookupError`` for an unknown interaction.
    """
    if vote not in (1, -1) or isinstance(vote, bool):
        raise ValueError(f"vote must be +1 or -1, got {vote!r}")
    reason = _clean(reason, MAX_REASON_CHARS, "reason") if reason is not None else None
    f = t.feedback.c
    with db.begin() as conn:
        _require_interaction(conn, interaction_id)
        inserted = conn.execute(
            insert(t.feedback)
            .values(interaction_id=interaction_id, user_key=user_key, vote=vote, reason=reason)
            .on_conflict_do_nothing(index_elements=["interaction_id", "user_key"])
            .returning(f.id)
        ).first()
        if inserted is not None:
            return VoteOutcome(created=True, changed=False)
        current = conn.execute(
            select(f.id, f.vote, f.reason)
            .where(f.interaction_id == interaction_id, f.user_key == user_key)
            .with_for_update()
        ).one()
        changed = current.vote != vote
        new_reason = reason if (reason is not None or changed) else current.reason
        if changed or new_reason != current.reason:
            conn.execute(
                t.feedback.update()
                .where(f.id == current.id)
                .values(vote=vote, reason=new_reason, updated_at=func.now())
            )
        return VoteOutcome(created=False, changed=changed)


@dataclass(frozen=True, slots=True)
class PendingCorrection:
    """A correction awaiting review, with the question and answer it corrects."""

    id: int
    interaction_id: int
    user_key: str
    text: str
    created_at: datetime
    question: str
    answer: str


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    correction_id: int
    interaction_id: int
    status: CorrectionStatus  # the status now
    previous: CorrectionStatus

    @property
    def changed(self) -> bool:
        return self.status != self.previous


def record_correction(db: Database, interaction_id: int, user_key: str, text: str, *, is_admin: bool) -> int:
    """Store a better answer for an interaction; returns the correction's id.

    ``is_admin`` (an admin who may approve corrections) stores it approved, by
    its author; anyone else's waits for review. Several corrections may exist
    for one interaction; the training set uses the latest approved admin one,
    else the latest approved one.
    """
    cleaned = _clean(text, MAX_CORRECTION_CHARS, "correction")
    if not cleaned:
        raise ValueError("a correction needs the corrected answer text")
    review = {"status": "approved", "reviewed_by": user_key, "reviewed_at": func.now()} if is_admin else {}
    with db.begin() as conn:
        _require_interaction(conn, interaction_id)
        return int(
            conn.execute(
                t.corrections.insert()
                .values(interaction_id=interaction_id, user_key=user_key, text=cleaned, is_admin=bool(is_admin),
                        **review)
                .returning(t.corrections.c.id)
            ).scalar_one()
        )


def pending_corrections(db: Database, limit: int = 20) -> tuple[list[PendingCorrection], int]:
    """The oldest ``limit`` corrections awaiting review, and how many await in all."""
    c, i = t.corrections.c, t.interactions.c
    query = (
        select(c.id, c.interaction_id, c.user_key, c.text, c.created_at, i.question, i.answer)
        .join(t.interactions, i.id == c.interaction_id)
        .where(c.status == "pending")
        .order_by(c.created_at, c.id)
        .limit(max(1, limit))
    )
    with db.connect() as conn:
        found = [PendingCorrection(*row) for row in conn.execute(query).all()]
        total = conn.execute(select(func.count()).select_from(t.corrections)
                             .where(c.status == "pending")).scalar_one()
    return found, int(total)


def review_correction(db: Database, correction_id: int, *, approve: bool, reviewer: str) -> ReviewOutcome:
    """Approve (training data from now on) or reject a correction; ``reviewer`` is the admin's key.

    A decision may be changed later (an approved correction rejected, say);
    repeating it changes nothing. Raises ``LookupError`` for an unknown id.
    """
    c = t.corrections.c
    status: CorrectionStatus = "approved" if approve else "rejected"
    with db.begin() as conn:
        row = conn.execute(select(c.interaction_id, c.status).where(c.id == correction_id).with_for_update()).first()
        if row is None:
            raise LookupError(f"no correction with id {correction_id}")
        if row.status != status:
            conn.execute(t.corrections.update().where(c.id == correction_id)
                         .values(status=status, reviewed_by=reviewer, reviewed_at=func.now()))
    return ReviewOutcome(correction_id, int(row.interaction_id), status, row.status)


def feedback_counts(db: Database, since: datetime | None = None) -> FeedbackCounts:
    """👍, 👎 and corrections (votes counted by their latest change) since ``since``, or ever."""
    f, c = t.feedback.c, t.corrections.c
    votes = select(
        func.count(case((f.vote > 0, 1))).label("up"),
        func.count(case((f.vote < 0, 1))).label("down"),
    )
    corrections = select(func.count(), func.count(case((c.status == "pending", 1))))
    if since is not None:
        votes = votes.where(f.updated_at >= since)
        corrections = corrections.where(c.created_at >= since)
    with db.connect() as conn:
        up, down = conn.execute(votes).one()
        n_corrections, n_pending = conn.execute(corrections).one()
    return FeedbackCounts(up=int(up), down=int(down), corrections=int(n_corrections),
                          pending_corrections=int(n_pending))


def _require_interaction(conn: Connection, interaction_id: int) -> None:
    found = conn.execute(select(t.interactions.c.id).where(t.interactions.c.id == interaction_id)).first()
    if found is None:
        raise LookupError(f"no interaction with id {interaction_id} (it may have been deleted)")


def _clean(text: str, limit: int, what: str) -> str:
    cleaned = (text or "").strip()
    if len(cleaned) > limit:
        raise ValueError(f"the {what} is too long ({len(cleaned)} characters, at most {limit})")
    return redact_secrets(cleaned)  # stored, and may become training data: no pasted credential
