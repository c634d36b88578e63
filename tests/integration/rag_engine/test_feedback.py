"""Votes, corrections and counts on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from rag_engine.feedback import feedback_counts, record_correction, record_vote
from rag_engine.interactions import InteractionContext, log_interaction
from rag_engine.store import schema as t
from rag_engine.values import Answer

CTX = InteractionContext("slack", "T1", "C1", None, "slack:T1:U1")


@pytest.fixture()
def interaction(db) -> int:
    return log_interaction(db, CTX, "How many days?", Answer(text="Twenty five."), [1])


def _votes(db, iid):
    with db.connect() as conn:
        return conn.execute(select(t.feedback.c.user_key, t.feedback.c.vote, t.feedback.c.reason)
                            .where(t.feedback.c.interaction_id == iid).order_by(t.feedback.c.user_key)).all()


def test_one_vote_per_user_repeat_is_noop_and_change_updates(db, interaction):
    first = record_vote(db, interaction, "u1", 1, "helpful")
    assert (first.created, first.changed) == (True, False)
    repeat = record_vote(db, interaction, "u1", 1)
    assert (repeat.created, repeat.changed) == (False, False)
    assert _votes(db, interaction) == [("u1", 1, "helpful")]  # a bare repeat keeps the reason
    flip = record_vote(db, interaction, "u1", -1, "wrong year")
    assert (flip.created, flip.changed) == (False, True)
    record_vote(db, interaction, "u2", 1)
    assert _votes(db, interaction) == [("u1", -1, "wrong year"), ("u2", 1, None)]


@pytest.mark.parametrize("bad", [0, 2, -2, True])
def test_vote_must_be_plus_or_minus_one(db, interaction, bad):
    with pytest.raises(ValueError, match="vote must be"):
        record_vote(db, interaction, "u1", bad)
    assert _votes(db, interaction) == []


def test_unknown_interaction_is_a_clear_lookup_error(db):
    with pytest.raises(LookupError, match="no interaction with id 999"):
        record_vote(db, 999, "u1", 1)
    with pytest.raises(LookupError, match="no interaction with id 999"):
        record_correction(db, 999, "u1", "better", is_admin=False)


def test_corrections_are_stored_with_admin_flag(db, interaction):
    a = record_correction(db, interaction, "u1", "  Twenty five days.  ", is_admin=False)
    b = record_correction(db, interaction, "admin", "Twenty five days of paid vacation.", is_admin=True)
    with db.connect() as conn:
        rows = conn.execute(select(t.corrections.c.id, t.corrections.c.text, t.corrections.c.is_admin)
                            .order_by(t.corrections.c.id)).all()
    assert rows == [(a, "Twenty five days.", False), (b, "Twenty five days of paid vacation.", True)]
    with pytest.raises(ValueError):
        record_correction(db, interaction, "u1", "   ", is_admin=False)


def test_counts_since(db, interaction):
    record_vote(db, interaction, "u1", 1)
    record_vote(db, interaction, "u2", -1)
    record_vote(db, interaction, "u3", -1)
    record_correction(db, interaction, "u2", "better", is_admin=False)
    counts = feedback_counts(db)
    assert (counts.up, counts.down, counts.corrections, counts.total) == (1, 2, 1, 4)
    future = feedback_counts(db, since=datetime.now(UTC) + timedelta(hours=1))
    assert (future.up, future.down, future.corrections) == (0, 0, 0)
