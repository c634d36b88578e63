"""Issue 20 item 9 for ``/ask``: a follow-up typed in the thread of a ``/ask`` answer has that
``/ask`` as history. The bot posts public ``/ask`` answers itself (a response_url post has no ts
to thread on) and files the ask under the answer's thread. Signed requests into the real Bolt app,
the real core and database, Slack's Web API mocked at the wire."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.testing.slack_server import SlackSender
from rag_engine.interactions import InteractionContext, get_interaction, log_interaction, set_thread
from rag_engine.store import schema as t
from rag_engine.values import Answer, AnswerStatus
from tests.e2e import test_slack_app as slack_e2e
from tests.e2e.test_slack_app import section_texts, slack_for

docs_engine = slack_e2e.docs_engine  # the fixture, shared with test_slack_app

QUESTION = "how do I get VPN access?"
FOLLOW_UP = "and what comes after that?"  # means nothing without the earlier turn


def interactions(db) -> list:
    with db.connect() as conn:
        return conn.execute(select(t.interactions).order_by(t.interactions.c.id)).all()


async def test_a_mention_in_the_thread_of_an_ask_answer_has_the_ask_as_history(docs_engine, tmp_path, db):
    async with slack_for(docs_engine, tmp_path) as slack:
        await slack.send.command("/ask", QUESTION, response_key="ask")
        await slack.api.wait_for(lambda api: api.calls_to("chat.postMessage")
                                 and api.calls_to("response_url"), timeout=20, what="the /ask answer")
        (answer,) = slack.api.calls_to("chat.postMessage")
        thread = answer.response["ts"]
        # someone else follows up in the answer's thread: a public answer is everyone's history
        await slack.send.event(SlackSender.mention(FOLLOW_UP, ts="1700000009.000200", user="U2",
                                                   thread_ts=thread))
        await slack.api.wait_for(lambda api: len(api.calls_to("chat.postMessage")) == 2, what="the follow-up")
        follow_up = slack.api.calls_to("chat.postMessage")[1]
        deletions = [c.payload for c in slack.api.calls_to("response_url")]

    assert answer.payload["channel"] == "C1" and "thread_ts" not in answer.payload
    assert "self-service portal" in section_texts(answer.payload)
    assert deletions == [{"delete_original": True, "_key": "ask"}]  # the "Looking…" note still goes
    assert follow_up.payload["thread_ts"] == thread
    text = section_texts(follow_up.payload)
    assert "manager approves" in text and "VPN access" in text  # found through the /ask turn
    asked, followed = interactions(db)
    assert (asked.question, asked.thread_id) == (QUESTION, thread)
    assert (followed.thread_id, followed.history_ids) == (thread, [asked.id])


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
async def test_where_the_bot_cannot_post_the_answer_goes_through_the_response_url(docs_engine, tmp_path, db,
                                                                                   error):
    async with slack_for(docs_engine, tmp_path) as slack:
        slack.api.not_member["C1"] = error  # e.g. a channel the bot was never invited to
        await slack.send.command("/ask", QUESTION, response_key="ask")
        await slack.api.wait_for(lambda api: len(api.calls_to("response_url")) == 2, timeout=20,
                                 what="the answer and the note's removal")
        tried = slack.api.calls_to("chat.postMessage")
        answer, deletion = [c.payload for c in slack.api.calls_to("response_url")]

    assert len(tried) == 1
    assert answer["response_type"] == "in_channel" and answer["replace_original"] is False
    assert "self-service portal" in section_texts(answer)
    assert deletion == {"delete_original": True, "_key": "ask"}
    (asked,) = interactions(db)
    assert asked.thread_id is None  # no message of the bot's to thread on


def test_only_an_unthreaded_ask_in_that_channel_is_filed_under_a_thread(db):
    answer = Answer(text="Open the portal.", status=AnswerStatus.ANSWERED)
    unthreaded = log_interaction(db, InteractionContext("slack", "T1", "C1", None, "slack:U1"), "q", answer, [])
    threaded = log_interaction(db, InteractionContext("slack", "T1", "C1", "100.1", "slack:U1"), "q", answer, [])

    assert not set_thread(db, unthreaded, platform="slack", channel_id="C2", thread_id="200.1")  # another channel
    assert not set_thread(db, threaded, platform="slack", channel_id="C1", thread_id="200.1")  # already in one
    assert set_thread(db, unthreaded, platform="slack", channel_id="C1", thread_id="200.1")
    assert [get_interaction(db, i).thread_id for i in (unthreaded, threaded)] == ["200.1", "100.1"]
