"""Syncing Discord forum channels into the real embedded PostgreSQL, the REST API mocked at the wire
(``adapters/testing/discord_history.py``): one thread = one document linked by its jump URL,
archived threads too, channel permissions respected (an unreadable forum is never read, a private
one goes to a private collection granted to that channel), edits re-indexed, deleted messages and
threads out of search, and old unchanged threads served from the cache."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from adapters.testing.discord_gateway import TOKEN, FakeDiscord
from rag_engine.connectors.discord import DiscordConnector, DiscordSourceConfig, permissions_in
from rag_engine.source_admin import add_source
from rag_engine.sync import SourceSyncer

TOKEN_ENV = "RAGBOT_TEST_DISCORD_HISTORY_TOKEN"
VPN_Q = "How do I get the VPN profile on a new laptop?"
VPN_A = "Download the WireGuard profile from portal.example.com and import it into the client."


@pytest.fixture()
async def fake(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    fake = await FakeDiscord().start()
    try:
        yield fake
    finally:
        await fake.stop()


def _source(engine, fake: FakeDiscord, **config):
    return add_source(engine.store, "guild", "discord",
                      {"guild_id": fake.guild_id, "collection_prefix": "discord", "api_base": fake.base_url,
                       "token_env": TOKEN_ENV, **config}, "discord", every_s=None)


async def _sync(syncer: SourceSyncer, source_id: int):
    report = await asyncio.to_thread(syncer.sync, source_id)  # the fake answers on this loop
    assert report.status == "synced", report.error
    return report


def _docs(db) -> dict[str, tuple[str, str, str]]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT d.external_id, c.name, d.url, d.title FROM documents d "
                                 "JOIN collections c ON c.id = d.collection_id WHERE d.source_id IS NOT NULL")).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _texts(db) -> str:
    with db.connect() as conn:
        return "\n".join(conn.execute(text("SELECT text FROM chunks")).scalars())


async def test_forum_threads_are_synced_with_jump_urls_and_channel_permissions(engine, db, fake, tmp_path):
    h = fake.history
    help_forum, mods, hidden = h.add_forum("help"), h.add_forum("mods", private=True), h.add_forum(
        "secret", readable=False)
    vpn = h.start_thread(help_forum, "VPN on a new laptop", fake.alice, VPN_Q)
    h.reply(vpn, fake.manager, VPN_A)
    h.reply(vpn, fake.bot, "Here is what I found in the handbook.")
    old = h.start_thread(help_forum, "Parking", fake.alice, "The Elm Street garage is free after 18:00.")
    h.archive(old)
    mod = h.start_thread(mods, "Ban policy", fake.manager, "Three warnings, then a Kestrel-level ban.")
    h.start_thread(hidden, "Nope", fake.manager, "The vault code is 4711.")
    source = _source(engine, fake)
    report = await _sync(SourceSyncer(engine.store, engine.ingestor, tmp_path / "data"), source.id)

    assert (report.written, report.deleted) == (3, 0)
    docs = _docs(db)
    assert docs[f"public/{help_forum}/{vpn}"] == (
        "discord", f"https://discord.com/channels/{fake.guild_id}/{vpn}", "#help: VPN on a new laptop")
    assert docs[f"public/{help_forum}/{old}"][0] == "discord"  # archived threads are read too
    assert docs[f"private/{mods}/{mod}"][0] == f"discord-private-{mods}"
    chunks = _texts(db)
    assert VPN_A in chunks and "**Morgan**" in chunks  # the author's display name
    assert "what I found" not in chunks  # the bot's own answers are not indexed
    assert "4711" not in chunks and not fake.find("GET", f"/channels/{hidden}/threads/archived/public")
    private = engine.store.collections.get(f"discord-private-{mods}")
    assert private.visibility == "private"
    with db.connect() as conn:
        grants = conn.execute(text("SELECT platform, workspace_id, channel_id FROM collection_access "
                                   "WHERE collection_id = :c"), {"c": private.id}).all()
    assert [tuple(g) for g in grants] == [("discord", fake.guild_id, mods)]
    hit = engine.search("WireGuard profile new laptop", engine.scope_for(["discord"]), 1)[0]
    assert hit.url == f"https://discord.com/channels/{fake.guild_id}/{vpn}"


async def test_edits_and_deletions_follow(engine, db, fake, tmp_path):
    h = fake.history
    forum = h.add_forum("help")
    vpn = h.start_thread(forum, "VPN", fake.alice, VPN_Q)
    answer = h.reply(vpn, fake.manager, VPN_A)
    wrong = h.reply(vpn, fake.helper, "It is on the old Kestrel wiki.")
    gone = h.start_thread(forum, "Parking", fake.alice, "The Elm Street garage is free after 18:00.")
    source = _source(engine, fake)
    syncer = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data")
    await _sync(syncer, source.id)
    h.edit(vpn, answer, "Download the WireGuard profile from vpn.example.org (moved in May).")
    h.delete(vpn, wrong)
    h.delete_thread(gone)
    report = await _sync(syncer, source.id)
    chunks = _texts(db)
    assert "vpn.example.org" in chunks and "portal.example.com" not in chunks
    assert "Kestrel" not in chunks and "Elm Street" not in chunks
    assert report.deleted == 1 and sorted(_docs(db)) == [f"public/{forum}/{vpn}"]


async def test_old_unchanged_threads_are_not_read_again(engine, db, fake, tmp_path):
    h = fake.history
    forum = h.add_forum("help")
    vpn = h.start_thread(forum, "VPN", fake.alice, VPN_Q)
    source = _source(engine, fake)
    now = [time.time() + 30 * 86400]  # a month later: outside the rescan window

    def connector(row, cache):
        return DiscordConnector(DiscordSourceConfig.model_validate(row.config), cache, clock=lambda: now[0])

    syncer = SourceSyncer(engine.store, engine.ingestor, tmp_path / "data", connector_factory=connector)
    await _sync(syncer, source.id)
    reads = len(fake.find("GET", f"/channels/{vpn}/messages"))
    report = await _sync(syncer, source.id)
    assert len(fake.find("GET", f"/channels/{vpn}/messages")) == reads and report.unchanged == 1
    h.reply(vpn, fake.manager, VPN_A)  # a new message changes the listing: read again
    await _sync(syncer, source.id)
    assert len(fake.find("GET", f"/channels/{vpn}/messages")) == reads + 1 and VPN_A in _texts(db)


def test_permissions_follow_discords_order():
    guild, role, me = "1", "2", "3"
    view = 1 << 10
    channel = {"permission_overwrites": [{"id": guild, "allow": "0", "deny": str(view)},
                                         {"id": role, "allow": str(view), "deny": "0"},
                                         {"id": me, "allow": "0", "deny": str(view)}]}
    assert permissions_in(channel, view, guild, [], "") & view == 0  # @everyone denied
    assert permissions_in(channel, view, guild, [role], "") & view  # a role allows it back
    assert permissions_in(channel, view, guild, [role], me) & view == 0  # the member's own overwrite wins
    assert permissions_in(channel, 1 << 3, guild, [], me) & view  # administrators see everything
