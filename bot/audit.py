"""The audit trail of admin actions (who, what, when, result)."""

from __future__ import annotations

from bot.types import Actor
from rag_engine.store import schema as t
from rag_engine.store.database import Database


def write_audit(db: Database, actor: Actor, action: str, args: dict, *, ok: bool, result: str) -> None:
    with db.begin() as conn:
        conn.execute(t.audit_log.insert().values(platform=actor.platform, actor=actor.user_key, action=action,
                                                 args=args, ok=ok, result=result[:2000]))
