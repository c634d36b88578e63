"""Who is acting and where: bot-core ``Actor``/``Location`` from Slack payloads.

Workspace admins/owners are looked up with ``users.info`` only when the
settings let them administer the bot, and the answer is cached for a few
minutes so a busy admin does not cost an API call per command.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.types import Actor, Location

log = logging.getLogger(__name__)

PLATFORM = "slack"
ADMIN_CACHE_S = 300.0


def workspace_id(body: dict[str, Any], context: Any = None) -> str:
    """Team id (Enterprise Grid org-wide apps: the enterprise id when no team is given)."""
    team = (context.get("team_id") if context is not None else None) or body.get("team_id") \
        or (body.get("team") or {}).get("id")
    enterprise = (context.get("enterprise_id") if context is not None else None) or body.get("enterprise_id")
    return team or enterprise or ""


def command_location(command: dict[str, Any], context: Any = None) -> Location:
    channel = command.get("channel_id", "")
    is_dm = command.get("channel_name") == "directmessage" or channel.startswith("D")
    return Location(PLATFORM, workspace_id(command, context), channel, is_dm=is_dm)


def event_location(body: dict[str, Any], event: dict[str, Any], context: Any = None) -> Location:
    channel = event.get("channel", "")
    is_dm = event.get("channel_type") == "im" or channel.startswith("D")
    return Location(PLATFORM, workspace_id(body, context), channel, is_dm=is_dm)


class ActorResolver:
    """Builds ``Actor`` values, vouching for workspace admins when configured to."""

    def __init__(self, *, check_workspace_admins: bool) -> None:
        self.check_workspace_admins = check_workspace_admins
        self._admins: dict[str, tuple[float, bool]] = {}

    async def actor(self, client: AsyncWebClient, user_id: str, display_name: str | None = None, *,
                    check_admin: bool) -> Actor:
        """``check_admin``: this action depends on admin rights (asking and voting do not)."""
        vouch = check_admin and self.check_workspace_admins
        is_admin = await self._is_workspace_admin(client, user_id) if vouch else False
        return Actor(PLATFORM, user_id, display_name=display_name, is_platform_admin=is_admin)

    async def _is_workspace_admin(self, client: AsyncWebClient, user_id: str) -> bool:
        cached = self._admins.get(user_id)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            response = await client.users_info(user=user_id)
        except SlackApiError as exc:
            # missing users:read or an unknown user: not an admin, and say why in the log
            log.warning("users.info failed for %s (%s); treating as non-admin", user_id, exc.response.get("error"))
            return False
        user = response.get("user") or {}
        is_admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._admins[user_id] = (now + ADMIN_CACHE_S, is_admin)
        return is_admin
