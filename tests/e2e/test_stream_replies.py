"""Stream replies (RAGBOT_REPLY_MODE=stream) through the Slack and Discord wire doubles.

The real Bolt app / discord.py client, bot core and engine run on the scratch Postgres. The model is a
deterministic stand-in that implements the streaming generator interface (``stream`` yields words as a
decoder would, with a pause between them): a tiny random model cannot be made to write text that passes
the grounding check, and these tests need both outcomes. Slack: ``chat.startStream`` → ``appendStream``
(batched by time) → ``stopStream`` with the sources and buttons; Discord: a status line edited into the
live text at a limited pace, the final edit carrying the sources and buttons. When the grounding check
rejects the streamed text, the message is replaced by the quoted answer with a visible note.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator

import pytest

import adapters.discord.streaming as discord_streaming
import adapters.slack.streaming as slack_streaming
from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, action_rows_custom_ids, drain
from adapters.testing.slack_server import Call, SlackSender
from bot.fallback_notes import NOTES
from bot.streaming import STREAM_REPLACED
from rag_engine.engine import RagEngine
from rag_engine.generation.streaming import StreamingGenerator, TextDelta
from rag_engine.streaming import StreamEnd, StreamPiece
from rag_engine.values import Answer, FallbackCode, GeneratedText
from tests.e2e.test_slack_app import buttons, section_texts, slack_for
from tests.support import reply_modes
from tests.support.reply_modes import GROUNDED, MENTION_TS, QUESTION, UNSUPPORTED, interaction, mention_on_discord

INTERVAL_S = 0.15  # the platforms' pacing, shortened for the tests
WORD_PAUSE_S = 0.03


class StreamingModel:
    """Writes ``text`` word by word (``stream``) or at once (``generate``); ``fail_after`` words, it raises."""

    name = "stream-model"

    def __init__(self) -> None:
        self.text = GROUNDED
        self.fail_after: int | None = None
        self.streamed = 0

    def generate(self, question, hits, history) -> GeneratedText:
        raise AssertionError("stream mode must stream")

    def stream(self, question, hits, history) -> Iterator[TextDelta | GeneratedText]:
        self.streamed += 1
        words = self.text.split(" ")
        for i, word in enumerate(words):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("CUDA out of memory (simulated)")
            time.sleep(WORD_PAUSE_S)
            yield TextDelta(word if i == 0 else " " + word)
        yield GeneratedText(text=self.text, model=self.name, passages=tuple(h.text for h in hits))


@pytest.fixture()
def model() -> StreamingModel:
    return StreamingModel()


@pytest.fixture()
def stream_engine(db, embedder, scratch_dir, tmp_path, model) -> RagEngine:
    assert isinstance(model, StreamingGenerator)
    return reply_modes.vpn_engine(db, embedder, scratch_dir, tmp_path, model)


@pytest.fixture(autouse=True)
def quick_pacing(monkeypatch) -> None:
    monkeypatch.setattr(slack_streaming, "APPEND_INTERVAL_S", INTERVAL_S)
    monkeypatch.setattr(discord_streaming, "EDIT_INTERVAL_S", INTERVAL_S)


def chunk_text(call: Call) -> str:
    return "".join(c["text"] for c in call.payload.get("chunks") or [] if c["type"] == "markdown_text")


def footer(payload: dict) -> str:
    return " ".join(e.get("text", "") for b in payload["blocks"] if b["type"] == "context" for e in b["elements"])


def assert_paced(calls: list, interval: float) -> None:
    """Consecutive calls at least ``interval`` apart (a little slack for the clock of the fake's arrival)."""
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= interval * 0.8 for gap in gaps), gaps


async def ask_in_slack(stream_engine, tmp_path):
    async with slack_for(stream_engine, tmp_path, reply_mode="stream") as slack:
        status, _ = await slack.send.event(SlackSender.mention(QUESTION, ts=MENTION_TS), event_id="EvVPN")
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the streamed answer")
    return slack


