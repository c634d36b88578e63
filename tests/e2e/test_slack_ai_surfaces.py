"""Slack's AI-app surfaces through the wire double: native feedback_buttons, and the Assistant container's
suggested prompts (under the access rules) and questions.

The real Bolt app, bot core and engine run on the scratch Postgres; the questions the prompts are drawn
from are asked through the real bot core first, so the interaction log holds exactly what production writes.
"""

from __future__ import annotations

import pytest

from adapters.slack.assistant import PROMPTS_TITLE
from adapters.slack.blocks import ACTION_CORRECT, ACTION_FEEDBACK
from adapters.testing.slack_server import TEAM, SlackSender
from bot import access
from bot.messages import UNKNOWN_BUTTON
from bot.types import Actor, AskRequest, Location
from rag_engine.store import schema as t
from tests.e2e.test_slack_app import VACATION, VPN, Slack, buttons, rows, section_texts, slack_for, write_docs

REORG = """# Reorganisation plan

The Berlin office merges into the Munich office in the third quarter. The project codename is Falcon,
and the affected teams are told by their directors in September.
"""
VPN_Q = "how do I get VPN access?"
VACATION_Q = "how many vacation days do I get per year?"
SECRET_Q = "what is the codename of the reorganisation plan?"
OTHERS_Q = "can unused vacation days be carried over?"
UNANSWERED_Q = "what is the airspeed velocity of an unladen swallow?"
THREAD = "1700000500.000100"


@pytest.fixture()
def two_collections(engine, tmp_path):
    """``default`` (public: VPN, vacation) and ``secret`` (private, granted to channel C2 only)."""
    (tmp_path / "public").mkdir()
    (tmp_path / "secret").mkdir()
    public = engine.ingest([write_docs(tmp_path / "public", {"vpn.md": VPN, "vacation.md": VACATION})], "default")
    secret = engine.ingest([write_docs(tmp_path / "secret", {"reorg.md": REORG})], "secret", visibility="private")
    assert public.documents_written == 2 and secret.documents_written == 1
    (secret_id,) = engine.collection_ids(["secret"])
    access.set_access(engine.store, secret_id, "slack", TEAM, "C2", "grant")
    return engine


async def ask(slack: Slack, question: str, *, user: str, channel: str) -> str:
    reply = await slack.core.ask(AskRequest(Actor("slack", user), Location("slack", TEAM, channel), question))
    return reply.kind


def prompts_sent(slack: Slack) -> list[list[str]]:
    calls = slack.api.calls_to("assistant.threads.setSuggestedPrompts")
    for call in calls:
        assert (call.payload["channel_id"], call.payload["thread_ts"], call.payload["title"]) == (
            "D1", THREAD, PROMPTS_TITLE)
    return [[p["message"] for p in call.payload["prompts"]] for call in calls]


# -- feedback_buttons ----------------------------------------------------------------------------------

async def test_a_feedback_buttons_click_records_the_vote_on_the_answer(two_collections, tmp_path, db):
    async with slack_for(two_collections, tmp_path) as slack:
        await slack.send.event(SlackSender.mention(VPN_Q, ts="1700000100.000100"), event_id="EvVPN")
        await slack.api.wait_for(lambda a: a.calls_to("chat.postMessage"), what="the answer")
        answer = slack.api.calls_to("chat.postMessage")[0].payload
        (votes,) = [e for b in answer["blocks"] if b["type"] == "context_actions" for e in b["elements"]]
        assert votes["type"] == "feedback_buttons" and votes["action_id"] == ACTION_FEEDBACK
        (interaction,) = rows(db, t.interactions)
        assert buttons(answer) == {ACTION_FEEDBACK: str(interaction.id), ACTION_CORRECT: str(interaction.id)}

        await slack.send.feedback(votes["negative_button"]["value"], user="U2")
        await slack.send.feedback(votes["positive_button"]["value"], user="U1")
        await slack.api.wait_for(lambda a: len(a.calls_to("response_url")) == 2, what="both votes' thanks")

        # a value that is not one of ours (a forged payload, say) records nothing
        await slack.send.feedback(f"positive:{interaction.id}x", user="U3")
        await slack.api.wait_for(lambda a: len(a.calls_to("response_url")) == 3, what="the refusal")

    thanks = [section_texts(c.payload) for c in slack.api.calls_to("response_url")]
    assert "Thanks for the 👎" in thanks[0] and "Thanks for the 👍" in thanks[1] and UNKNOWN_BUTTON in thanks[2]
    votes_stored = sorted((r.interaction_id, r.user_key, r.vote) for r in rows(db, t.feedback))
    assert votes_stored == [(interaction.id, "slack:U1", 1), (interaction.id, "slack:U2", -1)]


