"""Answer-first replies through the Slack and Discord wire doubles: the quoted answer at once, then the
model's answer in its place — only when it passes the grounding check — and the log keeps both texts.

The real Bolt app / discord.py client, bot core and engine run on the scratch Postgres; the model is a
stand-in that answers from the VPN passage in its own words (or says something the passages do not
support, or fails), held back by a gate where a test acts before it answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

import adapters.discord.streaming as discord_streaming
from adapters.discord import RagbotClient
from adapters.discord.streaming import StatusLine
from adapters.slack.blocks import ACTION_CORRECT, ACTION_FEEDBACK
from adapters.testing.discord_gateway import FakeDiscord, action_rows_custom_ids
from adapters.testing.slack_server import SlackSender
from bot.fallback_notes import QUOTED_FIRST, REFINED
from bot.progress import ProgressEvent
from rag_engine.engine import RagEngine
from rag_engine.store import schema as t
from rag_engine.values import GeneratedText
from tests.e2e.test_slack_app import Slack, buttons, section_texts, slack_for
from tests.support import reply_modes
from tests.support.reply_modes import GROUNDED, MENTION_TS, QUESTION, UNSUPPORTED, interaction, mention_on_discord


class VpnModel:
    """A stand-in model: ``text`` (or ``error``) once ``gate`` is open."""

    name = "vpn-model"

    def __init__(self) -> None:
        self.text = GROUNDED
        self.error: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def generate(self, question, hits, history):
        self.calls += 1
        assert self.gate.wait(60), "the test never let the model answer"
        if self.error is not None:
            raise self.error
        return GeneratedText(text=self.text, model=self.name, passages=tuple(h.text for h in hits))


@pytest.fixture()
def model() -> VpnModel:
    return VpnModel()


@pytest.fixture()
def model_engine(db, embedder, scratch_dir, tmp_path, model) -> RagEngine:
    return reply_modes.vpn_engine(db, embedder, scratch_dir, tmp_path, model)


def footer(payload: dict) -> str:
    return " ".join(e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"])


def sources(payload: dict) -> str:
    return section_texts(payload).split("*Sources*", 1)[1]


async def ask_by_mention(slack: Slack) -> None:
    status, _ = await slack.send.event(SlackSender.mention(QUESTION, ts=MENTION_TS), event_id="EvVPN")
    assert status == 200


# -- Slack ------------------------------------------------------------------------------------------

async def test_slack_posts_the_quoted_answer_then_updates_it_to_the_models(model_engine, model, tmp_path, db):
    model.gate.clear()  # the model answers only after the 👍 below
    async with slack_for(model_engine, tmp_path, reply_mode="answer_first") as slack:
        api = slack.api
        await ask_by_mention(slack)
        await api.wait_for(lambda a: a.calls_to("chat.postMessage"), what="the quoted answer")
        first = api.calls_to("chat.postMessage")[0]
        answer_id = buttons(first.payload)[ACTION_FEEDBACK]
        (votes,) = [e for b in first.payload["blocks"] if b["type"] == "context_actions" for e in b["elements"]]
        assert votes["type"] == "feedback_buttons"  # Slack's native 👍 / 👎

        # feedback given before the replacement: on the interaction, and still there after it
        status, _ = await slack.send.feedback(votes["positive_button"]["value"], message_ts=first.response["ts"],
                                              thread_ts=MENTION_TS)
        assert status == 200
        await api.wait_for(lambda a: a.calls_to("response_url"), what="the vote's thanks")
        assert not api.calls_to("chat.update")
        model.gate.set()
        await api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the refined answer")

    assert [c.method for c in api.calls if c.method != "response_url"] == [
        "auth.test", "reactions.add", "assistant.threads.setStatus", "assistant.threads.setStatus",
        "chat.postMessage", "chat.update", "reactions.remove"]
    # the loading state follows retrieval: what is searched, then the top document being read
    assert [{k: c.payload[k] for k in ("channel_id", "thread_ts", "status")}
            for c in api.calls_to("assistant.threads.setStatus")] == [
        {"channel_id": "C1", "thread_ts": MENTION_TS, "status": "is searching 1 collection…"},
        {"channel_id": "C1", "thread_ts": MENTION_TS, "status": "is reading VPN access…"}]

    # the quoted answer: in the mention's thread, cited, with sources, buttons and the quoted note
    assert (first.payload["channel"], first.payload["thread_ts"]) == ("C1", MENTION_TS)
    quoted = section_texts(first.payload)
    assert "self-service portal" in quoted and "[1]" in quoted and "VPN access" in sources(first.payload)
    code = slack.core.answer_code(int(answer_id))
    assert footer(first.payload) == f"Answer {code} · {QUOTED_FIRST}"

    # ...replaced in place by the model's: same message, same sources and buttons, marked refined
    (update,) = api.calls_to("chat.update")
    assert (update.payload["channel"], update.payload["ts"]) == ("C1", first.response["ts"])
    refined = section_texts(update.payload)
    assert "Remote Access role in the IT self-service portal; your manager approves" in refined
    assert sources(update.payload) == sources(first.payload)
    assert buttons(update.payload) == buttons(first.payload) == {ACTION_FEEDBACK: answer_id, ACTION_CORRECT: answer_id}
    assert footer(update.payload) == f"Answer {code} · {REFINED}"

    # the log keeps both texts; the vote stays on the interaction
    row = interaction(db)
    assert row.id == int(answer_id) and row.status == "answered" and row.generator == model.name
    assert row.answer.startswith("Request the Remote Access role") and row.refined_at is not None
    assert row.first_answer and "self-service portal" in row.first_answer and row.first_answer != row.answer
    assert row.fallback_reason is None and row.timings["refine_generate"] >= 0 and "retrieve" in row.timings
    with db.connect() as conn:
        votes = conn.execute(select(t.feedback.c.interaction_id, t.feedback.c.vote)).all()
    assert [tuple(v) for v in votes] == [(row.id, 1)]


@pytest.mark.parametrize("outcome", ["unsupported", "model error"])
async def test_slack_leaves_the_quoted_answer_when_the_models_is_rejected(outcome, model_engine, model, tmp_path,
                                                                          db):
    if outcome == "unsupported":
        model.text = UNSUPPORTED
    else:
        model.error = RuntimeError("CUDA out of memory (simulated)")
    async with slack_for(model_engine, tmp_path, reply_mode="answer_first") as slack:
        await ask_by_mention(slack)
        await slack.api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the answer and the refinement")

    assert model.calls == 1
    assert [c.method for c in slack.api.calls] == [
        "auth.test", "reactions.add", "assistant.threads.setStatus", "assistant.threads.setStatus",
        "chat.postMessage", "reactions.remove"]
    (first,) = slack.api.calls_to("chat.postMessage")
    assert "self-service portal" in section_texts(first.payload) and UNSUPPORTED not in str(first.payload)
    row = interaction(db)  # the quoted answer stays, and the log says why
    assert row.status == "fallback" and row.generator == "extractive" and row.first_answer is None
    assert row.refined_at is None and "self-service portal" in row.answer
    expected = "not_supported: " if outcome == "unsupported" else "generator_error: RuntimeError: CUDA out of memory"
    assert row.fallback_reason.startswith(expected), row.fallback_reason


async def test_slack_ask_command_answer_is_updated_in_the_channel(model_engine, tmp_path, db):
    async with slack_for(model_engine, tmp_path, reply_mode="answer_first") as slack:
        status, _ = await slack.send.command("/ask", QUESTION, response_key="ask")
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("chat.update"), what="the refined answer")

    assert [(c.method, c.payload.get("_key")) for c in slack.api.calls] == [
        ("auth.test", None), ("chat.postMessage", None), ("response_url", "ask"), ("chat.update", None)]
    first, update = slack.api.calls_to("chat.postMessage")[0], slack.api.calls_to("chat.update")[0]
    assert update.payload["ts"] == first.response["ts"] and "thread_ts" not in first.payload
    assert footer(update.payload).startswith(f"*Q:* {QUESTION}")  # the question stays above the refined answer
    assert REFINED in footer(update.payload) and buttons(update.payload) == buttons(first.payload)
    assert interaction(db).generator == "vpn-model"


async def test_slack_final_mode_posts_the_models_answer_once(model_engine, tmp_path):
    async with slack_for(model_engine, tmp_path, reply_mode="final") as slack:
        await ask_by_mention(slack)
        await slack.api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the answer")

    assert [c.method for c in slack.api.calls] == ["auth.test", "reactions.add", "chat.postMessage",
                                                   "reactions.remove"]
    (answer,) = slack.api.calls_to("chat.postMessage")
    assert "Remote Access role in the IT self-service portal; your manager" in section_texts(answer.payload)
    assert QUOTED_FIRST not in footer(answer.payload) and REFINED not in footer(answer.payload)


# -- Discord ----------------------------------------------------------------------------------------

@pytest.fixture()
async def discord_bot(model_engine, scratch_dir, monkeypatch) -> AsyncIterator[tuple[FakeDiscord, RagbotClient]]:
    # status edits unpaced: each progress event is an edit, so the transcript does not hang on the CPU's speed
    monkeypatch.setattr(discord_streaming, "EDIT_INTERVAL_S", 0.0)
    async with reply_modes.discord_bot(model_engine, scratch_dir, reply_mode="answer_first") as bot:
        yield bot


def message_calls(fake: FakeDiscord) -> list[tuple[str, str]]:
    """The channel's message and typing requests, in order (the message id of an edit as ``{id}``)."""
    channel = f"/channels/{fake.channel_id}"
    return [(c.method, c.path.replace(channel, "").split("/")[1] + ("/{id}" if c.path.count("/") == 4 else ""))
            for c in fake.calls if c.path.startswith(channel + "/")]


