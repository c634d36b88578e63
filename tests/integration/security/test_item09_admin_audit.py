"""Issue 15 item 9: every admin command leaves exactly one audit row, also when it fails
with an exception nobody expected (before, only ValueError/LookupError were caught ahead
of the audit write, so such a failure left no trace). Real database and BotCore."""

from __future__ import annotations

import pytest

from app.configs import bot_config
from bot import admin_ops
from bot.core import BotCore
from bot.types import Actor, Location
from rag_engine.store import Store
from tests.conftest import make_settings

HERE = Location("slack", "T1", "C1")
ADMIN = Actor("slack", "UADMIN")
TOKEN = "xoxb-123456789012-abcdefABCDEF"


def _boom(*args, **kwargs):
    raise RuntimeError(f"worker table corrupt near {TOKEN}")


def _denied(*args, **kwargs):
    raise PermissionError(13, "Permission denied")


@pytest.mark.parametrize("command, patch", [
    ("status", lambda core, mp: mp.setattr(admin_ops, "status", _boom)),
    ("retrain", lambda core, mp: mp.setattr(admin_ops, "request_retrain", _boom)),
    ("ingest {root}/a.md --collection handbook", lambda core, mp: mp.setattr(core.engine, "ingest", _denied)),
])
async def test_an_unexpected_failure_is_audited_once_and_reported(engine, db, tmp_path, monkeypatch, command, patch):
    (tmp_path / "a.md").write_text("# A\n\nThe office opens at 8:00.\n")
    engine.ingest([tmp_path / "a.md"], "handbook")
    core = BotCore(bot_config(make_settings(tmp_path, admin_user_ids=["slack:UADMIN"], ingest_roots=[str(tmp_path)])),
                   engine)
    patch(core, monkeypatch)

    result = await core.admin(ADMIN, HERE, command.format(root=tmp_path))

    assert not result.ok and "failed unexpectedly" in result.message
    assert TOKEN not in result.message  # what the admin is shown is redacted too
    (row,) = Store(db).audit.recent(10)
    assert (row.actor, row.action, row.ok) == ("slack:UADMIN", command.split()[0], False)
    assert "failed unexpectedly" in row.result and TOKEN not in row.result


async def test_allowed_refused_and_failed_commands_each_leave_one_row(engine, db, tmp_path, monkeypatch):
    core = BotCore(bot_config(make_settings(tmp_path, admin_user_ids=["slack:UADMIN"])), engine)
    assert (await core.admin(ADMIN, HERE, "status")).ok
    assert not (await core.admin(Actor("slack", "UNOBODY"), HERE, "status")).ok
    assert not (await core.admin(ADMIN, HERE, "rollback")).ok  # nothing to roll back: an expected refusal
    monkeypatch.setattr(admin_ops, "status", _boom)
    assert not (await core.admin(ADMIN, HERE, "status")).ok
    assert [(r.actor, r.action, r.ok) for r in reversed(Store(db).audit.recent(10))] == [
        ("slack:UADMIN", "status", True), ("slack:UNOBODY", "status", False),
        ("slack:UADMIN", "rollback", False), ("slack:UADMIN", "status", False)]
