"""A database outage while the Discord bot runs: honest messages, no crash, recovery.

Uses its own embedded PostgreSQL (stopped and restarted here), never the shared ones.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, action_rows_custom_ids, connect, drain
from app.configs import bot_config, discord_config, engine_config, store_config
from bot.core import BotCore
from rag_engine.engine import RagEngine
from rag_engine.store import schema as t
from rag_engine.store.database import Database
from rag_engine.store.migrate import ensure_schema
from tests.conftest import make_settings


@pytest.fixture()
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@pytest.fixture()
def own_engine(tmp_path, embedder):
    settings = make_settings(tmp_path / "outage-db", db_connect_timeout_s=2.0)
    db = Database.from_config(store_config(settings))
    ensure_schema(db, embedder.dim)
    engine = RagEngine(engine_config(settings), db=db, embedder=embedder, generator=None, reranker=None)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "expenses.md").write_text("# Expenses\n\nExpense reports must be submitted within 30 days of "
                                      "purchase. Your manager approves them in the finance tool.\n")
    engine.ingest([docs], "default")
    yield engine
    engine.close()
    db.embedded.stop()


async def test_database_outage_gives_a_friendly_message_and_the_bot_recovers(fake, own_engine):
    settings = make_settings(own_engine.config.data_dir, discord_api_base=fake.base_url,
                             db_connect_timeout_s=2.0)
    core = BotCore(bot_config(settings), own_engine)
    client = RagbotClient(core, discord_config(settings))
    await connect(client, fake)
    parse = client._connection
    question = "How fast must expense reports be submitted?"
    try:
        parse.parse_message_create(fake.message_create(fake.alice, f"<@{fake.bot.id}> {question}"))
        await drain()
        answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)
        up = action_rows_custom_ids(answer)[0]

        own_engine.db.embedded.stop()
        try:
            parse.parse_message_create(fake.message_create(fake.alice, f"<@{fake.bot.id}> {question}"))
            click = fake.component_interaction(fake.alice, answer, up)
            parse.parse_interaction_create(click)
            ask = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3, "value": question}])
            parse.parse_interaction_create(ask)
            await drain()
        finally:
            own_engine.db.embedded.start()

        down_reply = fake.find("POST", fake.channel_messages_path())[-1].body
        assert "temporarily unavailable" in down_reply["content"]
        assert not down_reply.get("components")  # nothing was logged, so nothing to vote on
        (vote_note,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{click['token']}")
        (ask_note,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{ask['token']}")
        vote_note, ask_note = vote_note.body["content"], ask_note.body["content"]
        assert "temporarily unavailable" in ask_note
        assert "as soon as my database is back" in vote_note  # the core keeps the vote for later

        # same client, database back: answers again, and the vote made during the outage is stored
        parse.parse_message_create(fake.message_create(fake.alice, f"<@{fake.bot.id}> {question}"))
        await drain()
        assert "30 days" in fake.find("POST", fake.channel_messages_path())[-1].body["content"]
        assert await asyncio.to_thread(core.writes.queue.drain, 60)
        with own_engine.db.connect() as conn:
            assert conn.execute(select(t.feedback.c.vote, t.feedback.c.user_key)).all() == [
                (1, f"discord:{fake.alice.id}")]
    finally:
        await client.close()
        core.close()
