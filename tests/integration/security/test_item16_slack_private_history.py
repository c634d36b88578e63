"""Issue 18 (Slack history sync): a thread synced from a private Slack channel is answerable in that
channel and nowhere else — not in a public channel of the same workspace, not in the asker's DM
with the bot, not in another private channel, not to a Slack Connect guest elsewhere, and an
operator's wildcard grant of the public collection does not widen it. The sync runs against the
Slack wire double; the questions go as signed requests into the real Bolt app, core and database."""

from __future__ import annotations

import asyncio

import pytest

from rag_engine.source_admin import add_source
from rag_engine.sync import SourceSyncer
from tests.e2e.test_slack_app import section_texts, slack_for

TOKEN_ENV = "RAGBOT_TEST_SLACK_HISTORY_TOKEN"
SECRET = "The Nightingale retention bonus for L7 engineers is 212,000 dollars, paid over two years."
QUESTION = "How much is the Nightingale retention bonus for L7 engineers?"


async def _ask(slack, channel: str, **fields: str) -> str:
    before = len(slack.shown())
    await slack.send.command("/ask", QUESTION, user="U1", channel=channel, **fields)
    await slack.api.wait_for(lambda api: slack.shown()[before:], what=f"the /ask reply in {channel}")
    return "\n".join(section_texts(payload) for payload in slack.shown()[before:])


@pytest.fixture()
async def synced(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "xoxb-history-token")
    async with slack_for(engine, tmp_path) as slack:
        history = slack.api.history
        history.add_channel("CPUB", "general")
        history.add_channel("CPRIV", "people-team", private=True)
        history.add_channel("COTHER", "leadership", private=True)
        root = history.post("CPRIV", "What is the retention bonus for L7?", user="U2")
        history.post("CPRIV", SECRET, user="U3", thread_ts=root)
        history.post("CPUB", "The office coffee machine is descaled every Monday.", user="U2")
        source = add_source(engine.store, "workspace", "slack",
                            {"collection_prefix": "slack", "api_url": slack.api.api_url, "token_env": TOKEN_ENV},
                            "slack", every_s=None)
        report = await asyncio.to_thread(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data").sync,
                                         source.id)
        assert report.status == "synced" and report.written == 2, report
        yield slack


async def test_a_private_channel_thread_is_answered_only_in_that_channel(synced):
    assert "212,000" in await _ask(synced, "CPRIV")  # the control: it is there, and found
    assert "212,000" not in await _ask(synced, "CPUB")
    assert "212,000" not in await _ask(synced, "COTHER")
    assert "212,000" not in await _ask(synced, "D1")
    # a Slack Connect guest from another workspace, asking in the public channel
    assert "212,000" not in await _ask(synced, "CPUB", user_team="T0ELSEWHERE")


async def test_a_public_wildcard_grant_does_not_open_the_private_channel_collection(synced, engine):
    """An operator's ``grant <public collection> *`` is about that collection: it never widens another."""
    from bot import access

    (public,) = engine.collection_ids(["slack"])
    access.set_access(engine.store, public, "slack", "*", "*", "grant")
    assert "212,000" not in await _ask(synced, "CPUB")
    assert "212,000" in await _ask(synced, "CPRIV")

