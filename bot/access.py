"""Which collections a chat location may read.

A location is (platform, workspace/guild, channel); direct messages use the
channel ``dm``. Public collections are readable everywhere unless excluded;
private collections only where granted. Rules may use ``*`` for the platform,
the workspace or the channel, and for each collection the most specific rule
that matches decides (channel beats workspace beats platform; on a tie an
exclusion wins). So ``exclude hr *`` + ``grant hr C42`` reads "hr only in C42".

A wildcard channel never *grants* a direct message: anyone in a workspace can
DM the bot, so DMs see a private collection only through an explicit ``dm``
rule. A wildcard exclusion does cover DMs (excluding is the safe direction).
DM rules have one scope per platform, ``(platform, *, dm)``: a Discord DM
belongs to no guild, and a rule that names a workspace for DMs is refused
rather than stored to never match.

Outsiders (``Actor.is_external``: Slack Connect guests) read only collections
granted by a rule naming exactly this platform, workspace and channel: never
public content, never anything a wildcard rule grants.

The resulting ids go to retrieval, which filters inside the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from bot.types import Location
from rag_engine.store import schema as t
from rag_engine.store.database import Database

WILDCARD = "*"
DM_CHANNEL = "dm"
PLATFORMS = ("slack", "discord", "cli", WILDCARD)
Access = Literal["grant", "exclude"]


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


def location_keys(location: Location) -> tuple[str, str, str]:
    """The keys rules are matched against (a DM keeps its workspace, so a workspace-wide
    exclusion covers its DMs; DM rules themselves match every workspace)."""
    channel = DM_CHANNEL if location.is_dm else location.channel_id
    return location.platform, location.workspace_id or "", channel


def rule_keys(location: Location, target: str) -> tuple[str, str, str]:
    """The rule a chat command means by ``target`` (``here``, ``dm``, ``*`` or a channel id),
    given where it was typed. ``dm``, and ``here`` in a DM, are the platform's DM rule."""
    if target == DM_CHANNEL or (target == "here" and location.is_dm):
        return location.platform, WILDCARD, DM_CHANNEL
    if not location.workspace_id:
        raise ValueError("a DM belongs to no server: give this command in the server whose channel you mean")
    channel = location.channel_id if target == "here" else target
    return location.platform, location.workspace_id, channel


def _matches(platform: str, workspace: str, channel: str):
    ca = t.collection_access.c
    return and_(
        or_(ca.platform == platform, ca.platform == WILDCARD),
        or_(ca.workspace_id == workspace, ca.workspace_id == WILDCARD),
        or_(ca.channel_id == channel, ca.channel_id == WILDCARD),
    )


def _specificity(platform: str, workspace: str, channel: str) -> int:
    return (channel != WILDCARD) * 4 + (workspace != WILDCARD) * 2 + (platform != WILDCARD)


def decide(visibility: str, rules: list[tuple[str, str, str, str]], *, is_dm: bool, outsider: bool = False) -> bool:
    """Whether a collection is readable, given the rules (platform, workspace, channel, access) that match here."""
    if outsider:  # only a rule naming exactly this location counts, and nothing is public to an outsider
        rules = [r for r in rules if WILDCARD not in r[:3]]
        visibility = "private"
    if is_dm:  # a wildcard channel may exclude a DM but never grant one
        rules = [r for r in rules if not (r[3] == "grant" and r[2] == WILDCARD)]
    if not rules:
        return visibility == "public"
    top = max(_specificity(*r[:3]) for r in rules)
    deciding = {r[3] for r in rules if _specificity(*r[:3]) == top}
    return "exclude" not in deciding


def allowed_collection_ids(db: Database, location: Location, *, outsider: bool = False) -> list[int]:
    """Ids of the collections ``location`` may read (one query); ``outsider``: for an external member."""
    platform, workspace, channel = location_keys(location)
    c, ca = t.collections.c, t.collection_access.c
    query = (
        select(c.id, c.visibility, ca.platform, ca.workspace_id, ca.channel_id, ca.access)
        .select_from(t.collections.outerjoin(
            t.collection_access, and_(ca.collection_id == c.id, _matches(platform, workspace, channel))))
    )
    with db.connect() as conn:
        rows = conn.execute(query).all()
    visibility: dict[int, str] = {}
    rules: dict[int, list[tuple[str, str, str, str]]] = {}
    for row in rows:
        visibility[row.id] = row.visibility
        if row.access is not None:
            rules.setdefault(row.id, []).append((row.platform, row.workspace_id, row.channel_id, row.access))
    return sorted(cid for cid, vis in visibility.items()
                  if decide(vis, rules.get(cid, []), is_dm=location.is_dm, outsider=outsider))


def _check_keys(platform: str, workspace_id: str, channel_id: str) -> None:
    """Refuse malformed rules and rules that could never match."""
    if not platform or not channel_id:
        raise ValueError("an access rule needs a platform and a channel (use * for every one)")
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform[:40]!r}: use one of {', '.join(PLATFORMS)}")
    if channel_id == DM_CHANNEL and workspace_id != WILDCARD:
        raise ValueError("DM rules cover a platform's DMs as a whole and name no workspace "
                         "(CLI: --dm without --workspace; chat: `dm`)")
    if not workspace_id:
        raise ValueError("an access rule needs a workspace (use * for every one)")
    for value in (platform, workspace_id, channel_id):
        if len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValueError(f"invalid location key {value[:40]!r} (no spaces, at most 200 characters)")


def set_access(db: Database, collection_id: int, platform: str, workspace_id: str, channel_id: str,
               access: str) -> None:
    """Grant or exclude a collection for a location (replacing any earlier rule for it)."""
    if access not in ("grant", "exclude"):
        raise ValueError("access must be grant or exclude")
    _check_keys(platform, workspace_id, channel_id)
    stmt = insert(t.collection_access).values(collection_id=collection_id, platform=platform,
                                              workspace_id=workspace_id, channel_id=channel_id, access=access)
    stmt = stmt.on_conflict_do_update(
        index_elements=["platform", "workspace_id", "channel_id", "collection_id"], set_={"access": access}
    )
    with db.begin() as conn:
        conn.execute(stmt)


def revoke(db: Database, collection_id: int, platform: str, workspace_id: str, channel_id: str) -> int:
    """Delete the rule for exactly this location (wildcards are matched literally); returns rows removed."""
    ca = t.collection_access.c
    with db.begin() as conn:
        return conn.execute(t.collection_access.delete().where(
            ca.collection_id == collection_id, ca.platform == platform, ca.workspace_id == workspace_id,
            ca.channel_id == channel_id)).rowcount


def list_rules(db: Database, collection_id: int | None = None) -> list[AccessRule]:
    """Every access rule (of one collection, if given), by collection and location."""
    c, ca = t.collections.c, t.collection_access.c
    query = (select(ca.collection_id, c.name, ca.platform, ca.workspace_id, ca.channel_id, ca.access, ca.created_at)
             .join(t.collections, c.id == ca.collection_id)
             .order_by(c.name, ca.platform, ca.workspace_id, ca.channel_id))
    if collection_id is not None:
        query = query.where(ca.collection_id == collection_id)
    with db.connect() as conn:
        return [AccessRule(*row) for row in conn.execute(query).all()]
