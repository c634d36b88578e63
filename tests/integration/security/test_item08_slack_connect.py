"""Issue 15 item 8: members of another organisation in a Slack Connect channel are outsiders.
They read only collections granted by a rule naming exactly that shared channel (never
public ones, never wildcard grants) and are never admins. Signed requests into the real
Bolt app, the real core and database, Slack's Web API mocked at the wire."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.slack.identity import command_location, home_teams, is_outsider
from adapters.testing.slack_server import TEAM, SlackSender
from app.configs import bot_config
from bot import access
from bot.messages import ADMIN_ONLY
from bot.types import Location
from rag_engine import collections as cols
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings
from tests.e2e.test_slack_app import rows, section_texts, slack_for, write_docs

SHARED = "CSHARED"
GUEST_TEAM = "TGUEST"
HANDBOOK = "# Office hours\n\nThe front desk of the office is staffed from 8:00 to 17:00 on weekdays.\n"
HR = "# Salary bands\n\nThe confidential salary band for level L7 engineers is 212,000 to 248,000 dollars.\n"


def test_outsiders_read_only_exact_channel_grants(db):
    repo = Store(db).collections
    handbook, hr, legal, ops = (cols.create(repo, n, visibility=v).id for n, v in
                                (("handbook", "public"), ("hr", "private"), ("legal", "private"),
                                 ("ops", "private")))
    access.set_access(Store(db), hr, "slack", "T1", SHARED, "grant")  # exactly this shared channel
    access.set_access(Store(db), legal, "slack", "T1", "*", "grant")  # the whole workspace
    access.set_access(Store(db), ops, "*", "*", SHARED, "grant")  # a wildcard platform and workspace
    here = Location("slack", "T1", SHARED)
    assert access.collection_scope(Store(db), here).ids() == [handbook, hr, legal, ops]
    assert access.collection_scope(Store(db), here, outsider=True).ids() == [hr]
    assert access.collection_scope(Store(db), Location("slack", "T1", "COTHER"), outsider=True).ids() == []
    access.set_access(Store(db), hr, "slack", "T1", SHARED, "exclude")
    assert access.collection_scope(Store(db), here, outsider=True).ids() == []
    # a DM rule never names a workspace, so an outsider's DM reads nothing either
    access.set_access(Store(db), handbook, "slack", "*", "dm", "grant")
    assert access.collection_scope(Store(db), Location("slack", "T1", "D1", is_dm=True), outsider=True).ids() == []


@pytest.mark.parametrize("claimed, served, outsider", [
    ((TEAM, TEAM), (), False),
    ((GUEST_TEAM, None), (), True),  # user_team names another organisation
    ((None, GUEST_TEAM), (), True),  # source_team / team_id does
    (("E0ORG", None), (), False),  # the installation's own Enterprise Grid org
    ((GUEST_TEAM, None), (GUEST_TEAM,), False),  # a workspace the deployment serves is not outside
    ((None, None), (), False),
])
def test_who_is_an_outsider(tmp_path, claimed, served, outsider):
    context = {"authorize_result": {"team_id": TEAM, "enterprise_id": "E0ORG"}}
    home = home_teams(context, bot_config(make_settings(tmp_path, slack_team_ids=list(served))))
    assert is_outsider(home, claimed) is outsider


def test_a_guests_slash_command_is_located_in_the_installations_workspace(tmp_path):
    context = {"authorize_result": {"team_id": TEAM}, "team_id": GUEST_TEAM}
    home = home_teams(context, bot_config(make_settings(tmp_path)))
    where = command_location({"team_id": GUEST_TEAM, "channel_id": SHARED, "channel_name": "shared"}, context, home)
    assert where == Location("slack", TEAM, SHARED)


@pytest.fixture()
def corpora(engine, tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "private").mkdir()
    engine.ingest([write_docs(tmp_path / "public", {"office.md": HANDBOOK})], "handbook")
    engine.ingest([write_docs(tmp_path / "private", {"bands.md": HR})], "hr", visibility="private")
    return engine


def _answers(slack, thread: str) -> list[str]:
    return [section_texts(c.payload) for c in slack.api.calls_to("chat.postMessage")
            if c.payload.get("thread_ts") == thread] + \
        [section_texts(c.payload) for c in slack.api.calls_to("chat.postEphemeral")
         if c.payload.get("thread_ts") == thread]


async def _mention(slack, text: str, ts: str, **teams: str) -> str:
    await slack.send.event({**SlackSender.mention(text, ts=ts, user=teams.pop("user", "U1"), channel=SHARED),
                            **teams})
    await slack.api.wait_for(lambda api: _answers(slack, ts) and api.calls_to("reactions.remove"),
                             what=f"the answer in thread {ts}")
    return "\n".join(_answers(slack, ts))


async def test_an_outsider_gets_no_public_content_and_only_the_channels_exact_grant(corpora, db, tmp_path):
    (hr,) = corpora.collection_ids(["hr"])
    access.set_access(Store(db), hr, "slack", TEAM, "*", "grant")  # the whole host workspace may read hr
    async with slack_for(corpora, tmp_path) as slack:
        insider = await _mention(slack, "When is the front desk staffed?", "100.1")
        guest = await _mention(slack, "When is the front desk staffed?", "100.2", user="UGUEST",
                               user_team=GUEST_TEAM, source_team=GUEST_TEAM)
        guest_hr = await _mention(slack, "What is the salary band for L7 engineers?", "100.3", user="UGUEST",
                                  user_team=GUEST_TEAM, source_team=GUEST_TEAM)
        access.set_access(Store(corpora.db), hr, "slack", TEAM, SHARED, "grant")  # now exactly this channel
        granted = await _mention(slack, "What is the salary band for L7 engineers?", "100.4", user="UGUEST",
                                 user_team=GUEST_TEAM)
    assert "8:00" in insider  # the control: a member of the host workspace reads the handbook here
    assert "8:00" not in guest and "Office hours" not in guest
    assert "212,000" not in guest_hr  # a workspace-wide grant is not for outsiders
    assert "212,000" in granted
    stored = {r.user_key: r.workspace_id for r in rows(db, t.interactions)}
    assert stored["slack:UGUEST"] == TEAM  # their location is the shared channel, host workspace


async def test_an_outsider_is_never_an_admin(corpora, db, tmp_path):
    users = {"UGUEST": {"is_owner": True}}  # an owner of their own workspace
    async with slack_for(corpora, tmp_path, users, admin_user_ids=["UGUEST"],
                         slack_workspace_admins_are_admins=True) as slack:
        for n, line in enumerate(("collections grant hr here", "retrain", "status")):
            await slack.send.command("/ragbot-admin", line, user="UGUEST", channel=SHARED, team_id=GUEST_TEAM,
                                     user_team=GUEST_TEAM)
            await slack.api.wait_for(lambda api, n=n: len(api.calls_to("response_url")) > n, what="the refusal")
        replies = [section_texts(c.payload) for c in slack.api.calls_to("response_url")]
        assert slack.api.calls_to("users.info") == []  # an outsider is not even looked up
    assert all(ADMIN_ONLY in r for r in replies), replies
    audit = rows(db, t.audit_log)
    assert [(a.actor, a.ok) for a in audit] == [("slack:UGUEST", False)] * 3
    with db.connect() as conn:
        assert conn.execute(select(t.collection_access)).all() == [] and conn.execute(select(t.jobs)).all() == []
