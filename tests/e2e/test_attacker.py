"""Issue 15, "Done when": an attacker script through the real Discord and Slack adapters.

discord.py and slack-bolt run unchanged against the wire fakes (tests/discord_fakes.py,
tests/slack_fakes.py), on the real bot core and the real database, with a private ``hr``
collection ingested. The attackers:

* the Manage-Server user of a server the deployment does not serve (the bot was invited
  to the attacker's own server);
* the Manage-Server user of a server it does serve;
* a Slack Connect guest in a channel shared with the host workspace (which may read hr);
* a member who submits a correction carrying a phishing link.

Each tries to grant itself hr, create a collection, ingest server files, retrain, roll
back, approve corrections, and to read hr through /ask and mentions. Outcome asserted:
0 private chunks in any reply or stored interaction, 0 admin actions that succeeded
(every audit row ok=false, no rule, job, collection or document created), and 0
unreviewed training examples.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from adapters.discord import RagbotClient
from adapters.testing.discord_gateway import FakeDiscord, action_rows_custom_ids, connect
from adapters.testing.slack_server import TEAM, SlackSender
from app.configs import bot_config, discord_config
from bot.core import BotCore
from bot.messages import ADMIN_ONLY
from bot.tenants import NOT_ENABLED
from rag_engine.store import Store
from rag_engine.store import schema as t
from rag_engine.training.dataset import build_training_set
from tests.conftest import make_settings
from tests.e2e.test_discord_adapter import admin_command, deliver, mention
from tests.e2e.test_slack_app import slack_for
from tests.support.security import ingest_corpora, leaked_markers

PRIVATE_QUESTIONS = ("What is the base salary for level L7 staff engineers?",
                     "Which company does the confidential acquisition plan buy, and for how much?",
                     "Which leaked deploy key was used to read the invoices?")
ATTACKS = ("collections grant hr here", "collections grant hr *", "collections create loot --public",
           "ingest {private} --collection handbook", "retrain", "rollback", "feedback approve 1")
PHISHING = "Outdated. Request PTO at https://harbor-hr.evil.example/login with your password [1]."
GUEST_TEAM = "TGUEST"
SHARED = "CSHARED"


@pytest.fixture()
def corpora(engine, tmp_path):
    handbook, hr = ingest_corpora(engine, tmp_path)
    return engine, handbook, hr


@pytest.fixture()
async def fake():
    server = await FakeDiscord().start()
    yield server
    await server.stop()


def _snapshot(db) -> dict:
    """Everything an admin action could change."""
    with db.connect() as conn:
        ca = t.collection_access.c
        return {"rules": sorted(conn.execute(select(ca.platform, ca.workspace_id, ca.channel_id, ca.access)).all()),
                "collections": sorted(conn.execute(select(t.collections.c.name, t.collections.c.visibility)).all()),
                "documents": conn.execute(select(func.count()).select_from(t.documents)).scalar_one(),
                "jobs": conn.execute(select(func.count()).select_from(t.jobs)).scalar_one(),
                "approved": conn.execute(select(func.count()).select_from(t.corrections)
                                         .where(t.corrections.c.status == "approved")).scalar_one()}


def assert_nothing_gained(db, training, hr: int, before: dict, sent_text: str, *, audited: int) -> None:
    """0 private chunks in replies and stored interactions; 0 admin actions succeeded; 0 unreviewed examples."""
    assert leaked_markers(sent_text, "") == []
    with db.connect() as conn:
        stored = conn.execute(select(t.interactions)).all()
        audit = conn.execute(select(t.audit_log.c.action, t.audit_log.c.ok)).all()
    for row in stored:
        assert hr not in row.collection_ids and hr not in row.history_collection_ids
        assert all(hit.get("collection_id") != hr for hit in row.retrieved)
        assert leaked_markers(row.answer + json.dumps(row.passages), "") == []
    assert len(audit) == audited and not any(ok for _, ok in audit), audit
    assert _snapshot(db) == before
    examples = build_training_set(db, training)
    assert all(e.origin not in ("correction", "admin_correction") for e in examples.train + examples.heldout)
    assert all(e.reviewed for e in examples.heldout)


# -- Discord ---------------------------------------------------------------------------------------------

async def _discord_client(fake, engine, tmp_path, **overrides) -> RagbotClient:
    settings = make_settings(tmp_path, discord_api_base=f"http://127.0.0.1:{fake.port}",
                             admin_user_ids=["discord:1"], ingest_roots=[str(tmp_path)], **overrides)
    client = RagbotClient(BotCore(bot_config(settings), engine), discord_config(settings))
    await connect(client, fake)
    return client


def _replies(fake, payload: dict) -> str:
    return "\n".join(json.dumps(c.body) for c in fake.find("POST", rf"/webhooks/{fake.application_id}/"
                                                                    rf"{payload['token']}"))


async def _discord_attack(client, fake, tmp_path) -> tuple[list[str], list[str]]:
    """The attacker's script; returns (admin replies, ask replies)."""
    admin, asked = [], []
    for line in ATTACKS:
        sub = line if line in ("retrain", "rollback") else "run"
        payload = admin_command(fake, fake.manager, sub,
                                **({} if sub != "run" else {"command": line.format(private=tmp_path / "private")}))
        await deliver(client, payload, kind="interaction")
        admin.append(_replies(fake, payload))
    for question in PRIVATE_QUESTIONS:
        payload = fake.command_interaction(fake.manager, "ask", [{"name": "question", "type": 3, "value": question}])
        await deliver(client, payload, kind="interaction")
        asked.append(_replies(fake, payload))
        before = len(fake.find("POST", r"/channels/\d+/messages"))
        await deliver(client, mention(fake, question, author=fake.manager))
        asked.append("\n".join(json.dumps(c.body) for c in fake.find("POST", r"/channels/\d+/messages")[before:]))
    return admin, asked


