"""``collection_access``: the grant / exclude rules, and the one query access is decided from.

The policy (which rule wins, outsiders, DMs, key checks) lives in ``bot.access``;
this module only reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from rag_engine.store import schema as t
from rag_engine.store.database import Database

WILDCARD = "*"
Access = Literal["grant", "exclude"]
RuleKeys = tuple[str, str, str, str]  # platform, workspace_id, channel_id, access


@dataclass(frozen=True, slots=True)
class AccessRule:
    collection_id: int
    collection: str
    platform: str
    workspace_id: str
    channel_id: str
    access: Access
    created_at: datetime | None = None

    @property
    def where(self) -> str:
        return f"{self.platform}/{self.workspace_id or '-'}/{self.channel_id}"


@dataclass(frozen=True, slots=True)
class CollectionRules:
    """One collection's visibility and the rules that match the asked-about location."""

    visibility: str
    rules: list[RuleKeys] = field(default_factory=list)


def _matches(platform: str, workspace: str, channel: str) -> ColumnElement[bool]:
    ca = t.collection_access.c
    return and_(
        or_(ca.platform == platform, ca.platform == WILDCARD),
        or_(ca.workspace_id == workspace, ca.workspace_id == WILDCARD),
        or_(ca.channel_id == channel, ca.channel_id == WILDCARD),
    )


class AccessRuleRepo:
    """Reads and writes ``collection_access``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def matching(self, platform: str, workspace_id: str, channel_id: str) -> dict[int, CollectionRules]:
        """Every collection with its visibility and the rules matching these keys (``*`` included), in one query."""
        c, ca = t.collections.c, t.collection_access.c
        query = (
            select(c.id, c.visibility, ca.platform, ca.workspace_id, ca.channel_id, ca.access)
            .select_from(t.collections.outerjoin(
                t.collection_access, and_(ca.collection_id == c.id, _matches(platform, workspace_id, channel_id))))
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        found: dict[int, CollectionRules] = {}
        for row in rows:
            entry = found.setdefault(int(row.id), CollectionRules(str(row.visibility)))
            if row.access is not None:
                entry.rules.append((row.platform, row.workspace_id, row.channel_id, row.access))
        return found

    def set(self, collection_id: int, platform: str, workspace_id: str, channel_id: str, access: Access) -> None:
        """Store the rule for this location, replacing any earlier one (the caller has checked the keys)."""
        stmt = insert(t.collection_access).values(collection_id=collection_id, platform=platform,
                                                  workspace_id=workspace_id, channel_id=channel_id, access=access)
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "workspace_id", "channel_id", "collection_id"], set_={"access": access}
        )
        with self.db.begin() as conn:
            conn.execute(stmt)

    def revoke(self, collection_id: int, platform: str, workspace_id: str, channel_id: str) -> int:
        """Delete the rule for exactly this location (wildcards are matched literally); returns rows removed."""
        ca = t.collection_access.c
        with self.db.begin() as conn:
            return int(conn.execute(t.collection_access.delete().where(
                ca.collection_id == collection_id, ca.platform == platform, ca.workspace_id == workspace_id,
                ca.channel_id == channel_id)).rowcount)

    def list(self, collection_id: int | None = None) -> list[AccessRule]:
        """Every access rule (of one collection, if given), by collection and location."""
        c, ca = t.collections.c, t.collection_access.c
        query = (select(ca.collection_id, c.name, ca.platform, ca.workspace_id, ca.channel_id, ca.access,
                        ca.created_at)
                 .join(t.collections, c.id == ca.collection_id)
                 .order_by(c.name, ca.platform, ca.workspace_id, ca.channel_id))
        if collection_id is not None:
            query = query.where(ca.collection_id == collection_id)
        with self.db.connect() as conn:
            return [AccessRule(*row) for row in conn.execute(query).all()]
