"""The Slack adapter end to end: signed HTTP requests into the real Bolt app, the real bot
core and engine on the scratch Postgres, and a local mock of Slack's Web API recording
what the bot sends back."""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.slack.blocks import (
    ACTION_CORRECT,
    ACTION_FEEDBACK,
    ACTION_VOTE_DOWN,
    ACTION_VOTE_UP,
    CORRECTION_BLOCK,
    CORRECTION_INPUT,
    feedback_vote,
)
from adapters.slack.handlers import WORKING_REACTION, WORKING_TEXT
from adapters.testing.slack_server import MockSlackApi, SlackSender, serving
from app.configs import bot_config, engine_config, store_config
from bot.core import ASK_USAGE, BotCore
from rag_engine.store import schema as t
from tests.conftest import make_settings

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

VPN = """# VPN access

To get VPN access, open the IT self-service portal and request the Remote Access role.
Your manager approves the request within one business day. Then install the WireGuard
client and import the profile from the portal.
"""
VACATION = """# Vacation policy

Employees get 25 days of paid vacation per year. Unused vacation days can be carried over
until March 31 of the following year.
"""
ANNOUNCEMENT = """# Office hours announcement

<!channel> <!here> <!everyone> <!subteam^S123|@devs> @here @channel @everyone the office closes
early at 3 pm on Fridays during the summer, so the front desk is unattended after 3 pm.
"""


@dataclass
class Slack:
    api: MockSlackApi
    send: SlackSender
    core: BotCore

    def responses(self) -> list[dict]:
        """The messages sent through response_urls (not the deletions of "Looking…" notes)."""
        return [c.payload for c in self.api.calls_to("response_url") if not c.payload.get("delete_original")]

    def shown(self) -> list[dict]:
        """``responses()`` and the public ``/ask`` answers the bot posted itself (outside any thread), in order."""
        return [c.payload for c in self.api.calls
                if (c.method == "response_url" and not c.payload.get("delete_original"))
                or (c.method == "chat.postMessage" and not c.payload.get("thread_ts"))]


def write_docs(root: Path, docs: dict[str, str]) -> Path:
    folder = root / "docs"
    folder.mkdir(exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text)
    return folder


@asynccontextmanager
async def slack_for(engine, tmp_path: Path, users: dict | None = None, **overrides):
    api = await MockSlackApi(users).start()
    settings = make_settings(tmp_path, slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                             slack_api_url=api.api_url, **overrides)
    core = BotCore(bot_config(settings), engine)
    try:
        async with serving(core, api, SECRET) as sender:
            yield Slack(api, sender, core)
    finally:
        await api.stop()


@pytest.fixture()
def docs_engine(engine, tmp_path):
    report = engine.ingest([write_docs(tmp_path, {"vpn.md": VPN, "vacation.md": VACATION})], "default")
    assert report.documents_written == 2
    return engine


@pytest.fixture()
async def slack(docs_engine, tmp_path):
    async with slack_for(docs_engine, tmp_path, admin_user_ids=["UADMIN"]) as running:
        yield running


def section_texts(payload: dict) -> str:
    return "\n".join(b["text"]["text"] for b in payload.get("blocks", []) if b["type"] == "section")


def buttons(payload: dict) -> dict[str, str]:
    """action id -> the answer id its buttons carry (a feedback_buttons element: both of its buttons)."""
    found = {e["action_id"]: e["value"] for b in payload.get("blocks", []) if b["type"] == "actions"
             for e in b["elements"]}
    for block in payload.get("blocks", []):
        for e in block["elements"] if block["type"] == "context_actions" else []:
            up, down = feedback_vote(e["positive_button"]["value"]), feedback_vote(e["negative_button"]["value"])
            assert up and down and (up[0], down[0]) == (1, -1) and up[1] == down[1], e
            found[e["action_id"]] = str(up[1])
    return found


def rows(db, table):
    with db.connect() as conn:
        return conn.execute(select(table)).all()


async def ask_and_get_id(slack: Slack, question: str = "how do I get VPN access?", user: str = "U1") -> int:
    before = len(slack.shown())
    status, _ = await slack.send.command("/ask", question, user=user)
    assert status == 200
    await slack.api.wait_for(lambda api: len(slack.shown()) > before, what="the /ask answer")
    return int(buttons(slack.shown()[-1])[ACTION_FEEDBACK])


