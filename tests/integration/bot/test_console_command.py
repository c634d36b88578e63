"""`/ragbot-admin console`: only global admins get a link; the link opens the console once; the audit
trail records the request but never the link itself."""

from __future__ import annotations

from pydantic import SecretStr
from starlette.testclient import TestClient

from bot import console_token
from bot.types import Actor, Location
from rag_engine.store import Store
from tests.support.console import SECRET, console_app, console_settings
from tests.support.security import core_for

SLACK = Location("slack", "T1", "C1")
DISCORD = Location("discord", "G1", "100")


def _core(engine, tmp_path, **overrides):
    return core_for(engine, tmp_path, console_secret=SecretStr(SECRET), console_url="https://console.example",
                    discord_guild_ids=["G1"], slack_team_ids=["T1"], **overrides)


async def test_a_global_admin_gets_a_single_use_link_that_opens_the_console(engine, db, scratch_dir, tmp_path):
    core = _core(engine, tmp_path)
    result = await core.admin(Actor("slack", "UADMIN", "Ada"), SLACK, "console")
    assert result.ok and "single use" in result.message
    (url,) = result.detail_lines
    assert url.startswith("https://console.example/login?token=")
    token = url.split("token=", 1)[1]
    assert console_token.verify(SECRET, token).user_key == "slack:UADMIN"
    (row,) = Store(db).audit.recent(10)
    assert (row.actor, row.action, row.ok) == ("slack:UADMIN", "console", True)
    assert token not in row.result and token not in str(row.args)
    client = TestClient(console_app(db, console_settings(scratch_dir)), follow_redirects=False)
    assert client.post("/login", data={"token": token}).status_code == 303
    assert client.get("/corrections").status_code == 200
    assert client.post("/login", data={"token": token}).status_code == 401  # single use


async def test_non_admins_and_workspace_admins_get_no_link(engine, db, tmp_path):
    core = _core(engine, tmp_path)
    for actor, where in [(Actor("slack", "U1"), SLACK),
                         (Actor("discord", "9", is_platform_admin=True), DISCORD),  # Manage Server: workspace only
                         (Actor("slack", "UADMIN", is_external=True), SLACK)]:  # a Slack Connect outsider
        result = await core.admin(actor, where, "console")
        assert not result.ok and not result.detail_lines
        assert "token=" not in result.message and "console.example" not in result.message
    assert [r.ok for r in Store(db).audit.recent(10)] == [False, False, False]


async def test_without_a_key_the_command_says_how_to_set_it_up(engine, db, tmp_path):
    core = core_for(engine, tmp_path)
    result = await core.admin(Actor("slack", "UADMIN"), SLACK, "console")
    assert not result.ok and "RAGBOT_CONSOLE_SECRET" in result.message and not result.detail_lines