# -- Slack ------------------------------------------------------------------------------------------

async def test_slack_streams_the_answer_and_stops_with_sources_and_buttons(stream_engine, model, tmp_path, db):
    slack = await ask_in_slack(stream_engine, tmp_path)
    api = slack.api
    chat = [c for c in api.calls if c.method.startswith("chat.")]
    methods = [c.method for c in chat]
    appends = methods.count("chat.appendStream")
    assert methods == ["chat.startStream", *["chat.appendStream"] * appends, "chat.stopStream"], methods
    words = len(GROUNDED.split())
    assert 1 <= appends < words // 2  # batched by time, not one call per piece
    assert_paced(chat[:-1], INTERVAL_S)

    start, stop = chat[0], chat[-1]
    assert (start.payload["channel"], start.payload["thread_ts"]) == ("C1", MENTION_TS)
    assert (start.payload["recipient_user_id"], start.payload["recipient_team_id"]) == ("U1", "T0TEST")
    assert all(c.payload["ts"] == start.response["ts"] for c in chat[1:])
    assert "".join(chunk_text(c) for c in chat) == GROUNDED  # every word once, in order

    # the stop carries what the answer shows under its text: sources, code, feedback buttons
    row = interaction(db)
    assert row.status == "answered" and row.generator == model.name and row.answer == GROUNDED
    assert not section_texts(stop.payload).startswith("Request")  # the text was streamed, not repeated
    assert "VPN access" in section_texts(stop.payload) and f"Answer {slack.core.answer_code(row.id)}" in footer(
        stop.payload)
    assert set(buttons(stop.payload).values()) == {str(row.id)}
    assert api.streams == {start.response["ts"]: "stopped"}
    assert not api.calls_to("chat.postMessage") and not api.calls_to("chat.update")


@pytest.mark.parametrize("outcome", ["unsupported", "model error"])
async def test_slack_replaces_a_rejected_stream_by_the_quoted_answer(outcome, stream_engine, model, tmp_path, db):
    if outcome == "unsupported":
        model.text = " ".join([UNSUPPORTED] * 3)
    else:
        model.fail_after = 6
    slack = await ask_in_slack(stream_engine, tmp_path)
    chat = [c for c in slack.api.calls if c.method.startswith("chat.")]
    methods = [c.method for c in chat]
    assert methods[0] == "chat.startStream" and methods[-2:] == ["chat.stopStream", "chat.update"], methods
    assert "Submarines" in chunk_text(chat[0]) or "Request" in chunk_text(chat[0])  # it was shown live...

    update = chat[-1]  # ...and replaced in the same message by the quoted answer, which says why
    assert update.payload["ts"] == chat[0].response["ts"]
    assert "self-service portal" in section_texts(update.payload) and "Submarines" not in str(update.payload)
    code = FallbackCode.NOT_SUPPORTED if outcome == "unsupported" else FallbackCode.GENERATOR_ERROR
    assert f"{STREAM_REPLACED} {NOTES[code]}" in footer(update.payload)
    row = interaction(db)
    assert set(buttons(update.payload).values()) == {str(row.id)}
    assert row.status == "fallback" and row.generator == "extractive" and row.fallback_reason.startswith(code.value)


async def test_slack_ask_command_in_stream_mode_posts_the_final_answer(stream_engine, model, tmp_path, db):
    async with slack_for(stream_engine, tmp_path, reply_mode="stream") as slack:
        status, _ = await slack.send.command("/ask", QUESTION, response_key="ask")
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("chat.postMessage"), what="the answer")
    (posted,) = slack.api.calls_to("chat.postMessage")
    assert "Remote Access role in the IT self-service portal" in section_texts(posted.payload)
    assert not [c for c in slack.api.calls if "Stream" in c.method] and model.streamed == 1