# -- /ask ---------------------------------------------------------------------------
async def test_ask_command_acks_then_posts_answer_with_sources_and_buttons(slack, db):
    status, body = await slack.send.command("/ask", "how do I get VPN access?")

    assert status == 200
    assert json.loads(body)["text"] == WORKING_TEXT  # the ack; the bot then posts the answer in the channel
    await slack.api.wait_for(lambda api: api.calls_to("chat.postMessage"), what="the answer")
    (answer,) = [c.payload for c in slack.api.calls_to("chat.postMessage")]
    assert answer["channel"] == "C1" and "thread_ts" not in answer
    assert slack.responses() == []  # the response_url only deletes the "Looking…" note
    text = section_texts(answer)
    assert "self-service portal" in text
    assert "*Sources*" in text and "VPN access" in text
    (interaction,) = rows(db, t.interactions)
    assert interaction.channel_id == "C1" and interaction.user_key == "slack:U1"
    assert buttons(answer) == {ACTION_FEEDBACK: str(interaction.id),
                               ACTION_CORRECT: str(interaction.id)}
    assert len(answer["text"]) <= 40_000 and len(answer["blocks"]) <= 50


async def test_empty_ask_gets_usage_in_the_ack_and_asks_nothing(slack, db):
    status, body = await slack.send.command("/ask", "   ")

    assert status == 200
    assert json.loads(body)["text"] == ASK_USAGE
    assert rows(db, t.interactions) == []
    assert slack.responses() == []


async def test_answers_are_ephemeral_when_configured(docs_engine, tmp_path):
    async with slack_for(docs_engine, tmp_path, answer_ephemeral=True) as slack:
        await slack.send.command("/ask", "how many vacation days do employees get?")
        await slack.api.wait_for(lambda api: slack.responses(), what="the answer")
    (answer,) = slack.responses()
    assert answer["response_type"] == "ephemeral"
    assert "25 days" in section_texts(answer)


# -- mentions, threads, DMs, retries ---------------------------------------------------
async def test_mention_is_answered_in_a_thread_with_a_working_reaction(slack):
    status, _ = await slack.send.event(SlackSender.mention("how do I get VPN access?", ts="111.0001"))

    assert status == 200
    await slack.api.wait_for(lambda api: api.calls_to("chat.postMessage") and api.calls_to("reactions.remove"),
                             what="the threaded answer")
    (posted,) = slack.api.calls_to("chat.postMessage")
    assert posted.payload["channel"] == "C1" and posted.payload["thread_ts"] == "111.0001"
    assert "self-service portal" in section_texts(posted.payload)
    (added,) = slack.api.calls_to("reactions.add")
    assert {k: added.payload[k] for k in ("channel", "timestamp", "name")} == {
        "channel": "C1", "timestamp": "111.0001", "name": WORKING_REACTION}
    assert slack.api.calls.index(added) < slack.api.calls.index(posted)  # the user saw it working first
    assert slack.api.calls_to("reactions.remove")[0].payload["name"] == WORKING_REACTION


async def test_follow_up_in_a_thread_uses_the_thread_history(slack, db):
    def answers_in(thread):
        return [c.payload for c in slack.api.calls_to("chat.postMessage") if c.payload["thread_ts"] == thread]

    await slack.send.event(SlackSender.mention("how do I get VPN access?", ts="200.0001"))
    await slack.api.wait_for(lambda api: answers_in("200.0001"), what="the first answer")

    follow_up = "and what comes after that?"
    await slack.send.event(SlackSender.mention(follow_up, ts="200.0005", thread_ts="200.0001"))
    await slack.send.event(SlackSender.mention(follow_up, ts="300.0001"))  # same words, fresh thread
    await slack.api.wait_for(lambda api: len(answers_in("200.0001")) == 2 and answers_in("300.0001"),
                             what="both follow-ups")

    in_thread = section_texts(answers_in("200.0001")[1])
    alone = section_texts(answers_in("300.0001")[0])
    assert "manager approves" in in_thread and "VPN access" in in_thread  # found through the earlier turn
    assert "couldn't find" in alone  # without the thread, the follow-up means nothing
    threads = [r.thread_id for r in rows(db, t.interactions)]
    assert threads.count("200.0001") == 2


