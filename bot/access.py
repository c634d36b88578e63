"""Which collections a chat location may read.

Public collections are readable everywhere unless excluded for that location;
private collections only where granted. Grants and exclusions match exactly or
by wildcard (``*``) on platform, workspace and channel; DMs use channel ``dm``.
The resulting ids are passed to retrieval, which filters inside the SQL.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from bot.types import Location
from rag_engine.store import schema as t
from rag_engine.store.database import Database

WILDCARD = "*"


def location_keys(location: Location) -> tuple[str, str, str]:
    channel = "dm" if location.is_dm else location.channel_id
    return location.platform, location.workspace_id or "", channel


def _matches(platform: str, workspace: str, channel: str):
    ca = t.collection_access.c
    return and_(
        or_(ca.platform == platform, ca.platform == WILDCARD),
        or_(ca.workspace_id == workspace, ca.workspace_id == WILDCARD),
        or_(ca.channel_id == channel, ca.channel_id == WILDCARD),
    )


def allowed_collection_ids(db: Database, location: Location) -> list[int]:
    platform, workspace, channel = location_keys(location)
    c, ca = t.collections.c, t.collection_access.c
    with db.connect() as conn:
        rules = conn.execute(
            select(ca.collection_id, ca.access).where(_matches(platform, workspace, channel))
        ).all()
        visibility = dict(conn.execute(select(c.id, c.visibility)).all())
    granted = {r.collection_id for r in rules if r.access == "grant"}
    excluded = {r.collection_id for r in rules if r.access == "exclude"}
    allowed = {cid for cid, vis in visibility.items() if vis == "public"} | granted
    return sorted(allowed - excluded)


def set_access(db: Database, collection_id: int, platform: str, workspace_id: str, channel_id: str,
               access: str) -> None:
    """Grant or exclude a collection for a location (replacing any earlier rule for it)."""
    if access not in ("grant", "exclude"):
        raise ValueError("access must be grant or exclude")
    from sqlalchemy.dialects.postgresql import insert

    stmt = insert(t.collection_access).values(collection_id=collection_id, platform=platform,
                                              workspace_id=workspace_id, channel_id=channel_id, access=access)
    stmt = stmt.on_conflict_do_update(
        index_elements=["platform", "workspace_id", "channel_id", "collection_id"], set_={"access": access}
    )
    with db.begin() as conn:
        conn.execute(stmt)


def revoke(db: Database, collection_id: int, platform: str, workspace_id: str, channel_id: str) -> int:
    ca = t.collection_access.c
    with db.begin() as conn:
        return conn.execute(t.collection_access.delete().where(
            ca.collection_id == collection_id, ca.platform == platform, ca.workspace_id == workspace_id,
            ca.channel_id == channel_id)).rowcount