# -- Discord ----------------------------------------------------------------------------------------

@pytest.fixture()
def discord_settings() -> dict:
    return {}


@pytest.fixture()
async def discord_bot(stream_engine, scratch_dir, discord_settings) -> AsyncIterator[tuple[FakeDiscord, RagbotClient]]:
    async with reply_modes.discord_bot(stream_engine, scratch_dir, reply_mode="stream", **discord_settings) as bot:
        yield bot


async def test_discord_status_line_becomes_the_streamed_answer(discord_bot, db):
    fake, client = discord_bot
    question = await mention_on_discord(fake, client)

    messages = fake.channel_messages_path()
    (status,) = fake.find("POST", messages)
    assert status.body["content"] == "🔎 Searching 1 collection…"  # while retrieval runs
    assert str(status.body["message_reference"]["message_id"]) == question["id"]
    edits = fake.find("PATCH", messages + r"/\d+")
    (message_id,) = {e.path.rsplit("/", 1)[1] for e in edits}  # every edit is to the status line's message
    assert len(edits) >= 3 and len(edits) < len(GROUNDED.split())  # live edits, paced, then the final one
    assert_paced(edits, INTERVAL_S)
    live = [e.body["content"] for e in edits[:-1] if not e.body["content"].startswith("🔎 Reading")]  # the status
    assert live and all(GROUNDED.startswith(text) for text in live) and live == sorted(live, key=len)

    final = fake.messages[message_id]  # the final edit: the answer as rendered, with sources and buttons
    row = interaction(db)
    assert "Remote Access role in the IT self-service portal" in final["content"] and "Searching" not in final[
        "content"]
    (embed,) = final["embeds"]
    assert "VPN access" in embed["description"] and embed["footer"]["text"].startswith(
        f"answer {client.core.answer_code(row.id)}")
    assert action_rows_custom_ids(final) == [f"ragbot:up:{row.id}", f"ragbot:down:{row.id}", f"ragbot:fix:{row.id}"]
    assert row.status == "answered" and row.generator == "stream-model"


async def test_discord_long_live_text_is_cut_and_a_rejected_stream_replaced(discord_bot, model, db):
    fake, client = discord_bot
    model.text = " ".join([UNSUPPORTED] * 40)  # ~2,700 characters: past one message while live
    await mention_on_discord(fake, client)

    edits = fake.find("PATCH", fake.channel_messages_path() + r"/\d+")
    live = [e.body["content"] for e in edits[:-1]]
    assert max(len(text) for text in live) <= 2000 and live[-1].endswith("…")  # cut, with an ellipsis
    (message_id,) = {e.path.rsplit("/", 1)[1] for e in edits}
    final = fake.messages[message_id]
    assert "Submarines" not in final["content"] and "self-service portal" in final["content"]
    (embed,) = final["embeds"]
    assert f"{STREAM_REPLACED} {NOTES[FallbackCode.NOT_SUPPORTED]}" in embed["footer"]["text"]
    row = interaction(db)
    assert action_rows_custom_ids(final) == [f"ragbot:up:{row.id}", f"ragbot:down:{row.id}", f"ragbot:fix:{row.id}"]
    assert row.status == "fallback" and row.fallback_reason.startswith("not_supported")


@pytest.mark.parametrize("discord_settings", [{"discord_reply_in_thread": True}])
async def test_discord_status_line_is_removed_when_the_answer_goes_to_a_thread(discord_bot, db):
    fake, client = discord_bot
    question = await mention_on_discord(fake, client)

    (status,) = fake.find("POST", fake.channel_messages_path())
    (removed,) = fake.find("DELETE", fake.channel_messages_path() + r"/\d+")
    assert status.body["content"].startswith("🔎") and removed.path.rsplit("/", 1)[1] not in fake.messages
    thread = question["id"]  # a thread opened on the question: the live text and the answer are in there
    (live,) = fake.find("POST", fake.channel_messages_path(thread))
    edits = fake.find("PATCH", fake.channel_messages_path(thread) + r"/\d+")
    assert edits and GROUNDED.startswith(live.body["content"])
    final = fake.messages[edits[-1].path.rsplit("/", 1)[1]]
    assert "Remote Access role" in final["content"] and final["embeds"]
    assert action_rows_custom_ids(final)[0] == f"ragbot:up:{interaction(db).id}"