async def test_a_redelivered_event_is_answered_once(slack, db):
    event = SlackSender.mention("how many vacation days do employees get?", ts="400.0001")
    first = slack.send.event(event, event_id="EvDUP1")
    retry = slack.send.event(event, event_id="EvDUP1", retry_num=1)
    statuses = [await first, await retry]
    assert statuses[0][0] == statuses[1][0] == 200

    # a later, different question is answered after both deliveries were handled
    await slack.api.wait_for(lambda api: any(c.payload.get("thread_ts") == "400.0001"
                                             for c in api.calls_to("chat.postMessage")), what="the answer")
    await slack.send.event(SlackSender.mention("how do I get VPN access?", ts="401.0001"), event_id="EvOTHER")
    await slack.api.wait_for(lambda api: any(c.payload.get("thread_ts") == "401.0001"
                                             for c in api.calls_to("chat.postMessage")), what="the later answer")

    in_thread = [c for c in slack.api.calls_to("chat.postMessage") if c.payload["thread_ts"] == "400.0001"]
    assert len(in_thread) == 1
    assert [r.thread_id for r in rows(db, t.interactions)].count("400.0001") == 1
    assert len([c for c in slack.api.calls_to("reactions.add") if c.payload["timestamp"] == "400.0001"]) == 1


async def test_direct_messages_are_answered(slack, db):
    await slack.send.event(SlackSender.direct_message("how many vacation days do employees get?", ts="500.0001"))
    await slack.send.event({**SlackSender.direct_message("ignored edit", ts="500.0002"), "subtype": "message_changed"})
    await slack.api.wait_for(lambda api: api.calls_to("chat.postMessage"), what="the DM answer")

    (posted,) = slack.api.calls_to("chat.postMessage")
    assert posted.payload["channel"] == "D1"
    assert "25 days" in section_texts(posted.payload)
    (interaction,) = rows(db, t.interactions)
    assert interaction.channel_id == "D1"


async def test_a_rate_limited_api_call_is_retried_after_retry_after(slack):
    slack.api.fail_next("chat.postMessage", status=429, retry_after=1)

    await slack.send.event(SlackSender.mention("how do I get VPN access?", ts="600.0001"))
    await slack.api.wait_for(lambda api: len(api.calls_to("chat.postMessage")) == 2, what="the retried post")

    refused, delivered = slack.api.calls_to("chat.postMessage")
    assert refused.payload == delivered.payload
    assert delivered.at - refused.at >= 0.95  # Slack's Retry-After was honoured, not hammered


# -- feedback ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["feedback_buttons", "old buttons"])
async def test_votes_are_stored_and_repeats_are_idempotent(kind, slack, db):
    interaction_id = await ask_and_get_id(slack)
    (element,) = [e for b in slack.shown()[-1]["blocks"] if b["type"] == "context_actions" for e in b["elements"]]

    async def click(action, user="U1"):
        before = len(slack.responses())
        if kind == "feedback_buttons":  # Slack's native 👍 / 👎: the clicked button's value comes back
            value = element["positive_button" if action == ACTION_VOTE_UP else "negative_button"]["value"]
            status, _ = await slack.send.feedback(value, user=user)
        else:  # the buttons of answers posted before them still work
            status, _ = await slack.send.click(action, str(interaction_id), user=user)
        assert status == 200
        await slack.api.wait_for(lambda api: len(slack.responses()) > before, what="the vote reply")
        reply = slack.responses()[-1]
        assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
        return section_texts(reply)

    assert "Thanks" in await click(ACTION_VOTE_UP)
    assert "already voted" in await click(ACTION_VOTE_UP)
    assert [(r.user_key, r.vote) for r in rows(db, t.feedback)] == [("slack:U1", 1)]

    await click(ACTION_VOTE_DOWN)  # changing one's mind replaces the vote
    await click(ACTION_VOTE_DOWN, user="U2")
    votes = sorted((r.user_key, r.vote, r.interaction_id) for r in rows(db, t.feedback))
    assert votes == [("slack:U1", -1, interaction_id), ("slack:U2", -1, interaction_id)]


