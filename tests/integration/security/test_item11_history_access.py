"""Issue 15 item 11: thread history is filtered by the asking location's access *now*,
an ephemeral answer is no one else's history, and an example whose history drew on a
collection without training permission is not trainable (real database)."""

from __future__ import annotations

import pytest

from bot.types import Actor
from rag_engine.feedback import record_correction
from rag_engine.interactions import InteractionContext, get_interaction, log_interaction, thread_history
from rag_engine.scope import CollectionScope
from rag_engine.training.dataset import build_training_set
from tests.e2e.test_discord_adapter import (  # the Discord wire fake and a client on the real core
    FOLLOW_UP,
    QUESTION,
    deliver,
    discord_settings,
    docs_engine,
    fake,
    interactions,
    mention,
    start_client,
)
from tests.support.security import (
    ADMIN,
    ALICE,
    DISCORD,
    GRANTED,
    ask,
    core_for,
    ingest_corpora,
    leaked_markers,
)

SMALL_PUBLIC = ("pto-and-leave.md",)
__all__ = ["discord_settings", "docs_engine", "fake", "start_client"]  # fixtures, used by name


@pytest.fixture()
def corpora(engine, tmp_path):
    return ingest_corpora(engine, tmp_path, SMALL_PUBLIC)


def _history_ids(db, reply) -> list[int]:
    return get_interaction(db, reply.interaction_id).history_ids


async def test_a_revoked_grant_withdraws_the_earlier_private_answer_from_history(engine, db, tmp_path, corpora):
    public_id, hr_id = corpora
    core = core_for(engine, tmp_path)
    public = await core.ask(ask(ALICE, GRANTED, "How many vacation days do I get?", thread_id="th-1"))
    assert (await core.admin(ADMIN, GRANTED, "collections grant hr here")).ok
    private = await core.ask(ask(ALICE, GRANTED, "What is Project Nightingale?", thread_id="th-1"))
    assert leaked_markers(private.text, "")  # granted: the thread got private content
    while_granted = await core.ask(ask(ALICE, GRANTED, "and who leads it?", thread_id="th-1"))
    assert _history_ids(db, while_granted) == [public.interaction_id, private.interaction_id]

    assert (await core.admin(ADMIN, GRANTED, "collections revoke hr here")).ok
    after = await core.ask(ask(ALICE, GRANTED, "and how much does it cost?", thread_id="th-1"))
    # the private turn is gone, and so is the turn that was shown it (its history drew on hr)
    assert _history_ids(db, after) == [public.interaction_id]
    history = thread_history(db, GRANTED.platform, GRANTED.channel_id, "th-1", 10,
                             readable=CollectionScope.of([public_id]), user_key=ALICE.user_key)
    assert history.turns and not any(leaked_markers(turn.text, "") for turn in history.turns)
    assert hr_id not in history.collection_ids


async def test_an_ephemeral_answer_is_no_one_elses_thread_history(engine, db, tmp_path, corpora):
    core = core_for(engine, tmp_path)
    alice, mallory = Actor("discord", "1001"), Actor("discord", "1002")
    only_alice = await core.ask(ask(alice, DISCORD, "How many vacation days do I get?", thread_id="th-e",
                                    ephemeral=True))
    assert get_interaction(db, only_alice.interaction_id).ephemeral
    mallorys = await core.ask(ask(mallory, DISCORD, "and how do I request them?", thread_id="th-e"))
    assert _history_ids(db, mallorys) == []
    alices = await core.ask(ask(alice, DISCORD, "and how do I request them?", thread_id="th-e"))
    assert _history_ids(db, alices) == [only_alice.interaction_id, mallorys.interaction_id]  # she saw it


async def test_a_discord_ask_answered_ephemerally_stays_out_of_the_threads_shared_history(fake, start_client, db):
    client = await start_client(discord_reply_in_thread=True, answer_ephemeral=True)
    first = mention(fake, QUESTION)
    await deliver(client, first)
    thread_id = first["id"]  # a thread opened on a message has the message's id
    await deliver(client, fake.thread_create(fake.threads[thread_id]), kind="thread")
    private_ask = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3,
                                                                 "value": "Who approves expense reports?"}],
                                           channel_id=thread_id)
    await deliver(client, private_ask, kind="interaction")
    await deliver(client, mention(fake, FOLLOW_UP, channel_id=thread_id, author=fake.helper))

    opened, asked, follow = interactions(db)
    assert asked.ephemeral and asked.thread_id == thread_id and not opened.ephemeral
    assert follow.user_key != asked.user_key and follow.history_ids == [opened.id]


def test_an_example_whose_history_drew_on_a_no_training_collection_is_not_trainable(engine, db, corpora):
    _, hr_id = corpora  # private: training off
    ctx = InteractionContext("slack", "T1", "C-hr", "th-t", "slack:UALICE")
    earlier = log_interaction(db, ctx, "What is Project Nightingale?",
                              engine.answer("What is Project Nightingale?", engine.scope_for(["hr"])), [hr_id])
    history = thread_history(db, "slack", "C-hr", "th-t", 4, readable=engine.scope_for(["handbook", "hr"]),
                             user_key=ctx.user_key)
    assert history.interaction_ids == (earlier,) and hr_id in history.collection_ids
    question = "How many vacation days do I get?"  # its own passages are public and trainable
    answer = engine.answer(question, engine.scope_for(["handbook"]), history.turns)
    follow_up = log_interaction(db, ctx, question, answer, engine.collection_ids(["handbook"]), history=history)
    record = get_interaction(db, follow_up)
    assert record.history_ids == [earlier] and record.history_collection_ids == [hr_id]
    assert hr_id not in record.retrieved_collection_ids
    record_correction(db, follow_up, "slack:UADMIN", "Twenty five days [1].", is_admin=True)

    ts = build_training_set(db, engine.config.training)
    assert len(ts) == 0
    assert ts.excluded["thread history from a collection that does not allow training"] == 1
