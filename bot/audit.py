"""The audit trail of admin actions (who, what, when, result).

Every admin command, allowed or refused, leaves one row. Arguments and results
are stored bounded in size and with credential-shaped strings redacted, so the
trail itself never becomes a place secrets leak to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.sanitize import redact_secrets, strip_control
from bot.types import Actor
from rag_engine.settings import Settings
from rag_engine.store import schema as t
from rag_engine.store.database import Database

MAX_RESULT_CHARS = 2000
MAX_ARG_CHARS = 500
MAX_ARG_ITEMS = 50


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    platform: str
    actor: str
    action: str
    args: dict
    ok: bool
    result: str | None


def _clean(value: Any, settings: Settings, depth: int = 0) -> Any:
    """JSON-safe, size-bounded, redacted copy of an argument value."""
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        return {str(k)[:100]: _clean(v, settings, depth + 1) for k, v in list(value.items())[:MAX_ARG_ITEMS]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, settings, depth + 1) for v in list(value)[:MAX_ARG_ITEMS]]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_secrets(strip_control(str(value)), settings)[:MAX_ARG_CHARS]


def write_audit(db: Database, actor: Actor, action: str, args: dict, *, ok: bool, result: str) -> None:
    with db.begin() as conn:
        conn.execute(t.audit_log.insert().values(
            platform=actor.platform, actor=actor.user_key, action=str(action)[:100],
            args=_clean(dict(args or {}), db.settings),
            ok=ok, result=redact_secrets(strip_control(result or ""), db.settings)[:MAX_RESULT_CHARS]))


def recent(db: Database, limit: int = 50, *, actor: str | None = None, action: str | None = None) -> list[AuditEntry]:
    """The latest audit rows, newest first (optionally of one actor key or one action)."""
    a = t.audit_log.c
    query = select(a.id, a.at, a.platform, a.actor, a.action, a.args, a.ok, a.result).order_by(a.id.desc())
    if actor is not None:
        query = query.where(a.actor == actor)
    if action is not None:
        query = query.where(a.action == action)
    with db.connect() as conn:
        return [AuditEntry(*row) for row in conn.execute(query.limit(max(1, limit))).all()]
