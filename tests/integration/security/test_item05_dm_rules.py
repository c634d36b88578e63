"""Issue 15 item 5: DM rules have one scope per platform, ``(platform, *, dm)``, however they
are given (chat ``dm``, ``here`` in a DM, CLI ``--dm``), and DM look-ups match it; a rule
that could never match is refused with a clear message instead of stored (real database)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.configs import bot_config
from bot import access
from bot.core import BotCore
from bot.types import Actor, Location
from rag_engine import collections as cols
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings

GUILD = Location("discord", "G1", "100")
DISCORD_DM = Location("discord", "", "5551", is_dm=True)  # Discord DMs belong to no guild
SLACK_CHANNEL = Location("slack", "T1", "C1")
SLACK_DM = Location("slack", "T1", "D1", is_dm=True)
GLOBAL = Actor("discord", "1")
SLACK_GLOBAL = Actor("slack", "UADMIN")
MANAGER = Actor("discord", "42", is_platform_admin=True)


@pytest.fixture()
def ids(db):
    repo = Store(db).collections
    return cols.create(repo, "handbook").id, cols.create(repo, "hr", visibility="private").id


def _core(engine, tmp_path) -> BotCore:
    return BotCore(bot_config(make_settings(tmp_path, admin_user_ids=["discord:1", "slack:UADMIN"])), engine)


def _rules(db) -> set[tuple[str, str, str, str]]:
    ca = t.collection_access.c
    with db.connect() as conn:
        return set(conn.execute(select(ca.platform, ca.workspace_id, ca.channel_id, ca.access)).all())


async def test_a_dm_exclusion_given_in_a_guild_applies_to_discord_dms(engine, db, tmp_path, ids):
    """Before: stored as (discord, G1, dm), which a DM (workspace "") never matched: it failed open."""
    handbook, _ = ids
    assert handbook in access.collection_scope(Store(db), DISCORD_DM).ids()
    result = await _core(engine, tmp_path).admin(GLOBAL, GUILD, "collections exclude handbook dm")
    assert result.ok and "DMs" in result.message
    assert _rules(db) == {("discord", "*", "dm", "exclude")}
    assert handbook not in access.collection_scope(Store(db), DISCORD_DM).ids()
    assert handbook in access.collection_scope(Store(db), GUILD).ids()  # channels are untouched
    assert handbook in access.collection_scope(Store(db), SLACK_DM).ids()  # one scope per platform


async def test_here_in_a_dm_and_dm_anywhere_are_the_same_rule(engine, db, tmp_path, ids):
    _, hr = ids
    core = _core(engine, tmp_path)
    assert (await core.admin(SLACK_GLOBAL, SLACK_DM, "collections grant hr here")).ok
    assert (await core.admin(SLACK_GLOBAL, SLACK_CHANNEL, "collections grant hr dm")).ok
    assert _rules(db) == {("slack", "*", "dm", "grant")}
    assert hr in access.collection_scope(Store(db), SLACK_DM).ids()
    assert hr in access.collection_scope(Store(db), Location("slack", "T2", "D9", is_dm=True)).ids()
    assert hr not in access.collection_scope(Store(db), SLACK_CHANNEL).ids()
    assert hr not in access.collection_scope(Store(db), DISCORD_DM).ids()
    assert (await core.admin(SLACK_GLOBAL, SLACK_CHANNEL, "collections revoke hr dm")).message.startswith("Removed 1")
    assert _rules(db) == set()


async def test_dm_rules_need_a_global_admin(engine, db, tmp_path, ids):
    result = await _core(engine, tmp_path).admin(MANAGER, GUILD, "collections exclude handbook dm")
    assert not result.ok and "needs a global ragbot admin" in result.message
    assert _rules(db) == set()


async def test_a_channel_rule_given_in_a_discord_dm_is_refused(engine, db, tmp_path, ids):
    """A Discord DM names no guild: a channel rule from there could never match."""
    core = _core(engine, tmp_path)
    for target in ("*", "987654321"):
        result = await core.admin(GLOBAL, DISCORD_DM, f"collections grant handbook {target}")
        assert not result.ok and "belongs to no server" in result.message
    assert _rules(db) == set()


@pytest.mark.parametrize("keys, problem", [
    (("slack", "T1", "dm"), "name no workspace"),  # a DM rule bound to a workspace
    (("discord", "G1", "dm"), "name no workspace"),
    (("slak", "*", "C1"), "unknown platform"),
    (("discord", "", "100"), "needs a workspace"),
])
def test_rules_that_can_never_match_are_refused(db, ids, keys, problem):
    with pytest.raises(ValueError, match=problem):
        access.set_access(Store(db), ids[1], *keys, "grant")
    assert _rules(db) == set()


def test_a_dm_rule_for_every_platform_is_allowed_and_matches_every_platform(db, ids):
    """``-p '*' --dm`` is a real scope ("every DM"), not an ambiguous one: it is kept."""
    handbook, _ = ids
    access.set_access(Store(db), handbook, "*", "*", "dm", "exclude")
    assert handbook not in access.collection_scope(Store(db), DISCORD_DM).ids()
    assert handbook not in access.collection_scope(Store(db), SLACK_DM).ids()
    assert handbook in access.collection_scope(Store(db), SLACK_CHANNEL).ids()


def test_a_rule_stored_before_the_fix_can_still_be_revoked(db, ids):
    _, hr = ids
    with db.begin() as conn:
        conn.execute(t.collection_access.insert().values(collection_id=hr, platform="slack", workspace_id="T1",
                                                         channel_id="dm", access="grant"))
    assert Store(db).access_rules.revoke(hr, "slack", "T1", "dm") == 1


def test_cli_dm_rules(db, ids, scratch_dir, monkeypatch):
    from app.cli import app

    monkeypatch.setenv("RAGBOT_DATA_DIR", str(scratch_dir))
    monkeypatch.delenv("RAGBOT_DATABASE_URL", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["collections", *args])
        assert result.exit_code == code, result.output
        return result.output

    assert "discord/*/dm" in run("exclude", "handbook", "-p", "discord", "--dm")
    assert "name no workspace" in run("grant", "hr", "-p", "discord", "-w", "G1", "--dm", code=1)
    assert "name no workspace" in run("grant", "hr", "-p", "slack", "-w", "T1", "-c", "dm", code=1)
    assert "unknown platform" in run("grant", "hr", "-p", "teams", "-c", "C1", code=1)
    assert _rules(db) == {("discord", "*", "dm", "exclude")}
    assert ids[0] not in access.collection_scope(Store(db), DISCORD_DM).ids()
