"""The Discord adapter end to end: discord.py's own models, dispatch, views and HTTP client,
against a local fake of Discord's REST API (tests/discord_fakes.py), the real bot core and
the real scratch database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, action_rows_custom_ids, connect, drain
from app.configs import bot_config, discord_config
from bot.core import BotCore
from bot.sanitize import ZWSP
from rag_engine.store import schema as t
from tests.conftest import make_settings

DOCS = {
    "expenses.md": "# Expenses\n\nExpense reports must be submitted within 30 days of purchase. Your manager "
                   "approves expense reports in the finance tool. Receipts over 25 euros must be attached.\n",
    "parking.md": "# Parking\n\nThe office garage has 40 parking spaces. Parking permits are issued by the "
                  "facilities team each January.\n",
    "cafeteria.md": "# Cafeteria\n\n@everyone the cafeteria menu changes every Monday morning. Ask "
                    "<@&123456789012345678> or @here about the cafeteria menu.\n",
}
QUESTION = "How fast must expense reports be submitted?"
FOLLOW_UP = "Is there a deadline for those?"  # alone it matches nothing; after QUESTION it is about expenses


@pytest.fixture()
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()


@pytest.fixture()
def docs_engine(engine, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    report = engine.ingest([folder], "default")
    assert not report.skipped
    return engine


@pytest.fixture()
def discord_settings(scratch_dir, fake):
    def build(**overrides):
        return make_settings(scratch_dir, discord_api_base=f"http://127.0.0.1:{fake.port}", **overrides)
    return build


@pytest.fixture()
async def start_client(fake, docs_engine, discord_settings):
    """A connected client on a fresh core (several per test simulate restarts)."""
    clients: list[RagbotClient] = []

    async def start(**overrides) -> RagbotClient:
        settings = discord_settings(**overrides)
        client = RagbotClient(BotCore(bot_config(settings), docs_engine), discord_config(settings))
        await connect(client, fake)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
        client.core.close()


def mention(fake: FakeDiscord, text: str, **kwargs) -> dict:
    return fake.message_create(kwargs.pop("author", fake.alice), f"<@{fake.bot.id}> {text}", **kwargs)


async def deliver(client: RagbotClient, payload: dict, kind: str = "message") -> None:
    """Feed a gateway event through the client's own parser, then let every handler finish."""
    parse = {"message": client._connection.parse_message_create,
             "interaction": client._connection.parse_interaction_create,
             "thread": client._connection.parse_thread_create}[kind]
    parse(payload)
    await drain()


def interactions(db) -> list:
    with db.connect() as conn:
        return conn.execute(select(t.interactions).order_by(t.interactions.c.id)).all()


def posted(fake: FakeDiscord, channel_id: str | None = None) -> list[dict]:
    return [c.body for c in fake.find("POST", fake.channel_messages_path(channel_id))]


# -- mentions ----------------------------------------------------------------------------------------

async def test_mention_is_answered_as_a_reply_with_sources_and_buttons(fake, start_client, db):
    client = await start_client()
    question = mention(fake, QUESTION)
    await deliver(client, question)

    (body,) = posted(fake)
    assert "30 days" in body["content"]
    assert body["message_reference"]["message_id"] == int(question["id"])
    (embed,) = body["embeds"]
    assert embed["title"] == "Sources" and "Expenses" in embed["description"]
    (row,) = interactions(db)
    assert row.question == QUESTION  # the mention itself is not part of the question
    assert (row.platform, row.workspace_id, row.channel_id) == ("discord", fake.guild_id, fake.channel_id)
    assert action_rows_custom_ids(body) == [f"ragbot:up:{row.id}", f"ragbot:down:{row.id}",
                                            f"ragbot:fix:{row.id}"]
    # the typing indicator was on while the bot worked
    typing = fake.find("POST", f"/channels/{fake.channel_id}/typing")
    assert typing and typing[0].at < fake.find("POST", fake.channel_messages_path())[0].at