async def test_discord_sends_the_quoted_answer_then_edits_it_to_the_models(discord_bot, db):
    fake, client = discord_bot
    question = await mention_on_discord(fake, client)

    assert message_calls(fake) == [
        ("POST", "typing"),  # while the core looks for the answer
        ("POST", "messages"),  # a status line while retrieval runs, a reply to the question,
        ("PATCH", "messages/{id}"),  # ...saying what it reads (Slack's loading-state words)...
        ("PATCH", "messages/{id}"),  # ...then edited away: it becomes the quoted answer
        ("POST", "typing"),  # while the model writes
        ("PATCH", "messages/{id}"),  # the same message, edited into the model's answer
    ]
    (status,) = [c.body for c in fake.find("POST", fake.channel_messages_path())]
    assert status["content"] == "🔎 Searching 1 collection…" and "embeds" not in status
    reading, quoted, edit = fake.find("PATCH", fake.channel_messages_path() + r"/\d+")
    assert reading.body["content"] == "🔎 Reading VPN access…" and "embeds" not in reading.body
    assert reading.path == quoted.path == edit.path
    sent = quoted.body
    message = fake.messages[edit.path.rsplit("/", 1)[1]]
    assert message["message_reference"]["message_id"] == question["id"] and message["edited_timestamp"]
    assert "self-service portal" in sent["content"] and "[1]" in sent["content"]
    assert "Remote Access role in the IT self-service portal; your manager" in message["content"]
    (quoted_embed,), (refined_embed,) = sent["embeds"], message["embeds"]
    assert refined_embed["description"] == quoted_embed["description"] and "VPN access" in quoted_embed["description"]
    assert quoted_embed["footer"]["text"].endswith(QUOTED_FIRST) and refined_embed["footer"]["text"].endswith(REFINED)
    row = interaction(db)
    assert action_rows_custom_ids(message) == action_rows_custom_ids(sent) == [
        f"ragbot:up:{row.id}", f"ragbot:down:{row.id}", f"ragbot:fix:{row.id}"]
    assert row.generator == "vpn-model" and "self-service portal" in row.first_answer


