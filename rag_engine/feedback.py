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
from typing import Literal, cast

from rag_engine.redact import redact_secrets
from rag_engine.store.database import Database
from rag_engine.store.feedback import FeedbackRepo

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
    the old one), except that one repeated after the model's answer replaced the
    quoted one (answer-first) is re-dated: it now rates the answer shown, and the
    training set counts only votes newer than the refinement. The opposite vote
    replaces the earlier one. Raises
    ``ValueError`` for another vote value, ``LookupError`` for an unknown interaction.
    """
    if vote not in (1, -1) or isinstance(vote, bool):
        raise ValueError(f"vote must be +1 or -1, got {vote!r}")
    reason = _clean(reason, MAX_REASON_CHARS, "reason") if reason is not None else None
    repo = FeedbackRepo(db)
    with repo.begin() as conn:
        _require_interaction(repo.interaction_exists(conn, interaction_id), interaction_id)
        if repo.insert_vote(conn, interaction_id, user_key, vote, reason):
            return VoteOutcome(created=True, changed=False)
        current = repo.lock_vote(conn, interaction_id, user_key)
        changed = current.vote != vote
        new_reason = reason if (reason is not None or changed) else current.reason
        if changed or new_reason != current.reason or repo.voted_before_refinement(conn, current.id):
            repo.update_vote(conn, current.id, vote, new_reason)
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
    repo = FeedbackRepo(db)
    with repo.begin() as conn:
        _require_interaction(repo.interaction_exists(conn, interaction_id), interaction_id)
        return repo.insert_correction(conn, interaction_id, user_key, cleaned, is_admin=bool(is_admin),
                                      approved_by=user_key if is_admin else None)


def pending_corrections(db: Database, limit: int = 20) -> tuple[list[PendingCorrection], int]:
    """The oldest ``limit`` corrections awaiting review, and how many await in all."""
    rows, total = FeedbackRepo(db).pending(max(1, limit))
    found = [PendingCorrection(id=row.id, interaction_id=row.interaction_id, user_key=row.user_key, text=row.text,
                               created_at=row.created_at, question=row.question, answer=row.answer) for row in rows]
    return found, total


def review_correction(db: Database, correction_id: int, *, approve: bool, reviewer: str) -> ReviewOutcome:
    """Approve (training data from now on) or reject a correction; ``reviewer`` is the admin's key.

    A decision may be changed later (an approved correction rejected, say);
    repeating it changes nothing. Raises ``LookupError`` for an unknown id.
    """
    status: CorrectionStatus = "approved" if approve else "rejected"
    repo = FeedbackRepo(db)
    with repo.begin() as conn:
        row = repo.lock_correction(conn, correction_id)
        if row is None:
            raise LookupError(f"no correction with id {correction_id}")
        if row.status != status:
            repo.set_review(conn, correction_id, status, reviewer)
    previous = cast(CorrectionStatus, row.status)  # the table's CHECK allows no other value
    return ReviewOutcome(correction_id, row.interaction_id, status, previous)


def feedback_counts(db: Database, since: datetime | None = None) -> FeedbackCounts:
    """👍, 👎 and corrections (votes counted by their latest change) since ``since``, or ever."""
    up, down, n_corrections, n_pending = FeedbackRepo(db).counts(since)
    return FeedbackCounts(up=up, down=down, corrections=n_corrections, pending_corrections=n_pending)


def _require_interaction(found: bool, interaction_id: int) -> None:
    if not found:
        raise LookupError(f"no interaction with id {interaction_id} (it may have been deleted)")


def _clean(text: str, limit: int, what: str) -> str:
    cleaned = (text or "").strip()
    if len(cleaned) > limit:
        raise ValueError(f"the {what} is too long ({len(cleaned)} characters, at most {limit})")
    return redact_secrets(cleaned)  # stored, and may become training data: no pasted credential