async def test_messages_without_a_bot_mention_are_ignored(fake, start_client, db):
    client = await start_client()
    await deliver(client, fake.message_create(fake.alice, f"@everyone {QUESTION}"))
    await deliver(client, fake.message_create(fake.alice, f"<@{fake.alice.id}> {QUESTION}"))
    assert posted(fake) == [] and interactions(db) == []


async def test_mentioning_the_bots_role_counts_as_a_mention(fake, start_client, db):
    client = await start_client()
    await deliver(client, fake.message_create(fake.alice, f"<@&{fake.bot_role}> {QUESTION}"))
    assert "30 days" in posted(fake)[0]["content"]
    assert interactions(db)[0].question == QUESTION


async def test_direct_messages_are_answered_without_a_mention(fake, start_client, db):
    client = await start_client()
    await deliver(client, fake.message_create(fake.alice, QUESTION, dm=True))
    (body,) = posted(fake, fake.dm_channel_id)
    assert "30 days" in body["content"]
    (row,) = interactions(db)
    assert (row.workspace_id, row.channel_id) == ("", fake.dm_channel_id)


async def test_a_redelivered_message_is_answered_once(fake, start_client, db):
    client = await start_client()
    question = mention(fake, QUESTION)
    await deliver(client, question)
    await deliver(client, question)  # the gateway may replay an event after a resume
    assert len(posted(fake)) == 1 and len(interactions(db)) == 1


# -- conversations ---------------------------------------------------------------------------------------

async def test_follow_up_in_a_reply_chain_uses_the_earlier_turns(fake, start_client, db):
    client = await start_client()
    first = mention(fake, QUESTION)
    await deliver(client, first)
    answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)

    # the control: the same words asked on their own find nothing
    await deliver(client, mention(fake, FOLLOW_UP))
    # the follow-up: a reply to the bot's answer, which mentions it again
    await deliver(client, mention(fake, FOLLOW_UP, reply_to=answer))

    first_row, alone, follow = interactions(db)
    assert alone.status == "not_found"
    assert follow.status == "answered" and "Expenses" in posted(fake)[-1]["embeds"][0]["description"]
    assert follow.thread_id == first_row.thread_id == first["id"]
    assert alone.thread_id != first_row.thread_id


async def test_a_chain_keeps_its_id_after_a_restart(fake, start_client, db):
    """The walk back along replies doesn't depend on what the process remembers."""
    client = await start_client()
    first = mention(fake, QUESTION)
    await deliver(client, first)
    answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)
    second = mention(fake, FOLLOW_UP, reply_to=answer)
    await deliver(client, second)
    second_answer = [m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id][-1]
    await client.close()

    fresh = await start_client()
    # a reply to the second answer, whose own referenced message is only known to Discord
    third = mention(fake, "And who approves expense reports?", reply_to=second_answer)
    await deliver(fresh, third)
    rows = interactions(db)
    assert [r.thread_id for r in rows] == [first["id"]] * 3
    assert fake.find("GET", rf"/channels/{fake.channel_id}/messages/\d+")  # it asked Discord for the chain


async def test_thread_mode_answers_in_a_thread_and_follow_ups_there_use_history(fake, start_client, db):
    client = await start_client(discord_reply_in_thread=True)
    first = mention(fake, QUESTION)
    await deliver(client, first)

    (opened,) = fake.find("POST", rf"/channels/{fake.channel_id}/messages/{first['id']}/threads")
    assert opened.body["name"] == QUESTION
    thread_id = first["id"]  # a thread opened on a message has the message's id
    (answer,) = posted(fake, thread_id)
    assert "30 days" in answer["content"] and "message_reference" not in answer

    await deliver(client, fake.thread_create(fake.threads[thread_id]), kind="thread")
    await deliver(client, mention(fake, FOLLOW_UP, channel_id=thread_id))
    first_row, follow = interactions(db)
    assert follow.status == "answered"
    assert "Expenses" in posted(fake, thread_id)[-1]["embeds"][0]["description"]
    assert follow.thread_id == first_row.thread_id == thread_id
    # the thread is scoped and logged as its parent channel
    assert follow.channel_id == first_row.channel_id == fake.channel_id
    assert len(fake.find("POST", r"/channels/\d+/messages/\d+/threads")) == 1  # no thread in a thread

    # /ask inside the thread belongs to the same conversation
    ask = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3,
                                                         "value": "Who approves expense reports?"}],
                                   channel_id=thread_id)
    await deliver(client, ask, kind="interaction")
    asked = interactions(db)[-1]
    assert (asked.thread_id, asked.channel_id, asked.status) == (thread_id, fake.channel_id, "answered")