async def test_discord_leaves_the_quoted_answer_when_the_models_is_unsupported(discord_bot, model, db):
    fake, client = discord_bot
    model.text = UNSUPPORTED
    await mention_on_discord(fake, client)

    assert message_calls(fake) == [("POST", "typing"), ("POST", "messages"), ("PATCH", "messages/{id}"),
                                   ("PATCH", "messages/{id}"), ("POST", "typing")]
    row = interaction(db)
    assert row.status == "fallback" and row.fallback_reason.startswith("not_supported: ") and row.first_answer is None


async def test_discord_status_line_edits_keep_to_one_a_second_and_show_the_latest_words(discord_bot, monkeypatch):
    fake, client = discord_bot
    monkeypatch.setattr(discord_streaming, "EDIT_INTERVAL_S", 0.5)
    channel = client.get_channel(int(fake.channel_id))
    asked = fake.message_create(fake.alice, f"<@{fake.bot.id}> {QUESTION}")
    status = StatusLine(channel, client._connection.create_message(channel=channel, data=asked))
    messages = fake.channel_messages_path()

    await status.show(ProgressEvent("searching", collections=3))  # sent at once
    await status.show(ProgressEvent("reading", title="VPN access"))  # too soon: waits for the interval...
    await status.show(ProgressEvent("reading", title="Remote <@123> access\n[setup](https://evil.example)"))
    (sent,) = fake.find("POST", messages)
    assert sent.body["content"] == "🔎 Searching 3 collections…" and not fake.find("PATCH", messages + r"/\d+")
    (edit,) = await fake.wait_for("PATCH", messages + r"/\d+", timeout=5)  # ...then shows only the latest
    assert edit.at - sent.at >= 0.5 * 0.8
    assert edit.body["content"].startswith("🔎 Reading Remote") and "\n" not in edit.body["content"]
    assert edit.body["allowed_mentions"]["parse"] == []

    await status.show(ProgressEvent("reading", title="Vacation policy"))  # due in 0.5 s: the answer comes first
    message = await status.take(channel)
    await asyncio.sleep(0.7)
    assert len(fake.find("PATCH", messages + r"/\d+")) == 1  # the pending edit was dropped, not sent over it
    assert message is not None and edit.path == f"{messages}/{message.id}"  # the answer is written into it
    before = len(fake.calls)
    await status.show(ProgressEvent("searching", collections=1))  # taken: no more calls
    await asyncio.sleep(0.1)
    assert len(fake.calls) == before
