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

The result is a ``CollectionScope`` (read from one query: ``engine.store.access_rules``)
that retrieval, thread history and the interaction log consume as is.
"""

from __future__ import annotations

from typing import Literal

from bot.types import Location
from rag_engine.engine import Store
from rag_engine.scope import CollectionScope

WILDCARD = "*"
DM_CHANNEL = "dm"
PLATFORMS = ("slack", "discord", "cli", WILDCARD)
Access = Literal["grant", "exclude"]


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


def collection_scope(store: Store, location: Location, *, outsider: bool = False) -> CollectionScope:
    """The collections ``location`` may read, from one query; ``outsider``: for an external member."""
    platform, workspace, channel = location_keys(location)
    found = store.access_rules.matching(platform, workspace, channel)
    return CollectionScope.of(cid for cid, entry in found.items()
                              if decide(entry.visibility, entry.rules, is_dm=location.is_dm, outsider=outsider))


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


def set_access(store: Store, collection_id: int, platform: str, workspace_id: str, channel_id: str,
               access: str) -> None:
    """Grant or exclude a collection for a location (replacing any earlier rule for it), once the keys are valid.

    Revoking and listing need no policy: ``store.access_rules.revoke`` / ``.list``."""
    if access not in ("grant", "exclude"):
        raise ValueError("access must be grant or exclude")
    _check_keys(platform, workspace_id, channel_id)
    store.access_rules.set(collection_id, platform, workspace_id, channel_id,
                           "grant" if access == "grant" else "exclude")