async def test_thread_mode_opens_no_thread_for_a_usage_hint(fake, start_client):
    client = await start_client(discord_reply_in_thread=True)
    await deliver(client, mention(fake, ""))
    assert not fake.find("POST", r"/channels/\d+/messages/\d+/threads")
    assert "/ask" in posted(fake)[0]["content"]


async def test_without_thread_permission_it_replies_instead(fake, start_client):
    fake.forbidden |= {("POST", r"/channels/\d+/messages/\d+/threads"), ("POST", r"/channels/\d+/typing")}
    client = await start_client(discord_reply_in_thread=True)
    question = mention(fake, QUESTION)
    await deliver(client, question)
    (body,) = posted(fake)
    assert "30 days" in body["content"] and body["message_reference"]["message_id"] == int(question["id"])


# -- /ask --------------------------------------------------------------------------------------------------

async def test_slash_ask_defers_then_answers_with_a_follow_up(fake, start_client, db):
    client = await start_client()
    payload = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3, "value": QUESTION}])
    await deliver(client, payload, kind="interaction")

    (callback,) = fake.find("POST", rf"/interactions/{payload['id']}/{payload['token']}/callback")
    assert callback.body["type"] == 5  # deferred "thinking…"
    (follow,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{payload['token']}")
    assert callback.at < follow.at
    assert "30 days" in follow.body["content"] and "Expenses" in follow.body["embeds"][0]["description"]
    (row,) = interactions(db)
    assert action_rows_custom_ids(follow.body)[0] == f"ragbot:up:{row.id}"
    assert row.thread_id == payload["id"]


async def test_replying_to_an_ask_answer_continues_that_conversation(fake, start_client, db):
    client = await start_client()
    payload = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3, "value": QUESTION}])
    await deliver(client, payload, kind="interaction")
    answer = [m for m in fake.messages.values() if m.get("interaction_metadata")][-1]
    await client.close()

    fresh = await start_client()  # the answer's conversation is read from Discord, not from memory
    await deliver(fresh, mention(fake, FOLLOW_UP, reply_to=answer))
    first, follow = interactions(db)
    assert follow.thread_id == first.thread_id == payload["id"]
    assert follow.status == "answered"


async def test_slash_ask_in_a_dm(fake, start_client, db):
    client = await start_client()
    payload = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3, "value": QUESTION}],
                                       dm=True)
    await deliver(client, payload, kind="interaction")
    (follow,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{payload['token']}")
    assert "30 days" in follow.body["content"]
    assert interactions(db)[0].workspace_id == ""


# -- feedback ---------------------------------------------------------------------------------------------

async def test_buttons_keep_working_after_a_restart_and_votes_are_idempotent(fake, start_client, db):
    old = await start_client()
    await deliver(old, mention(fake, QUESTION))
    answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)
    up = action_rows_custom_ids(answer)[0]
    await old.close()

    new = await start_client()  # a new process: nothing of the old client's views in memory
    for _ in range(2):
        await deliver(new, fake.component_interaction(fake.manager, answer, up), kind="interaction")
    with db.connect() as conn:
        votes = conn.execute(select(t.feedback.c.vote, t.feedback.c.user_key)).all()
    assert votes == [(1, f"discord:{fake.manager.id}")]

    callbacks = fake.find("POST", r"/interactions/\d+/[^/]+/callback")
    assert [c.body["type"] for c in callbacks] == [5, 5]
    assert all(c.body["data"]["flags"] & 64 for c in callbacks)  # only the voter sees the reply
    first, again = (c.body["content"] for c in fake.find("POST", rf"/webhooks/{fake.application_id}/[^/]+"))
    assert "Thanks" in first and "already voted" in again


