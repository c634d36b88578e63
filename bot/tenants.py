"""Which workspaces (Slack teams, Discord guilds) this deployment serves.

Discord bots are public by default: anyone can invite one to their own server.
``RAGBOT_DISCORD_GUILD_IDS`` / ``RAGBOT_SLACK_TEAM_IDS`` bind the deployment to
its tenants; anywhere else the bot answers only ``NOT_ENABLED``. An empty list
leaves that platform unbound (every workspace served), which the adapters log
as a warning at start-up.

A Discord DM belongs to no guild and is served (it can only read what DMs were
granted, or public content); Slack DMs carry their team id and are checked.
"""

from __future__ import annotations

import logging

from bot.config import BotConfig
from bot.messages import NOT_ENABLED as NOT_ENABLED  # re-exported: the core answers it
from bot.types import Location

log = logging.getLogger(__name__)

_ENV = {"slack": "RAGBOT_SLACK_TEAM_IDS", "discord": "RAGBOT_DISCORD_GUILD_IDS"}


def allowed_ids(config: BotConfig, platform: str) -> frozenset[str]:
    """The allow-list for ``platform`` (blank entries dropped); empty = not bound."""
    ids = {"slack": config.slack_team_ids, "discord": config.discord_guild_ids}.get(platform, ())
    return frozenset(i.strip() for i in ids if i and i.strip())


def workspace_allowed(platform: str, workspace_id: str, config: BotConfig) -> bool:
    """Whether ``workspace_id`` is listed for ``platform``, or the platform is unbound."""
    if platform not in _ENV:
        return True  # the CLI acts on the host
    listed = allowed_ids(config, platform)
    return not listed or workspace_id in listed


def tenant_allowed(location: Location, config: BotConfig) -> bool:
    """Whether the bot serves ``location`` (a Discord DM, in no guild, always)."""
    if location.platform == "discord" and location.is_dm and not location.workspace_id:
        return True
    return workspace_allowed(location.platform, location.workspace_id, config)


def warn_if_unbound(config: BotConfig, platform: str) -> bool:
    """Log a start-up warning when ``platform`` serves every workspace; True if it does."""
    if allowed_ids(config, platform):
        return False
    log.warning("%s is not bound to any workspace: anyone who adds the bot to theirs can use it and their "
                "platform admins administer it there. Set %s to the ids this deployment serves "
                "(see docs/security.md#tenant-model).", platform.title(), _ENV[platform])
    return True