async def test_a_vote_on_an_unknown_answer_says_so(slack, db):
    await slack.send.click(ACTION_VOTE_UP, "999999")
    await slack.api.wait_for(lambda api: slack.responses(), what="the vote reply")
    assert f"can't find answer {slack.core.answer_code(999999)}" in section_texts(slack.responses()[-1])
    assert rows(db, t.feedback) == []


async def test_correction_modal_submission_is_stored(slack, db):
    interaction_id = await ask_and_get_id(slack)

    await slack.send.click(ACTION_CORRECT, str(interaction_id), thread_ts=None)
    await slack.api.wait_for(lambda api: api.calls_to("views.open"), what="the modal")
    (opened,) = slack.api.calls_to("views.open")
    assert opened.payload["trigger_id"].startswith("trig.")
    view = opened.payload["view"]

    status, body = await slack.send.submit_view(view, {CORRECTION_BLOCK: {CORRECTION_INPUT: "   "}})
    assert status == 200 and json.loads(body)["response_action"] == "errors"  # empty: the modal stays open

    correction = "Approval takes two business days since March; the profile comes by email."
    status, _ = await slack.send.submit_view(view, {CORRECTION_BLOCK: {CORRECTION_INPUT: correction}})
    assert status == 200
    await slack.api.wait_for(lambda api: api.calls_to("chat.postEphemeral"), what="the confirmation")

    (stored,) = rows(db, t.corrections)
    assert (stored.interaction_id, stored.user_key, stored.text, stored.is_admin) == (
        interaction_id, "slack:U1", correction, False)
    (confirmation,) = slack.api.calls_to("chat.postEphemeral")
    assert confirmation.payload["user"] == "U1" and "saved" in section_texts(confirmation.payload)


# -- admin ---------------------------------------------------------------------------
async def test_admin_command_is_allowed_for_admins_and_refused_for_others(slack, db):
    await slack.send.command("/ragbot-admin", "status", user="UADMIN")
    await slack.api.wait_for(lambda api: len(slack.responses()) == 1, what="the status")
    status_reply = slack.responses()[0]
    assert status_reply["response_type"] == "ephemeral"
    assert status_reply["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "ragbot status",
                                                                    "emoji": True}}
    assert "No retrain queued" in section_texts(status_reply)

    await slack.send.command("/ragbot-admin", "retrain", user="U2")
    await slack.api.wait_for(lambda api: len(slack.responses()) == 2, what="the refusal")
    assert "only ragbot admins" in section_texts(slack.responses()[1])
    assert rows(db, t.jobs) == []

    await slack.send.command("/ragbot-admin", "retrain", user="UADMIN")
    await slack.api.wait_for(lambda api: len(slack.responses()) == 3, what="the queued job")
    job, search = sorted(rows(db, t.jobs), key=lambda r: r.kind)  # the generator's retrain, and retrieval's
    assert (job.kind, search.kind) == ("retrain", "retrieval_retrain")
    assert f"job {job.id}" in section_texts(slack.responses()[2])
    audit = [(r.actor, r.action, r.ok) for r in rows(db, t.audit_log)]
    assert ("slack:U2", "retrain", False) in audit and ("slack:UADMIN", "retrain", True) in audit


async def test_workspace_owners_are_admins_only_when_configured(docs_engine, tmp_path):
    users = {"UOWNER": {"is_owner": True}}
    async with slack_for(docs_engine, tmp_path / "off", users) as slack:
        await slack.send.command("/ragbot-admin", "status", user="UOWNER")
        await slack.api.wait_for(lambda api: slack.responses(), what="the refusal")
        assert "only ragbot admins" in section_texts(slack.responses()[0])
        assert slack.api.calls_to("users.info") == []  # no lookup when it cannot matter
    async with slack_for(docs_engine, tmp_path / "on", users, slack_workspace_admins_are_admins=True) as slack:
        await slack.send.command("/ragbot-admin", "status", user="UOWNER")
        await slack.api.wait_for(lambda api: slack.responses(), what="the status")
        assert slack.responses()[0]["blocks"][0]["type"] == "header"
        assert slack.api.calls_to("users.info")[0].payload["user"] == "UOWNER"