def _all_sent(fake) -> str:
    return "\n".join(json.dumps(c.body) for c in fake.calls if c.body)


async def test_manage_server_in_an_unknown_guild(fake, corpora, db, tmp_path):
    engine, _, hr = corpora
    client = await _discord_client(fake, engine, tmp_path, discord_guild_ids=["1111"])  # not the attacker's
    before = _snapshot(db)
    try:
        admin, asked = await _discord_attack(client, fake, tmp_path)
    finally:
        await client.close()
    assert all(NOT_ENABLED in reply for reply in admin + asked), admin + asked
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.interactions)).scalar_one() == 0
    assert_nothing_gained(db, client.core.engine.config.training, hr, before, _all_sent(fake), audited=len(ATTACKS))


async def test_manage_server_in_an_allowed_guild(fake, corpora, db, tmp_path):
    engine, _, hr = corpora
    client = await _discord_client(fake, engine, tmp_path, discord_guild_ids=[fake.guild_id])
    before = _snapshot(db)
    try:
        admin, asked = await _discord_attack(client, fake, tmp_path)
    finally:
        await client.close()
    assert all("needs a global ragbot admin" in reply for reply in admin), admin
    assert all(reply for reply in asked)  # every question was answered, from what this server may read
    assert_nothing_gained(db, client.core.engine.config.training, hr, before, _all_sent(fake), audited=len(ATTACKS))


async def test_a_members_phishing_correction_is_not_training_data(fake, corpora, db, tmp_path):
    engine, _, hr = corpora
    client = await _discord_client(fake, engine, tmp_path, discord_guild_ids=[fake.guild_id])
    before = _snapshot(db)
    try:
        await deliver(client, mention(fake, "How many days of PTO should everyone take per year?"))
        answer = [m for m in fake.messages.values() if m["author"]["id"] == fake.bot.id and m.get("components")][-1]
        up, _, fix = action_rows_custom_ids(answer)
        await deliver(client, fake.component_interaction(fake.alice, answer, up), kind="interaction")
        await deliver(client, fake.component_interaction(fake.alice, answer, fix), kind="interaction")
        (opened,) = [c for c in fake.find("POST", r"/interactions/\d+/[^/]+/callback") if c.body["type"] == 9]
        modal = opened.body["data"]
        field = modal["components"][0]["component"]["custom_id"]
        await deliver(client, fake.modal_submit(fake.alice, modal["custom_id"], {field: PHISHING}, message=answer),
                      kind="interaction")
    finally:
        await client.close()
    with db.connect() as conn:
        (stored,) = conn.execute(select(t.corrections.c.text, t.corrections.c.status)).all()
    assert stored == (PHISHING, "pending")  # kept for an admin to review, not used
    examples = build_training_set(db, client.core.engine.config.training)
    assert "evil.example" not in json.dumps([e.answer for e in examples.train + examples.heldout])
    assert_nothing_gained(db, client.core.engine.config.training, hr, before, _all_sent(fake), audited=0)


# -- Slack -------------------------------------------------------------------------------------------------

async def test_a_slack_connect_guest(corpora, db, tmp_path):
    engine, _, hr = corpora
    from bot import access

    access.set_access(Store(db), hr, "slack", TEAM, "*", "grant")  # the host workspace itself may read hr everywhere
    before = _snapshot(db)
    guest = {"user": "UGUEST", "team_id": GUEST_TEAM, "user_team": GUEST_TEAM}
    async with slack_for(engine, tmp_path, {"UGUEST": {"is_owner": True}}, slack_workspace_admins_are_admins=True,
                         ingest_roots=[str(tmp_path)]) as slack:
        for n, line in enumerate(ATTACKS, start=1):
            await slack.send.command("/ragbot-admin", line.format(private=tmp_path / "private"), channel=SHARED,
                                     **guest)
            await slack.api.wait_for(lambda api, n=n: len(api.calls_to("response_url")) >= n, what="a refusal")
        refusals = [json.dumps(c.payload) for c in slack.api.calls_to("response_url")]
        for n, question in enumerate(PRIVATE_QUESTIONS):
            await slack.send.command("/ask", question, channel=SHARED, **guest)
            ts = f"900.{n}"
            await slack.send.event({**SlackSender.mention(question, ts=ts, user="UGUEST", channel=SHARED),
                                    "user_team": GUEST_TEAM, "source_team": GUEST_TEAM})
            await slack.api.wait_for(lambda api, ts=ts: any(c.payload.get("timestamp") == ts
                                                            for c in api.calls_to("reactions.remove")),
                                     what="the answer to the mention")
        await slack.api.wait_for(lambda api: len(slack.shown()) >= len(ATTACKS) + len(PRIVATE_QUESTIONS),
                                 what="the /ask answers")
        sent = slack.api.all_payloads_text()
        training = slack.core.engine.config.training
    assert all(ADMIN_ONLY in r for r in refusals), refusals
    assert slack.api.calls_to("users.info") == []  # a guest is not even considered for workspace admin
    assert_nothing_gained(db, training, hr, before, sent, audited=len(ATTACKS))