async def test_a_down_vote_replaces_an_up_vote(fake, start_client, db):
    client = await start_client()
    await deliver(client, mention(fake, QUESTION))
    answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)
    up, down, _ = action_rows_custom_ids(answer)
    await deliver(client, fake.component_interaction(fake.alice, answer, up), kind="interaction")
    await deliver(client, fake.component_interaction(fake.alice, answer, down), kind="interaction")
    with db.connect() as conn:
        assert conn.execute(select(t.feedback.c.vote)).scalars().all() == [-1]


async def test_correction_form_is_stored(fake, start_client, db):
    client = await start_client()
    await deliver(client, mention(fake, QUESTION))
    answer = next(m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id)
    fix = action_rows_custom_ids(answer)[2]
    await deliver(client, fake.component_interaction(fake.alice, answer, fix), kind="interaction")

    (opened,) = fake.find("POST", r"/interactions/\d+/[^/]+/callback")
    assert opened.body["type"] == 9  # the modal
    modal = opened.body["data"]
    text_input = modal["components"][0]["component"]
    submit = fake.modal_submit(fake.alice, modal["custom_id"],
                               {text_input["custom_id"]: "Within 45 days since the 2025 policy change."},
                               message=answer)
    await deliver(client, submit, kind="interaction")
    with db.connect() as conn:
        (row,) = conn.execute(select(t.corrections)).all()
    assert row.text == "Within 45 days since the 2025 policy change."
    assert row.user_key == f"discord:{fake.alice.id}" and row.interaction_id == interactions(db)[0].id
    (note,) = fake.find("POST", rf"/webhooks/{fake.application_id}/{submit['token']}")
    assert "correction was saved" in note.body["content"] and note.body["flags"] & 64


# -- admin ----------------------------------------------------------------------------------------------------

def admin_command(fake: FakeDiscord, person, sub: str, **options) -> dict:
    opts = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
    return fake.command_interaction(person, "ragbot-admin", [{"name": sub, "type": 1, "options": opts}])


@pytest.mark.parametrize(("who", "allowed"), [("manager", True), ("helper", True), ("alice", False)])
async def test_admin_commands_need_manage_server_or_an_admin_role(fake, start_client, db, who, allowed):
    client = await start_client(admin_role_ids=[fake.helper_role])
    payload = admin_command(fake, getattr(fake, who), "status")
    await deliver(client, payload, kind="interaction")

    (callback,) = fake.find("POST", rf"/interactions/{payload['id']}/[^/]+/callback")
    assert callback.body["type"] == 5 and callback.body["data"]["flags"] & 64  # ephemeral from the start
    replies = [c.body for c in fake.find("POST", rf"/webhooks/{fake.application_id}/{payload['token']}")]
    assert replies and all(r["flags"] & 64 for r in replies)
    refused = "only ragbot admins" in replies[0]["content"]
    assert refused is not allowed
    with db.connect() as conn:
        (audit,) = conn.execute(select(t.audit_log)).all()
    assert audit.ok is allowed and audit.action == "status"


async def test_retrain_from_discord_queues_a_job(fake, start_client, db):
    """Retraining acts on the whole deployment: a global admin's (admin role) right, not Manage Server's."""
    client = await start_client(admin_role_ids=[fake.helper_role])
    await deliver(client, admin_command(fake, fake.manager, "retrain"), kind="interaction")
    await deliver(client, admin_command(fake, fake.helper, "retrain"), kind="interaction")
    with db.connect() as conn:
        jobs = conn.execute(select(t.jobs.c.kind, t.jobs.c.status)).all()
    assert sorted(kind for kind, _ in jobs) == ["retrain", "retrieval_retrain"]  # the generator and retrieval
    refused, queued = fake.find("POST", rf"/webhooks/{fake.application_id}/[^/]+")
    assert "needs a global ragbot admin" in refused.body["content"]
    assert "job" in queued.body["content"].lower()