# -- safety and failures -------------------------------------------------------------
MASS_MENTION = re.compile(r"<!(channel|here|everyone|subteam)|(?<![\w\u200b])@(channel|here|everyone)\b", re.I)


async def test_mass_mentions_from_documents_and_questions_never_reach_slack(engine, tmp_path, db):
    engine.ingest([write_docs(tmp_path, {"announcement.md": ANNOUNCEMENT})], "default")
    async with slack_for(engine, tmp_path) as slack:
        await slack.send.command("/ask", "<!channel> when does the office close on Fridays?")
        await slack.send.event(SlackSender.mention("when does the office close on Fridays? @here", ts="700.0001"))
        await slack.api.wait_for(lambda api: len(api.calls_to("chat.postMessage")) == 2, what="both answers")

    sent = slack.api.all_payloads_text()
    assert "office closes" in sent and "front desk" in sent  # the document's text did go out...
    assert MASS_MENTION.search(sent) is None, MASS_MENTION.search(sent)  # ...without a single ping
    for call in slack.api.calls:
        assert "link_names" not in call.payload or call.payload["link_names"] in (False, "0", 0)


async def test_bad_signature_is_rejected(slack, db):
    body = slack.send.command_body("/ask", "how do I get VPN access?")
    status, _ = await slack.send.post(body, "application/x-www-form-urlencoded", signature="v0=" + "0" * 64)
    assert status == 401

    status, _ = await slack.send.post(body, "application/x-www-form-urlencoded")  # the same, signed properly
    assert status == 200
    await slack.api.wait_for(lambda api: slack.shown(), what="the answer to the signed request")
    assert len(rows(db, t.interactions)) == 1


async def test_database_outage_gives_a_friendly_error_and_the_app_keeps_serving(tmp_path, embedder):
    from rag_engine.engine import RagEngine
    from rag_engine.store.database import Database

    own = make_settings(tmp_path / "outage")
    database = Database.from_config(store_config(own))  # a dedicated server: the shared ones are never stopped
    engine = RagEngine(engine_config(own), db=database, embedder=embedder, generator=None, reranker=None)
    engine.ingest([write_docs(tmp_path, {"vpn.md": VPN})], "default")
    try:
        async with slack_for(engine, tmp_path) as slack:
            database.embedded.stop()
            try:
                status, _ = await slack.send.command("/ask", "how do I get VPN access?")
                assert status == 200  # acknowledged even with the database down
                await slack.api.wait_for(lambda api: slack.responses(), what="the error reply")
            finally:
                database.embedded.start()
            down = slack.responses()[0]
            assert down["response_type"] == "ephemeral"
            assert "temporarily unavailable" in section_texts(down)
            assert re.search(r"Reference: [0-9a-f]{8}", section_texts(down))

            await slack.send.command("/ask", "how do I get VPN access?")
            await slack.api.wait_for(lambda api: len(slack.shown()) == 2, what="the answer after recovery")
            back = slack.shown()[1]
            assert back["channel"] == "C1" and "self-service portal" in section_texts(back)
    finally:
        engine.close()
        database.embedded.stop()  # restarted by pg_ctl, so pgserver's exit hook no longer stops it


class _BrokenModel:
    name = "broken-test-model"

    def generate(self, question, hits, history):
        raise RuntimeError("CUDA out of memory (simulated)")


async def test_a_model_failure_still_answers_and_says_so(docs_engine, tmp_path):
    from rag_engine.engine import RagEngine

    broken = RagEngine(docs_engine.config, db=docs_engine.db, embedder=docs_engine.embedder,
                       generator=_BrokenModel(), reranker=None)
    async with slack_for(broken, tmp_path) as slack:
        await slack.send.command("/ask", "how do I get VPN access?")
        await slack.api.wait_for(lambda api: slack.shown(), what="the answer")
    answer = slack.shown()[0]
    assert "self-service portal" in section_texts(answer)
    context = " ".join(e["text"] for b in answer["blocks"] if b["type"] == "context" for e in b["elements"])
    assert "Quoted from the documents: the model failed while answering." in context
