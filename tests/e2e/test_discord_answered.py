"""Answered threads on Discord end to end: MESSAGE_REACTION_ADD / _REMOVE through discord.py's own
parser and dispatch, the message and its question fetched from the local Discord fake, the real
bot core and database: an asker's ✅ on a reply stores it (jump URL as its link), a stranger's
does nothing, taking it back withdraws it, and a thread in a channel ``@everyone`` cannot see
goes to that channel's own private collection."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, connect, drain, snowflake
from app.configs import bot_config, discord_config
from bot.core import BotCore
from rag_engine.source_admin import add_source
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings

QUESTION = "How do I reset the staging database for the billing service?"
ANSWER = "Run make reset-staging from the billing repo; it reloads Tuesday's snapshot."
VIEW_CHANNEL = 1 << 10


@pytest.fixture()
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@pytest.fixture()
async def client(fake, engine, scratch_dir):
    settings = make_settings(scratch_dir, discord_api_base=f"http://127.0.0.1:{fake.port}")
    bot = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    await connect(bot, fake)
    yield bot
    await bot.close()
    bot.core.close()


async def react(client: RagbotClient, payload: dict, *, removed: bool = False) -> None:
    state = client._connection
    (state.parse_message_reaction_remove if removed else state.parse_message_reaction_add)(payload)
    await drain()


def counts(db) -> tuple[int, int]:
    with db.connect() as conn:
        return (conn.execute(select(func.count()).select_from(t.documents)).scalar_one(),
                conn.execute(select(func.count()).select_from(t.curated_examples)).scalar_one())


async def test_the_askers_check_on_a_reply_stores_it_and_taking_it_back_withdraws(fake, client, db):
    question = fake.message_create(fake.alice, QUESTION)
    answer = fake.message_create(fake.helper, ANSWER, reply_to=question)

    await react(client, fake.reaction(fake.helper, answer))  # the answer's author: neither asker nor admin
    await react(client, fake.reaction(fake.alice, answer, "👀"))  # not the accept reaction: not even fetched
    assert counts(db) == (0, 0)
    assert len(fake.find("GET", rf"/channels/{fake.channel_id}/messages/{answer['id']}")) == 1

    await react(client, fake.reaction(fake.alice, answer))
    assert counts(db) == (1, 1)
    with db.connect() as conn:
        doc = conn.execute(select(t.documents)).one()
    assert doc.metadata["url"] == f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{answer['id']}"
    assert doc.title == QUESTION and doc.metadata["relative_path"] == "Discord thread in #general"

    await react(client, fake.reaction(fake.manager, answer))  # Manage Server: an admin of this server
    assert counts(db) == (1, 1)
    await react(client, fake.reaction(fake.alice, answer, removed=True), removed=True)
    assert counts(db) == (0, 0)
    assert [a.action for a in Store(db).audit.recent(5)] == ["withdraw answer", "accept answer", "accept answer"]


async def test_a_thread_in_a_hidden_channel_goes_to_that_channels_private_collection(fake, client, db):
    hidden = snowflake()
    client._connection.parse_channel_create({
        **fake.text_channel(), "id": hidden, "name": "secret-project",
        "permission_overwrites": [{"id": fake.guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}]})
    question = fake.message_create(fake.alice, "What is the lab door code?", channel_id=hidden)
    thread = {"id": question["id"], "type": 11, "guild_id": fake.guild_id, "parent_id": hidden, "name": "door code",
              "owner_id": fake.alice.id, "last_message_id": None, "rate_limit_per_user": 0, "message_count": 1,
              "member_count": 2, "flags": 0, "total_message_sent": 1,
              "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                  "archive_timestamp": "2026-01-01T00:00:00+00:00"}}
    fake.threads[thread["id"]] = thread
    client._connection.parse_thread_create(fake.thread_create(thread))
    answer = fake.message_create(fake.manager, "The lab door code is 4471.", channel_id=thread["id"])

    await react(client, fake.reaction(fake.alice, answer))
    name = f"answered-threads-discord-{hidden}"
    (coll,) = Store(db).collections.resolve([name])
    assert coll.visibility == "private" and not coll.allow_training
    rules = [(r.platform, r.workspace_id, r.channel_id, r.access) for r in Store(db).access_rules.list()]
    assert rules == [("discord", fake.guild_id, hidden, "grant")]
    assert counts(db) == (1, 0)


# -- /ragbot-admin sources ------------------------------------------------------------------------------------

async def test_sources_slash_command_lists_and_queues_a_sync_for_global_admins_only(fake, engine, scratch_dir, db,
                                                                                     tmp_path):
    add_source(Store(db), "handbook", "git", {"repo": str(tmp_path / "handbook")}, "docs", every_s=None)
    settings = make_settings(scratch_dir, discord_api_base=f"http://127.0.0.1:{fake.port}",
                             admin_role_ids=[fake.helper_role])
    bot = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    await connect(bot, fake)
    try:
        def command(person, **options) -> dict:
            opts = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
            return fake.command_interaction(person, "ragbot-admin", [{"name": "sources", "type": 1,
                                                                       "options": opts}])

        sent = [command(fake.helper, action="list"), command(fake.manager, action="sync", name="handbook"),
                command(fake.helper, action="sync", name="handbook")]
        for payload in sent:
            bot._connection.parse_interaction_create(payload)
            await drain()
        listed, refused, queued = [" ".join(c.body["content"] for c in fake.find(
            "POST", rf"/webhooks/{fake.application_id}/{p['token']}")) for p in sent]
        assert "1 sources." in listed and "handbook (git) -> docs; synced on request" in listed
        assert "needs a global ragbot admin" in refused  # Manage Server administers this server, not sources
        assert "Queued a sync of handbook" in queued
        with db.connect() as conn:
            assert conn.execute(select(t.jobs.c.kind)).scalars().all() == ["source_sync"]
    finally:
        await bot.close()
        bot.core.close()
