"""What the reply-mode transcripts (stream, answer-first) share: the VPN question and a model text for each
outcome of the grounding check, an engine holding the VPN and vacation documents that answers with a
stand-in model, the one interaction row such a test makes, and the real Discord client on the wire
double with a mention to ask it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, connect, drain
from app.configs import bot_config, discord_config, engine_config
from bot.core import BotCore
from rag_engine.engine import RagEngine
from rag_engine.store import schema as t
from tests.conftest import make_settings
from tests.e2e.test_slack_app import VACATION, VPN, write_docs

QUESTION = "how do I get VPN access?"
GROUNDED = ("Request the Remote Access role in the IT self-service portal; your manager approves the request "
            "within one business day [1].")
UNSUPPORTED = "Submarines are painted yellow on the second Tuesday of every month."
MENTION_TS = "1700000100.000100"


def vpn_engine(db: Any, embedder: Any, scratch_dir: Path, tmp_path: Path, model: Any) -> RagEngine:
    """An engine answering with ``model`` over the VPN and vacation documents."""
    engine = RagEngine(engine_config(make_settings(scratch_dir)), db=db, embedder=embedder, generator=model,
                       reranker=None)
    report = engine.ingest([write_docs(tmp_path, {"vpn.md": VPN, "vacation.md": VACATION})], "default")
    assert report.documents_written == 2
    return engine


def interaction(db: Any) -> Any:
    """The one interaction the test made."""
    with db.connect() as conn:
        (row,) = conn.execute(select(t.interactions)).all()
    return row


@asynccontextmanager
async def discord_bot(engine: RagEngine, scratch_dir: Path, **settings: Any) -> AsyncIterator[
        tuple[FakeDiscord, RagbotClient]]:
    """The Discord client connected to a fresh wire double, with ``settings`` (``reply_mode``...)."""
    fake = await FakeDiscord().start()
    config = make_settings(scratch_dir, discord_api_base=f"http://127.0.0.1:{fake.port}", **settings)
    client = RagbotClient(BotCore(bot_config(config), engine), discord_config(config))
    await connect(client, fake)
    try:
        yield fake, client
    finally:
        await client.close()
        client.core.close()
        await fake.stop()


async def mention_on_discord(fake: FakeDiscord, client: RagbotClient) -> dict[str, Any]:
    """Alice asks ``QUESTION`` mentioning the bot; the client has handled it when this returns."""
    question = fake.message_create(fake.alice, f"<@{fake.bot.id}> {QUESTION}")
    client._connection.parse_message_create(question)
    await drain()
    return question
