"""``audit_log``: one row per admin action (the bot core cleans and bounds what it stores)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from rag_engine.store import schema as t
from rag_engine.store.database import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    platform: str
    actor: str
    action: str
    args: dict[str, Any]
    ok: bool
    result: str | None


class AuditRepo:
    """Appends to and reads ``audit_log``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, *, platform: str, actor: str, action: str, args: dict[str, Any], ok: bool, result: str) -> None:
        with self.db.begin() as conn:
            conn.execute(t.audit_log.insert().values(platform=platform, actor=actor, action=action, args=args,
                                                     ok=ok, result=result))

    def recent(self, limit: int = 50, *, actor: str | None = None, action: str | None = None) -> list[AuditEntry]:
        """The latest audit rows, newest first (optionally of one actor key or one action)."""
        a = t.audit_log.c
        query = select(a.id, a.at, a.platform, a.actor, a.action, a.args, a.ok, a.result).order_by(a.id.desc())
        if actor is not None:
            query = query.where(a.actor == actor)
        if action is not None:
            query = query.where(a.action == action)
        with self.db.connect() as conn:
            return [AuditEntry(*row) for row in conn.execute(query.limit(max(1, limit))).all()]
