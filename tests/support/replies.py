"""Ask one question through the real Slack app or Discord client (wire fakes on the other side) and
read back what a user would see: the answer text, the sources and the footer.

Used by the reply tests (footers, tables, citations) so each can check both platforms the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, connect
from app.configs import bot_config, discord_config
from bot.core import BotCore
from rag_engine.engine import RagEngine
from tests.conftest import make_settings
from tests.e2e.test_discord_adapter import deliver, mention, posted
from tests.e2e.test_slack_app import section_texts, slack_for

PLATFORMS = ("slack", "discord")


@dataclass(frozen=True)
class Seen:
    """An answer as its reader sees it."""

    text: str  # the answer body (Slack: its sections before the sources; Discord: the message contents)
    sources: list[str]  # one line per source entry
    footer: str


async def ask(platform: str, engine: RagEngine, tmp_path: Path, question: str) -> Seen:
    if platform == "slack":
        return await _ask_slack(engine, tmp_path, question)
    return await _ask_discord(engine, tmp_path, question)


async def _ask_slack(engine: RagEngine, tmp_path: Path, question: str) -> Seen:
    async with slack_for(engine, tmp_path) as slack:
        await slack.send.command("/ask", question)
        await slack.api.wait_for(lambda api: slack.shown(), what="the answer")
        (payload,) = slack.shown()
    text = section_texts(payload)
    body, _, sources = text.partition("*Sources*")
    footer = " ".join(e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"])
    return Seen(body.strip(), [line for line in sources.strip().split("\n") if line], footer)


async def _ask_discord(engine: RagEngine, tmp_path: Path, question: str) -> Seen:
    fake = await FakeDiscord().start()
    settings = make_settings(tmp_path, discord_api_base=f"http://127.0.0.1:{fake.port}")
    client = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    try:
        await connect(client, fake)
        await deliver(client, mention(fake, question))
        bodies = posted(fake)
    finally:
        await client.close()
        client.core.close()
        await fake.stop()
    embeds = [e for b in bodies for e in b.get("embeds", [])]
    sources = [line for e in embeds for line in (e.get("description") or "").split("\n") if line]
    footer = " ".join(e["footer"]["text"] for e in embeds if e.get("footer"))
    return Seen("\n".join(b.get("content", "") for b in bodies), sources, footer)