async def test_channel_scoping_follows_the_collection_grants(fake, start_client, db, docs_engine, tmp_path):
    secret = tmp_path / "secret.md"
    secret.write_text("# Salaries\n\nThe salary bands for engineers are reviewed every October by the board.\n")
    # private content and ingestion are a global admin's (here: the admin role)
    client = await start_client(admin_role_ids=[fake.helper_role], ingest_roots=[str(tmp_path)])
    for line in ("collections create secret --private", f"ingest {secret} --collection secret"):
        await deliver(client, admin_command(fake, fake.helper, "run", command=line), kind="interaction")
    question = "When are the salary bands for engineers reviewed?"

    await deliver(client, mention(fake, question))
    assert "Salaries" not in str(posted(fake)[-1].get("embeds"))

    await deliver(client, admin_command(fake, fake.helper, "run", command="collections grant secret here"),
                  kind="interaction")
    await deliver(client, mention(fake, question))
    assert "Salaries" in posted(fake)[-1]["embeds"][0]["description"]


# -- safety and limits ------------------------------------------------------------------------------------------

async def test_no_mass_mention_can_leave_the_bot(fake, start_client):
    client = await start_client()
    await deliver(client, mention(fake, "When does the cafeteria menu change?"))
    payload = fake.command_interaction(fake.alice, "ask", [{"name": "question", "type": 3,
                                                             "value": "When does the cafeteria menu change?"}])
    await deliver(client, payload, kind="interaction")

    sent = posted(fake) + [c.body for c in fake.find("POST", r"/webhooks/\d+/[^/]+")]
    assert len(sent) == 2 and all("cafeteria" in b["content"] for b in sent)
    for body in sent:
        assert body["allowed_mentions"]["parse"] == []
        assert not body["allowed_mentions"].get("roles") and not body["allowed_mentions"].get("users")
        text = body["content"] + str(body.get("embeds"))
        assert not re.search(r"@(everyone|here)", text), text  # only the defused @\u200beveryone remain
        assert not re.search(r"<@&?!?\d+>", text)
        assert f"@{ZWSP}everyone" in body["content"]


async def test_a_long_answer_is_split_within_discords_limits(fake, start_client, engine, docs_engine, tmp_path,
                                                            monkeypatch):
    # four distinct run-on sentences of ~700 characters, quoted with a budget far over 2,000 characters
    items = ("badge pickup", "safety goggles", "fume hood training", "chemical inventory logins")
    sentences = [(f"The onboarding checklist for new laboratory technicians covers {item} step {n} "
                  "with a supervisor who signs the record " * 8).strip() for n, item in enumerate(items)]
    (tmp_path / "lab.md").write_text("# Lab onboarding\n\n" + ". ".join(sentences) + ".\n")
    engine.ingest([tmp_path / "lab.md"], "default")
    monkeypatch.setattr(docs_engine.extractive, "budget_chars", 5000)
    client = await start_client(max_answer_chars=6000)
    await deliver(client, mention(fake, "What does the onboarding checklist for laboratory technicians cover?"))

    bodies = posted(fake)
    assert len(bodies) >= 2  # the fake refuses (HTTP 400) anything over Discord's limits
    assert all(len(b["content"] or "") <= 2000 for b in bodies)
    assert all(b["message_reference"]["message_id"] for b in bodies)  # every part continues the chain
    assert [bool(b.get("components")) for b in bodies] == [False] * (len(bodies) - 1) + [True]
    assert bodies[-1]["embeds"] and not any(b.get("embeds") for b in bodies[:-1])