# -- the Assistant container -------------------------------------------------------------------------

async def test_suggested_prompts_are_the_most_asked_answered_questions_the_user_may_read(two_collections, tmp_path,
                                                                                           db):
    async with slack_for(two_collections, tmp_path) as slack:
        for _ in range(2):
            assert await ask(slack, VPN_Q, user="U1", channel="C1") == "answer"
        assert await ask(slack, VACATION_Q, user="U2", channel="C1") == "answer"
        for _ in range(3):  # the most asked of all, but unanswered: never suggested
            assert await ask(slack, UNANSWERED_Q, user="U1", channel="C1") == "not_found"
        # adversarial: asked most often, by this very user, in a channel they are in and looking at, but where a
        # private collection the assistant thread (a DM) may not read was searched
        for user in ("U1", "U1", "U2", "U2"):
            assert await ask(slack, SECRET_Q, user=user, channel="C2") == "answer"
        assert await ask(slack, OTHERS_Q, user="U3", channel="C3") == "answer"  # not one of U1's channels
        secret_rows = [r for r in rows(db, t.interactions) if r.question == SECRET_Q]
        assert secret_rows and all("Falcon" in r.answer for r in secret_rows)  # the question really reads secret

        status, _ = await slack.send.event(SlackSender.assistant_thread_started(thread_ts=THREAD, viewing="C2"))
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("assistant.threads.setSuggestedPrompts"), what="the prompts")
        assert prompts_sent(slack) == [[VPN_Q, VACATION_Q]]  # most asked first; C1 is where U1 asked

        # looking at another channel: its questions are offered too
        status, _ = await slack.send.event(SlackSender.assistant_thread_started(thread_ts=THREAD, viewing="C3",
                                                                                changed=True))
        assert status == 200
        await slack.api.wait_for(lambda a: len(a.calls_to("assistant.threads.setSuggestedPrompts")) == 2,
                                 what="the prompts for C3")
    assert prompts_sent(slack)[1] == [VPN_Q, OTHERS_Q, VACATION_Q]  # ties: the most recently asked first
    assert SECRET_Q not in str([c.payload for c in slack.api.calls])


async def test_no_prompts_where_nothing_was_asked_yet(two_collections, tmp_path):
    async with slack_for(two_collections, tmp_path) as slack:
        await ask(slack, VPN_Q, user="U9", channel="C9")  # someone else's channel
        found: list[list[str]] = []
        suggested = slack.core.suggested_questions

        async def recorded(*args, **kwargs):
            found.append(await suggested(*args, **kwargs))
            return found[-1]

        slack.core.suggested_questions = recorded
        status, _ = await slack.send.event(SlackSender.assistant_thread_started(thread_ts=THREAD))
        assert status == 200
        await slack.api.wait_for(lambda a: found, what="the prompts to be looked up")
    assert found == [[]] and slack.api.calls_to("assistant.threads.setSuggestedPrompts") == []


async def test_a_question_in_the_assistant_thread_is_answered_there_like_a_dm(two_collections, tmp_path, db):
    async with slack_for(two_collections, tmp_path, reply_mode="answer_first") as slack:
        status, _ = await slack.send.event(SlackSender.assistant_message(SECRET_Q, ts="1700000600.000100",
                                                                         thread_ts=THREAD))
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the answer")
        status, _ = await slack.send.event(SlackSender.assistant_message(VPN_Q, ts="1700000601.000100",
                                                                         thread_ts=THREAD))
        await slack.api.wait_for(lambda a: len(a.calls_to("reactions.remove")) == 2, what="the second answer")

    first, second = slack.api.calls_to("chat.postMessage")
    for answer in (first, second):
        assert (answer.payload["channel"], answer.payload["thread_ts"]) == ("D1", THREAD)
    assert "Falcon" not in str(first.payload)  # the DM's rules: the private collection is not read there
    assert "self-service portal" in section_texts(second.payload) and "*Sources*" in section_texts(second.payload)
    assert ACTION_FEEDBACK in buttons(second.payload)
    statuses = [c.payload["status"] for c in slack.api.calls_to("assistant.threads.setStatus")]
    assert statuses[-2:] == ["is searching 1 collection…", "is reading VPN access…"]
    logged = [(r.channel_id, r.thread_id, r.question) for r in sorted(rows(db, t.interactions), key=lambda r: r.id)]
    assert logged == [("D1", THREAD, SECRET_Q), ("D1", THREAD, VPN_Q)]
