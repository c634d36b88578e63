"""BotCore end to end on the real embedded database (extractive answers)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.configs import bot_config
from bot.core import ASK_USAGE, BotCore
from bot.types import Actor, AskRequest, Location
from rag_engine import jobs
from rag_engine.query_transform import QueryAdapter
from rag_engine.store import schema as t
from rag_engine.training import retrieval_registry
from tests.conftest import make_settings

HERE = Location("slack", "T1", "C1")
ALICE = Actor("slack", "U_ALICE")
ADMIN = Actor("slack", "U_ADMIN")


@pytest.fixture()
def core(engine, tmp_path, scratch_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "vpn.md").write_text("# VPN\n\nRequest VPN access in #it-help with /it vpn-request. "
                                 "IT sends a WireGuard profile within one business day.\n\n"
                                 "## MFA\n\nVPN logins need a YubiKey tap as the second factor.\n")
    (docs / "dinner.md").write_text("# Expenses\n\nTeam dinners are capped at $75 per person including tip.\n")
    engine.ingest([docs], "default")
    return BotCore(bot_config(make_settings(scratch_dir, admin_user_ids=["U_ADMIN"])), engine)


def _count(db, table, *where) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


async def test_ask_answers_with_sources_and_logs_the_interaction(core, db):
    reply = await core.ask(AskRequest(ALICE, HERE, "<@U0BOT> how do I get VPN access?"))
    assert reply.kind == "answer"
    assert "#it-help" in reply.text and "[1]" in reply.text
    assert reply.sources and reply.sources[0].location.endswith("vpn.md")
    assert reply.feedback_enabled and reply.interaction_id is not None
    with db.connect() as conn:
        row = conn.execute(select(t.interactions).where(t.interactions.c.id == reply.interaction_id)).one()
    assert row.question == "how do I get VPN access?" and row.user_key == "slack:U_ALICE"
    assert row.status == "answered" and row.retrieved


async def test_empty_and_too_long_questions(core, db):
    assert (await core.ask(AskRequest(ALICE, HERE, "  <@U0BOT>  "))).text == ASK_USAGE
    long = await core.ask(AskRequest(ALICE, HERE, "why " * 1000))
    assert long.kind == "refused" and "limit is 2,000" in long.text
    assert _count(db, t.interactions) == 0


async def test_redelivered_event_is_answered_once(core, db):
    first = await core.ask(AskRequest(ALICE, HERE, "dinner limit?", event_id="Ev1"))
    second = await core.ask(AskRequest(ALICE, HERE, "dinner limit?", event_id="Ev1"))
    assert first.kind == "answer" and second.kind == "duplicate"
    assert _count(db, t.interactions) == 1


async def test_thread_follow_up_uses_earlier_turns(core):
    await core.ask(AskRequest(ALICE, HERE, "how do I get VPN access?", thread_id="th1"))
    follow = await core.ask(AskRequest(ALICE, HERE, "and what is the second factor?", thread_id="th1"))
    assert "YubiKey" in follow.text


async def test_votes_are_idempotent_per_user(core, db):
    reply = await core.ask(AskRequest(ALICE, HERE, "dinner limit?"))
    assert (await core.vote(ALICE, reply.interaction_id, 1)).data["changed"] is True
    assert (await core.vote(ALICE, reply.interaction_id, 1)).data["changed"] is False
    assert (await core.vote(ALICE, reply.interaction_id, -1)).data["changed"] is True
    assert _count(db, t.feedback) == 1
    with db.connect() as conn:
        assert conn.execute(select(t.feedback.c.vote)).scalar_one() == -1
    missing = await core.vote(ALICE, 999_999, 1)
    assert not missing.ok and core.answer_code(999_999) in missing.message  # the code users were shown


async def test_corrections_mark_admins(core, db):
    reply = await core.ask(AskRequest(ALICE, HERE, "dinner limit?"))
    assert (await core.correct(ALICE, reply.interaction_id, "It's $75 per person.")).ok
    assert (await core.correct(ADMIN, reply.interaction_id, "$75 per person, tip included.")).ok
    assert not (await core.correct(ALICE, reply.interaction_id, "   ")).ok
    with db.connect() as conn:
        rows = conn.execute(select(t.corrections.c.user_key, t.corrections.c.is_admin)
                            .order_by(t.corrections.c.id)).all()
    assert [tuple(r) for r in rows] == [("slack:U_ALICE", False), ("slack:U_ADMIN", True)]


@pytest.mark.parametrize("command", ["retrain", "status", "rollback", "rollback retrieval", "ingest /tmp",
                                     "collections list",
                                     "collections create secret --private", "collections grant default"])
async def test_non_admin_is_refused_and_audited(core, db, command):
    result = await core.admin(ALICE, HERE, command)
    assert not result.ok and "only ragbot admins" in result.message
    assert _count(db, t.jobs) == 0 and _count(db, t.collections) == 1
    with db.connect() as conn:
        audit = conn.execute(select(t.audit_log)).one()
    assert (audit.actor, audit.action, audit.ok) == ("slack:U_ALICE", command.split()[0], False)


async def test_admin_retrain_queues_one_job(core, db):
    first = await core.admin(ADMIN, HERE, "retrain")
    second = await core.admin(ADMIN, HERE, "retrain")
    assert first.ok and second.ok
    assert first.data["job_id"] == second.data["job_id"]
    assert "already" in second.message
    assert _count(db, t.jobs, t.jobs.c.kind == "retrain") == 1
    assert _count(db, t.jobs, t.jobs.c.kind == "retrieval_retrain") == 1  # retrieval learns from feedback too
    assert first.data["retrieval_job_id"] == second.data["retrieval_job_id"]
    assert f"job {first.data['job_id']}" in first.message and f"job {first.data['retrieval_job_id']}" in first.message
    claimed = jobs.claim(db, "w1")  # oldest first: retrieval's seconds do not wait behind hours of LoRA training
    assert claimed is not None and claimed.kind == "retrieval_retrain"
    assert _count(db, t.audit_log, t.audit_log.c.ok.is_(True)) == 2
    status = await core.admin(ADMIN, HERE, "status")
    assert status.ok and any("queued" in line or "queue" in line.lower() for line in [status.message,
                                                                                       *status.detail_lines])


async def test_admin_rolls_back_the_retrieval_version_from_chat(core, engine, db):
    """``rollback retrieval`` undoes an (automatic) retrieval promotion; plain ``rollback`` stays the adapter's."""
    for version in ("q1", "q2"):
        retrieval_registry.register(db, version=version, adapter=QueryAdapter.identity(engine.embedder.dim),
                                    embedding_model=engine.embedder.model_name, data_snapshot={}, metrics={},
                                    status="candidate")
        retrieval_registry.activate(db, version)

    refused = await core.admin(ALICE, HERE, "rollback retrieval")
    assert not refused.ok and retrieval_registry.active(db).version == "q2"
    adapter = await core.admin(ADMIN, HERE, "rollback")  # the generator's: no LoRA adapter is active
    assert not adapter.ok and "no adapter is active" in adapter.message
    assert retrieval_registry.active(db).version == "q2"

    undone = await core.admin(ADMIN, HERE, "rollback Retrieval")
    assert undone.ok and "q2" in undone.message and "q1" in undone.message
    assert retrieval_registry.active(db).version == "q1"
    assert (await core.admin(ADMIN, HERE, "rollback retrieval")).ok
    assert retrieval_registry.active(db) is None  # raw query embeddings
    nothing = await core.admin(ADMIN, HERE, "rollback retrieval")
    assert not nothing.ok and "no retrieval version is active" in nothing.message

    bad = await core.admin(ADMIN, HERE, "rollback everything")
    assert not bad.ok and "`retrieval`" in bad.message  # a parse error: answered, not audited
    with db.connect() as conn:
        audit = conn.execute(select(t.audit_log.c.actor, t.audit_log.c.action, t.audit_log.c.args, t.audit_log.c.ok)
                             .order_by(t.audit_log.c.id)).all()
    assert [tuple(a) for a in audit] == [
        ("slack:U_ALICE", "rollback", {"args": ["retrieval"]}, False),
        ("slack:U_ADMIN", "rollback", {"args": []}, False),
        ("slack:U_ADMIN", "rollback", {"args": ["retrieval"]}, True),
        ("slack:U_ADMIN", "rollback", {"args": ["retrieval"]}, True),
        ("slack:U_ADMIN", "rollback", {"args": ["retrieval"]}, False),
    ]


async def test_unknown_admin_command_gets_usage(core):
    result = await core.admin(ADMIN, HERE, "reboot --now")
    assert not result.ok and "unknown command" in result.message and "Usage" in result.message


async def test_private_collection_only_where_granted(core, engine, db, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "salaries.md").write_text("# Salary bands\n\nThe staff engineer salary band tops out at $312,000.\n")
    engine.ingest([secret], "hr", visibility="private")
    question = "what is the top of the staff engineer salary band?"
    public = await core.ask(AskRequest(ALICE, HERE, question))
    assert "312" not in public.text and not any("salaries" in s.location for s in public.sources)
    granted = await core.admin(ADMIN, Location("slack", "T1", "C_HR"), "collections grant hr")
    assert granted.ok
    inside = await core.ask(AskRequest(ALICE, Location("slack", "T1", "C_HR"), question))
    assert "$312,000" in inside.text
