"""Issue 15 item 13: answers never show the server's absolute path of a document.

A source is shown as a link when its URL is known (``url:`` in its front matter, or the
collection's RAGBOT_SOURCE_URL_BASE followed by its relative path), else as its path
relative to the folder it was ingested from; a document stored before relative paths
were kept shows its file name. Checked on the bot core's reply and on what the Slack and
Discord renderers would post. Real files, real database, real BotCore."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from adapters.discord.render import render_reply
from adapters.slack.blocks import reply_messages
from app.configs import bot_config, engine_config
from bot.core import BotCore
from bot.types import Actor, AskRequest, Location, Reply
from rag_engine.engine import RagEngine
from rag_engine.store import schema as t
from tests.conftest import make_settings

BASE = "https://git.example.com/handbook/blob/main/"
WIKI = "https://wiki.example.com/it/vpn"
WHERE = Location("slack", "T1", "C1")
ALICE = Actor("slack", "U1")

DOCS = {
    "handbook/policies/team-expenses.md": ("# Expenses\n\n"
                                           "The team dinner limit is 75 dollars per person, tip included.\n"),
    "handbook/network/vpn setup.md": (f"---\ntitle: VPN setup\nurl: {WIKI}\n---\n# VPN setup\n\n"
                                      "Install the WireGuard client and import the corporate VPN profile.\n"),
    "archive/old/parking.md": "# Parking\n\nThe garage on Elm Street gives staff free parking after 18:00.\n",
    "archive/old/fire-drill.md": "# Fire drills\n\nFire drills happen on the first Tuesday of each quarter.\n",
}


@pytest.fixture()
def core(engine, db, tmp_path):
    for name, body in DOCS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    settings = make_settings(tmp_path, source_url_base=[f"handbook={BASE}"])
    rag = RagEngine(engine_config(settings), db=db, embedder=engine.embedder, generator=None, reranker=None)
    assert not rag.ingest([tmp_path / "handbook"], "handbook").skipped
    assert not rag.ingest([tmp_path / "archive"], "archive").skipped
    with db.begin() as conn:  # as if stored before this change: no relative path in its metadata
        conn.execute(text("UPDATE documents SET metadata = metadata - 'relative_path' "
                          "WHERE source_uri LIKE '%fire-drill.md'"))
    return BotCore(bot_config(settings), rag)


async def _ask(core: BotCore, question: str) -> Reply:
    reply = await core.ask(AskRequest(ALICE, WHERE, question))
    assert reply.kind == "answer" and reply.sources, reply
    return reply


def _posted(reply: Reply) -> tuple[str, str]:
    """Everything the Slack and the Discord renderers would send for ``reply``."""
    slack = json.dumps([m.payload() for m in reply_messages(reply)])
    discord = json.dumps([[m.content, [e.to_dict() for e in m.embeds]] for m in render_reply(reply)])
    return slack, discord


@pytest.mark.parametrize("question, location, url", [
    ("What is the team dinner limit per person?", "policies/team-expenses.md",
     BASE + "policies/team-expenses.md"),  # the collection's base URL + the relative path
    ("How do I install the WireGuard VPN client?", "network/vpn setup.md", WIKI),  # its front matter's url
    ("Where can staff park for free after 18:00?", "old/parking.md", None),  # no URL known: the relative path
    ("When do fire drills happen?", "fire-drill.md", None),  # stored before: its file name
])
async def test_sources_show_a_url_or_a_relative_path_never_the_servers(core, tmp_path, question, location, url):
    reply = await _ask(core, question)
    source = reply.sources[0]
    assert (source.location, source.url) == (location, url)
    for posted in (*_posted(reply), repr(reply)):
        assert str(tmp_path) not in posted
        assert "/tmp" not in posted and "pytest-of" not in posted
    slack, discord = _posted(reply)
    if url:
        assert f"<{url}|" in slack and f"(<{url}>)" in discord
    else:
        assert location in slack and location in discord


async def test_the_interaction_log_keeps_what_readers_may_see(core, db):
    await _ask(core, "What is the team dinner limit per person?")
    with db.connect() as conn:
        (citations,) = conn.execute(select(t.interactions.c.citations)).scalars()
    assert citations[0]["display_path"] == "policies/team-expenses.md"
    assert citations[0]["url"] == BASE + "policies/team-expenses.md"


def test_source_url_base_must_be_collection_equals_url(tmp_path):
    with pytest.raises(ValueError, match="collection=https://base/"):
        make_settings(tmp_path, source_url_base=["https://git.example.com/handbook/"])