async def test_discord_ask_command_streams_into_its_follow_up(discord_bot, db):
    fake, client = discord_bot
    payload = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3, "value": QUESTION}])
    client._connection.parse_interaction_create(payload)
    await drain()

    hooks = rf"/webhooks/{fake.application_id}/{payload['token']}"
    (callback,) = fake.find("POST", rf"/interactions/{payload['id']}/{payload['token']}/callback")
    assert callback.body["type"] == 5  # deferred "thinking…"
    (live,) = fake.find("POST", hooks)  # the first follow-up: the live text...
    edits = fake.find("PATCH", hooks + r"/messages/\d+")  # ...grown by paced edits into the final answer
    assert GROUNDED.startswith(live.body["content"]) and len(edits) >= 2
    assert_paced(edits, INTERVAL_S)
    final = fake.messages[edits[-1].path.rsplit("/", 1)[1]]
    row = interaction(db)
    assert "Remote Access role" in final["content"] and final["embeds"] and row.thread_id == payload["id"]
    assert action_rows_custom_ids(final) == [f"ragbot:up:{row.id}", f"ragbot:down:{row.id}", f"ragbot:fix:{row.id}"]


async def test_slack_stream_refused_midway_ends_in_the_final_answer(stream_engine, model, tmp_path, db):
    async with slack_for(stream_engine, tmp_path, reply_mode="stream") as slack:
        slack.api.fail_next("chat.appendStream", status=200, retry_after=None,
                            body={"ok": False, "error": "message_not_in_streaming_state"})
        status, _ = await slack.send.event(SlackSender.mention(QUESTION, ts=MENTION_TS), event_id="EvVPN")
        assert status == 200
        await slack.api.wait_for(lambda a: a.calls_to("reactions.remove"), what="the answer")
    methods = [c.method for c in slack.api.calls if c.method.startswith("chat.")]
    assert methods == ["chat.startStream", "chat.appendStream", "chat.update"]  # no more stream calls after
    (update,) = slack.api.calls_to("chat.update")
    assert "Remote Access role in the IT self-service portal" in section_texts(update.payload)
    assert set(buttons(update.payload).values()) == {str(interaction(db).id)}


# -- the engine's side ------------------------------------------------------------------------------

class PlainModel:
    """A backend without ``stream``: its whole text is one piece."""

    name = "plain-model"

    def generate(self, question, hits, history) -> GeneratedText:
        return GeneratedText(text=GROUNDED, model=self.name, passages=tuple(h.text for h in hits))


@pytest.mark.parametrize("generator", [PlainModel(), None], ids=["cannot stream", "no model"])
def test_engine_stream_without_a_streaming_model(generator, db, embedder, scratch_dir, tmp_path):
    engine = reply_modes.vpn_engine(db, embedder, scratch_dir, tmp_path, generator)
    streamed = engine.answer_stream(QUESTION, engine.every_collection())
    if generator is None:  # nothing is written live: the final (quoted) answer at once
        assert isinstance(streamed, Answer) and streamed.fallback_code is FallbackCode.NO_GENERATOR
        return
    assert not isinstance(streamed, Answer)
    piece, end = list(streamed)
    assert isinstance(piece, StreamPiece) and piece.text == GROUNDED
    assert isinstance(end, StreamEnd) and end.answer.generated and end.answer.text == GROUNDED
    assert end.answer.citations and "retrieve" in end.answer.timings and "total" in end.answer.timings
