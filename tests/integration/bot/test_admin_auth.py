"""Admin authorization in one place (``bot.permissions``) and the audit trail:
every admin operation is refused to a non-admin, changes nothing, and leaves an
audit row (who, what, when, result), as does every allowed one."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.configs import bot_config
from bot.permissions import admin_scope, is_global_admin
from bot.types import Actor, AskRequest, Location
from rag_engine.store import Store
from rag_engine.store import schema as t
from tests.conftest import make_settings
from tests.support.security import core_for

WHERE = Location("discord", "G1", "100")
OPERATIONS = ["status", "retrain", "rollback", "ingest {docs}", "ingest {docs} --collection team",
              "collections list", "collections create secret --private", "collections grant handbook here",
              "collections exclude handbook 200", "collections revoke handbook *"]

NOT_ADMINS = [
    Actor("discord", "999", "random member"),
    Actor("discord", "999", role_ids=("555",)),  # a role, but not an admin role
    Actor("slack", "UWSADMIN", is_platform_admin=True),  # Slack workspace admins only when configured
    Actor("discord", "", is_platform_admin=False),  # no user id at all
    Actor("cli", "UADMIN-not-quite"),
]


def _table_counts(db) -> dict[str, int]:
    with db.connect() as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (t.collections, t.collection_access, t.documents, t.jobs, t.adapters)}


@pytest.mark.parametrize("actor", NOT_ADMINS, ids=lambda a: f"{a.platform}:{a.user_id or 'none'}:{a.role_ids}")
async def test_non_admins_are_refused_every_operation_and_audited(engine, db, tmp_path, actor):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe office opens at 8:00.\n")
    engine.ingest([docs], "handbook")
    core = core_for(engine, tmp_path, admin_user_ids=["discord:1", "UADMIN"], admin_role_ids=["777"])
    before = _table_counts(db)
    for op in OPERATIONS:
        result = await core.admin(actor, WHERE, op.format(docs=docs))
        assert not result.ok and "only ragbot admins" in result.message, (op, result)
    assert _table_counts(db) == before  # nothing changed
    audit = list(reversed(Store(db).audit.recent(100)))
    assert len(audit) == len(OPERATIONS)
    assert all(a.actor == actor.user_key and not a.ok and a.at is not None for a in audit)
    assert [a.action for a in audit] == [op.split()[0] for op in OPERATIONS]
    assert audit[6].args == {"args": ["create", "secret"], "visibility": "private"}


async def test_admins_can_run_every_operation_and_each_is_audited(engine, db, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe office opens at 8:00.\n")
    for name in ("handbook", "default", "team"):  # chat ingestion only fills existing collections
        engine.ingest([docs], name)
    core = core_for(engine, tmp_path, admin_user_ids=["discord:1"], ingest_roots=[str(tmp_path)])
    admin = Actor("discord", "1", "boss")
    results = [await core.admin(admin, WHERE, op.format(docs=docs)) for op in OPERATIONS]
    assert [r.ok for r in results] == [op != "rollback" for op in OPERATIONS], [r.message for r in results]
    audit = list(reversed(Store(db).audit.recent(100, actor="discord:1")))
    assert [(a.action, a.ok, a.result) for a in audit] == [(op.split()[0], r.ok, r.message)
                                                          for op, r in zip(OPERATIONS, results, strict=True)]
    with db.connect() as conn:
        rules = conn.execute(select(t.collection_access.c.channel_id, t.collection_access.c.access)).all()
        private = conn.execute(select(t.collections.c.visibility).where(t.collections.c.name == "secret")).scalar()
    assert private == "private"
    assert sorted(rules) == [("100", "grant"), ("200", "exclude")]  # the revoke of "*" matched no rule


SLACK_HERE = Location("slack", "T1", "C1")


@pytest.mark.parametrize("actor, where, settings_overrides, scope", [
    (Actor("slack", "U1"), SLACK_HERE, {"admin_user_ids": ["U1"]}, ("global", "user id", "")),
    (Actor("slack", "U1"), SLACK_HERE, {"admin_user_ids": ["slack:U1"]}, ("global", "user id", "")),
    (Actor("discord", "U1"), WHERE, {"admin_user_ids": ["slack:U1"]}, None),  # the key names another platform
    (Actor("discord", "5", role_ids=("10", "77")), WHERE, {"admin_role_ids": ["77"]}, ("global", "role", "")),
    # a platform admin administers the workspace the command is given in, and no more
    (Actor("discord", "5", is_platform_admin=True), WHERE, {}, ("workspace", "platform admin", "G1")),
    (Actor("discord", "5", is_platform_admin=True), WHERE, {"discord_guild_ids": ["G1"]},
     ("workspace", "platform admin", "G1")),
    (Actor("discord", "5", is_platform_admin=True), WHERE, {"discord_guild_ids": ["G2"]}, None),  # not served
    (Actor("discord", "5", is_platform_admin=True), Location("discord", "", "9", is_dm=True), {}, None),
    (Actor("slack", "U5", is_platform_admin=True), SLACK_HERE, {}, None),
    (Actor("slack", "U5", is_platform_admin=True), SLACK_HERE, {"slack_workspace_admins_are_admins": True},
     ("workspace", "platform admin", "T1")),
    # outsiders are never admins, whatever lists they are on
    (Actor("slack", "U1", is_external=True), SLACK_HERE, {"admin_user_ids": ["U1"]}, None),
    (Actor("slack", "", role_ids=("",)), SLACK_HERE, {"admin_user_ids": [""], "admin_role_ids": [""]}, None),
    (Actor("slack", "U1"), SLACK_HERE, {"admin_user_ids": [" ", "*"]}, None),  # no wildcard, no blank match
    (Actor("slack", "U1"), SLACK_HERE, {"admin_user_ids": "U2, U1"}, ("global", "user id", "")),  # the env form
])
def test_admin_scope(tmp_path, actor, where, settings_overrides, scope):
    settings = make_settings(tmp_path, **settings_overrides)
    found = admin_scope(actor, where, bot_config(settings))
    assert (found and (found.level, found.grounds, found.workspace_id)) == scope
    assert is_global_admin(actor, bot_config(settings)) == (scope is not None and scope[0] == "global")


async def test_refused_corrections_are_not_admin_corrections(engine, db, tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nThe office opens at 8:00 on weekdays.\n")
    engine.ingest([tmp_path / "a.md"], "default")
    core = core_for(engine, tmp_path, admin_user_ids=["slack:UADMIN"])
    reply = await core.ask(AskRequest(Actor("slack", "UX"), Location("slack", "T", "C"), "When does the office open?"))
    await core.correct(Actor("slack", "UX"), reply.interaction_id, "At 8:00 [1]")
    await core.correct(Actor("slack", "UADMIN"), reply.interaction_id, "At 8:00 sharp [1]")
    with db.connect() as conn:
        flags = dict(conn.execute(select(t.corrections.c.user_key, t.corrections.c.is_admin)).all())
    assert flags == {"slack:UX": False, "slack:UADMIN": True}


def test_audit_rows_hold_no_secrets_and_stay_bounded(db, tmp_path):
    from bot.audit import write_audit

    token = "xoxb-123456789012-abcdefABCDEF"
    write_audit(Store(db), Actor("slack", "U1"), "ingest", {"args": [f"/tmp/{token}.md", "x" * 5000],
                                                     "nested": {"password_url": "postgresql://u:hunter22@db/x"}},
                ok=False, result=f"failed with {token} " + "y" * 10_000)
    (row,) = Store(db).audit.recent(1)
    flat = f"{row.args} {row.result}"
    assert token not in flat and "hunter22" not in flat
    assert len(row.result) <= 2000 and all(len(a) <= 500 for a in row.args["args"])
