"""Issue 15 item 1: the deployment is bound to its tenants (RAGBOT_DISCORD_GUILD_IDS /
RAGBOT_SLACK_TEAM_IDS) and admin rights are scoped: Manage Server makes you an admin of
that server's own channels and public collections only; everything that acts on the whole
deployment needs RAGBOT_ADMIN_USER_IDS / RAGBOT_ADMIN_ROLE_IDS. Real database, real
BotCore; the Discord checks run through discord.py against the wire fake."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, connect, drain
from app.configs import bot_config, discord_config, slack_config
from bot.core import BotCore
from bot.permissions import AdminScope, can_run
from bot.tenants import NOT_ENABLED, tenant_allowed, warn_if_unbound
from bot.types import Actor, AskRequest, Location
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings

ALLOWED = Location("discord", "G1", "100")
UNKNOWN = Location("discord", "G666", "100")  # the attacker's own server, the bot invited there
MANAGER = Actor("discord", "42", "manage-server user", is_platform_admin=True)
GLOBAL = Actor("discord", "1", "owner")
HR_TEXT = "The confidential salary band for level L7 engineers is 212,000 dollars."

# (command, may a Manage-Server user of an allowed guild run it?)
COMMANDS = [
    ("status", True),
    ("collections list", True),
    ("collections grant handbook here", True),
    ("collections exclude handbook 200", True),
    ("collections revoke handbook here", True),
    ("collections grant handbook *", True),  # every channel of this server only
    ("collections grant hr here", False),  # private content belongs to the deployment's owners
    ("collections exclude hr here", False),
    ("collections grant handbook dm", False),  # DM rules cover every DM on the platform
    ("collections create secret --private", False),
    ("ingest {docs} --collection handbook", False),
    ("retrain", False),
    ("rollback", False),
    ("feedback pending", False),
]
WHO = {"manage-server in an allowed guild": (MANAGER, ALLOWED),
       "manage-server in an unknown guild": (MANAGER, UNKNOWN),
       "global admin": (GLOBAL, ALLOWED)}


@pytest.fixture()
def docs(engine, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "office.md").write_text("# Office\n\nThe office opens at 8:00 on weekdays.\n")
    engine.ingest([folder], "handbook")
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "bands.md").write_text(f"# Salary bands\n\n{HR_TEXT}\n")
    engine.ingest([tmp_path / "hr"], "hr", visibility="private")
    return folder


def _core(engine, tmp_path, **overrides) -> BotCore:
    return BotCore(bot_config(make_settings(tmp_path, discord_guild_ids=["G1"], admin_user_ids=["discord:1"],
                                 ingest_roots=[str(tmp_path)], **overrides)), engine)


def _state(db) -> dict[str, list]:
    with db.connect() as conn:
        return {table.name: sorted(map(tuple, conn.execute(select(table.c[cols[0]], *[table.c[c] for c in cols[1:]]))
                                       .all()))
                for table, cols in ((t.collections, ("name", "visibility")),
                                    (t.collection_access, ("platform", "workspace_id", "channel_id", "access")),
                                    (t.jobs, ("kind", "status")), (t.documents, ("collection_id", "source_uri")))}


@pytest.mark.parametrize("who", list(WHO))
@pytest.mark.parametrize("command, workspace_admin_may", COMMANDS, ids=[c for c, _ in COMMANDS])
async def test_each_admin_command_by_scope(engine, db, tmp_path, docs, who, command, workspace_admin_may):
    actor, where = WHO[who]
    core = _core(engine, tmp_path)
    before = _state(db)
    result = await core.admin(actor, where, command.format(docs=docs))

    if who == "manage-server in an unknown guild":
        expected = False
        assert result.message == NOT_ENABLED
    elif who == "global admin":
        expected = command != "rollback"  # there is no adapter to roll back to: an honest refusal
    else:
        expected = workspace_admin_may
        if not expected:
            assert "needs a global ragbot admin" in result.message, result.message
    assert result.ok is expected, result.message
    if not expected:
        assert _state(db) == before  # a refusal changes nothing
    (row,) = Store(db).audit.recent(10)
    assert (row.actor, row.action, row.ok) == (actor.user_key, command.split()[0], expected)


async def test_a_global_admin_in_an_unknown_guild_is_told_it_is_not_enabled(engine, db, tmp_path, docs):
    core = _core(engine, tmp_path)
    for command in ("status", "collections grant hr here", "help", "not a command"):
        result = await core.admin(GLOBAL, UNKNOWN, command)
        assert (result.ok, result.message) == (False, NOT_ENABLED)
    assert [a.ok for a in Store(db).audit.recent(10)] == [False, False, False]  # an unparsable line is not audited
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.collection_access)).scalar_one() == 0


async def test_an_unknown_guild_is_answered_only_that_the_bot_is_not_enabled(engine, db, tmp_path, docs):
    core = _core(engine, tmp_path)
    granted = await core.admin(GLOBAL, ALLOWED, "collections grant hr here")
    assert granted.ok
    answered = await core.ask(AskRequest(Actor("discord", "7"), ALLOWED, "What is the salary band for L7?"))
    assert "212,000" in answered.text  # the control: where hr is granted, it is found
    reply = await core.ask(AskRequest(MANAGER, Location("discord", "G666", "100"), "What is the salary band for L7?"))
    assert (reply.kind, reply.text) == ("refused", NOT_ENABLED)
    vote = await core.vote(MANAGER, answered.interaction_id, 1, location=UNKNOWN)
    fix = await core.correct(MANAGER, answered.interaction_id, "It is 999 [1]", location=UNKNOWN)
    assert (vote.ok, vote.message, fix.ok, fix.message) == (False, NOT_ENABLED, False, NOT_ENABLED)
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.interactions)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(t.feedback)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(t.corrections)).scalar_one() == 0


@pytest.mark.parametrize("where, settings, served", [
    (ALLOWED, {"discord_guild_ids": ["G1"]}, True),
    (UNKNOWN, {"discord_guild_ids": ["G1"]}, False),
    (UNKNOWN, {}, True),  # an empty list binds nothing (and start-up warns)
    (Location("discord", "", "55", is_dm=True), {"discord_guild_ids": ["G1"]}, True),  # a DM is in no guild
    (Location("slack", "T1", "D1", is_dm=True), {"slack_team_ids": ["T1"]}, True),
    (Location("slack", "T9", "D1", is_dm=True), {"slack_team_ids": ["T1"]}, False),  # Slack DMs carry a team
    (Location("slack", "T9", "C1"), {"discord_guild_ids": ["G1"]}, True),  # each platform has its own list
    (Location("slack", "T9", "C1"), {"slack_team_ids": " T1 , T2 "}, False),  # the env var form
])
def test_tenant_allowed(tmp_path, where, settings, served):
    assert tenant_allowed(where, bot_config(make_settings(tmp_path, **settings))) is served


def test_an_unbound_platform_is_warned_about(tmp_path, caplog):
    assert warn_if_unbound(bot_config(make_settings(tmp_path)), "discord")
    assert "RAGBOT_DISCORD_GUILD_IDS" in caplog.text and caplog.records[-1].levelno == logging.WARNING
    caplog.clear()
    assert not warn_if_unbound(bot_config(make_settings(tmp_path, slack_team_ids=["T1"])), "slack")
    assert caplog.text == ""


@pytest.mark.parametrize("action, kwargs, workspace_may", [
    ("status", {}, True),
    ("collections list", {}, True),
    ("collections grant", {"workspace_id": "G1"}, True),
    ("collections grant", {"workspace_id": "G2"}, False),  # another server's channels
    ("collections grant", {"workspace_id": "*"}, False),
    ("collections exclude", {"workspace_id": "G1", "private": True}, False),
    ("collections revoke", {"workspace_id": "G1", "dm": True}, False),
    ("activate", {}, False),
    ("collections delete", {}, False),
    ("feedback", {}, False),
    ("something new", {}, False),  # an action this module does not know needs a global admin
])
def test_can_run(action, kwargs, workspace_may):
    assert can_run(AdminScope("workspace", "platform admin", "G1"), action, **kwargs) is workspace_may
    assert can_run(AdminScope("global", "user id"), action, **kwargs)
    assert not can_run(None, action, **kwargs)


def test_the_slack_adapter_warns_at_start_up_when_unbound(engine, tmp_path, caplog):
    from adapters.slack import build_app

    settings = make_settings(tmp_path, slack_bot_token="xoxb-test-token", slack_signing_secret="s3cr3t")
    build_app(BotCore(bot_config(settings), engine), slack_config(settings))
    assert "RAGBOT_SLACK_TEAM_IDS" in caplog.text


# -- the Discord adapter: leaving unlisted servers ------------------------------------------------------

@pytest.fixture()
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()


async def _client(fake, engine, scratch_dir, **overrides) -> RagbotClient:
    settings = make_settings(scratch_dir, discord_api_base=f"http://127.0.0.1:{fake.port}", **overrides)
    client = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    await connect(client, fake)
    return client


def _left(fake) -> list[str]:
    return [c.path.rsplit("/", 1)[-1] for c in fake.find("DELETE", r"/users/@me/guilds/\d+")]


async def test_the_bot_leaves_an_unlisted_server_when_invited_and_at_start_up(fake, engine, db, scratch_dir,
                                                                               caplog):
    client = await _client(fake, engine, scratch_dir, discord_guild_ids=["1234"], discord_leave_unlisted_guilds=True)
    try:
        await client.on_ready()  # at start-up: every unlisted server it is in
        joined = {k: v for k, v in fake.guild_create().items() if k != "unavailable"}
        client._connection.parse_guild_create(joined)  # invited to a server: GUILD_CREATE → on_guild_join
        await drain()
    finally:
        await client.close()
    assert _left(fake) == [fake.guild_id, fake.guild_id]
    assert "not bound" not in caplog.text and "left server" in caplog.text  # bound: no start-up warning


async def test_an_unbound_discord_bot_warns_at_start_up(fake, engine, db, scratch_dir, caplog):
    client = await _client(fake, engine, scratch_dir)
    await client.close()
    assert "Discord is not bound" in caplog.text


async def test_a_listed_server_is_not_left_and_an_unlisted_one_is_left_only_when_configured(fake, engine, db,
                                                                                         scratch_dir, caplog):
    listed = await _client(fake, engine, scratch_dir, discord_guild_ids=[fake.guild_id],
                           discord_leave_unlisted_guilds=True)
    staying = await _client(fake, engine, scratch_dir, discord_guild_ids=["1234"])
    try:
        await listed.on_ready()
        await staying.on_ready()
    finally:
        await listed.close()
        await staying.close()
    assert _left(fake) == []
    assert "does not list" in caplog.text  # the operator hears about the unlisted server it stays in
