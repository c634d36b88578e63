"""Issue 15 item 15: a Slack conversation with more than the asker and the bot (a DM between
two people, a group DM) is a channel of its own, never the asker's private DM, so content
granted for DMs is not posted where someone else reads it. Signed requests into the real
Bolt app, the real core and database, Slack's Web API mocked at the wire."""

from __future__ import annotations

import pytest

from adapters.slack.identity import event_location
from adapters.testing.slack_server import TEAM, SlackSender
from bot import access
from bot.types import Location
from rag_engine.store import Store
from tests.e2e.test_slack_app import section_texts, slack_for, write_docs

HR = "# Salary bands\n\nThe confidential salary band for level L7 engineers is 212,000 to 248,000 dollars.\n"
QUESTION = "What is the salary band for L7 engineers?"


@pytest.fixture()
def dm_granted(engine, tmp_path):
    (tmp_path / "private").mkdir()
    engine.ingest([write_docs(tmp_path / "private", {"bands.md": HR})], "hr", visibility="private")
    (hr,) = engine.collection_ids(["hr"])
    access.set_access(Store(engine.db), hr, "slack", "*", "dm", "grant")  # hr may be read in one's DM with the bot
    return engine


async def _ask(slack, *, user: str, channel: str) -> str:
    before = len(slack.shown())
    await slack.send.command("/ask", QUESTION, user=user, channel=channel)
    await slack.api.wait_for(lambda api: slack.shown()[before:], what="the /ask reply")
    return "\n".join(section_texts(payload) for payload in slack.shown()[before:])


async def test_a_slash_command_in_a_dm_between_two_people_is_not_a_private_dm(dm_granted, tmp_path):
    async with slack_for(dm_granted, tmp_path) as slack:
        slack.api.conversations["D1"] = {"id": "D1", "is_im": True, "user": "U1"}  # the bot's own IM with U1
        slack.api.not_member["DPAIR"] = "channel_not_found"
        own = await _ask(slack, user="U1", channel="D1")
        pair = await _ask(slack, user="U1", channel="DPAIR")  # U1 and U2's DM: the bot is not in it
        someone_else = await _ask(slack, user="U2", channel="D1")  # not the IM of the one asking
        again = await _ask(slack, user="U1", channel="D1")
        looked_up = [c.payload["channel"] for c in slack.api.calls_to("conversations.info")]
    assert "212,000" in own and "212,000" in again  # the control: the DM grant works in the bot's IM
    assert "212,000" not in pair
    assert "212,000" not in someone_else
    assert looked_up == ["D1", "DPAIR"]  # the bot's IM is looked up once; an error is not cached


async def test_a_group_dm_is_a_channel_of_its_own(dm_granted, tmp_path):
    async with slack_for(dm_granted, tmp_path) as slack:
        mention = {**SlackSender.mention(QUESTION, ts="300.1", channel="GMPIM1"), "channel_type": "mpim"}
        await slack.send.event(mention)
        await slack.send.event({**SlackSender.direct_message(QUESTION, ts="300.2", channel="GMPIM1"),
                                "channel_type": "mpim"})  # no mention in a group DM: not for the bot
        await slack.send.event(SlackSender.direct_message(QUESTION, ts="300.3", channel="D1"))
        await slack.api.wait_for(lambda api: len(api.calls_to("reactions.remove")) == 2, what="both answers")
        in_group = [section_texts(c.payload) for c in slack.api.calls_to("chat.postEphemeral")
                    + slack.api.calls_to("chat.postMessage") if c.payload.get("channel") == "GMPIM1"]
        in_dm = [section_texts(c.payload) for c in slack.api.calls_to("chat.postMessage")
                 if c.payload.get("channel") == "D1"]
    assert len(in_group) == 1 and "212,000" not in in_group[0]
    assert len(in_dm) == 1 and "212,000" in in_dm[0]


@pytest.mark.parametrize("event, is_dm", [
    ({"channel": "D1", "channel_type": "im"}, True),
    ({"channel": "D1"}, True),  # no channel_type (app_mention): a D… id is the bot's IM
    ({"channel": "DX1", "channel_type": "mpim"}, False),
    ({"channel": "GMPIM1", "channel_type": "mpim"}, False),
    ({"channel": "C1", "channel_type": "channel"}, False),
])
def test_event_locations(event, is_dm):
    assert event_location({"team_id": TEAM}, event) == Location("slack", TEAM, event["channel"], is_dm=is_dm)
