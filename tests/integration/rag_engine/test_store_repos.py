"""Repository behaviour the engine modules' tests do not reach: shared transactions and the ``Store`` wiring."""

from __future__ import annotations

import pytest

from rag_engine.interactions import InteractionContext, log_interaction
from rag_engine.store import Store
from rag_engine.values import Answer

CTX = InteractionContext("slack", "T1", "C1", "th1", "slack:T1:U1")


def test_vote_statements_share_the_callers_transaction(db):
    """A rule that fails between statements leaves nothing behind: the repo writes in the caller's transaction."""
    store = Store(db)
    iid = log_interaction(db, CTX, "q", Answer(text="a"), [])
    with pytest.raises(RuntimeError), store.feedback.begin() as conn:
        assert store.feedback.insert_vote(conn, iid, "u1", 1, None)
        raise RuntimeError("the caller's rule failed")
    with store.feedback.begin() as conn:
        assert store.feedback.insert_vote(conn, iid, "u1", -1, "first after the rollback")
        assert not store.feedback.insert_vote(conn, iid, "u1", 1, None)  # one vote per user
        assert store.feedback.lock_vote(conn, iid, "u1").vote == -1


def test_store_repos_share_one_database(db):
    store = Store(db)
    iid = log_interaction(db, CTX, "q", Answer(text="a"), [])
    assert store.interactions.get(iid).question == "q"
    assert store.interactions.get(iid + 1000) is None
    job_id = store.jobs.add("echo", {"n": 1}, "test", singleton=False)
    assert job_id is not None and store.jobs.get(job_id).payload == {"n": 1}
    assert store.training_examples.rated_interactions() == ([], [])  # no vote, no correction: no candidate


def test_thread_rows_skip_the_given_status(db):
    store = Store(db)
    kept = log_interaction(db, CTX, "answered", Answer(text="a"), [])
    log_interaction(db, CTX, "failed", None, [], error="boom")
    rows = store.interactions.thread_rows("slack", "C1", "th1", 10, readable=[], user_key="slack:T1:U1",
                                          skip_status="error")
    assert [r.id for r in rows] == [kept]
