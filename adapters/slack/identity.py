"""Who is acting and where: bot-core ``Actor``/``Location`` from Slack payloads.

* Workspace admins/owners are looked up with ``users.info`` only when the
  settings let them administer the bot, and the answer is cached for a few
  minutes so a busy admin does not cost an API call per command.
* Slack Connect: a shared channel holds members of other organisations. Each
  payload says which team the user belongs to (events: ``user_team`` and
  ``source_team``; buttons and forms: ``user.team_id``; slash commands:
  ``user_team`` when given, and ``team_id``). A user of any team other than the
  installation's own (team and org from ``auth.test``, which Bolt ran) or one
  the deployment serves (``RAGBOT_SLACK_TEAM_IDS``) is an outsider
  (``Actor.is_external``), never vouched for as an admin. Their location is
  still the shared channel in the installation's workspace, so its rules apply.
* DMs: an event is a DM only with ``channel_type`` ``im``; a group DM
  (``mpim``) is a channel of its own. A slash command typed in a DM is the
  asker's private DM only if ``conversations.info`` shows the bot's own IM with
  them; a DM between two people is a channel of its own, so what is granted for
  DMs never lands where someone else reads it. The answer is cached; an API
  error counts as "a channel" (the safe side).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotConfig
from bot.types import Actor, Location

log = logging.getLogger(__name__)

PLATFORM = "slack"
ADMIN_CACHE_S = 300.0
IM_CACHE_SIZE = 10_000


def workspace_id(body: dict[str, Any], context: Any = None) -> str:
    """Team id (Enterprise Grid org-wide apps: the enterprise id when no team is given)."""
    team = (context.get("team_id") if context is not None else None) or body.get("team_id") \
        or (body.get("team") or {}).get("id")
    enterprise = (context.get("enterprise_id") if context is not None else None) or body.get("enterprise_id")
    return team or enterprise or ""


def installation_team(context: Any) -> str:
    """The bot token's own team (or org), as ``auth.test`` told Bolt; "" when unknown."""
    auth = (context.get("authorize_result") if context is not None else None) or {}
    return auth.get("team_id") or auth.get("enterprise_id") or ""


def home_teams(context: Any, config: BotConfig) -> frozenset[str]:
    """Teams whose members are insiders: the installation's team and org, and the served ones."""
    auth = (context.get("authorize_result") if context is not None else None) or {}
    teams = {auth.get("team_id"), auth.get("enterprise_id"), *config.slack_team_ids}
    return frozenset(t.strip() for t in teams if t and t.strip())


def is_outsider(home: frozenset[str], claimed: Iterable[str | None]) -> bool:
    """Whether any team the payload gives for the user is not a home team."""
    return bool(home) and any(team and team not in home for team in claimed)


def command_teams(command: dict[str, Any]) -> tuple[str | None, ...]:
    return command.get("user_team"), command.get("team_id")


def event_teams(event: dict[str, Any]) -> tuple[str | None, ...]:
    return event.get("user_team"), event.get("source_team")


def action_teams(body: dict[str, Any]) -> tuple[str | None, ...]:
    """Buttons and form submissions: the clicking user's own team."""
    user = body.get("user")
    return ((user or {}).get("team_id") if isinstance(user, dict) else None),


def command_location(command: dict[str, Any], context: Any = None,
                     home: frozenset[str] = frozenset()) -> Location:
    """Where a slash command was typed. ``is_dm`` here only means "typed in some DM":
    ``SlackIdentity.command`` keeps it only for the bot's own IM with the asker."""
    channel = command.get("channel_id", "")
    name = command.get("channel_name") or ""
    is_dm = not name.startswith("mpdm-") and (name == "directmessage" or channel.startswith("D"))
    team = workspace_id(command, context)
    if home and team not in home:  # an outsider's own team: the channel is the installation's
        team = installation_team(context) or team
    return Location(PLATFORM, team, channel, is_dm=is_dm)


def event_location(body: dict[str, Any], event: dict[str, Any], context: Any = None) -> Location:
    channel = event.get("channel", "")
    kind = event.get("channel_type")
    is_dm = kind == "im" or (not kind and channel.startswith("D"))  # "mpim": a channel of its own
    return Location(PLATFORM, workspace_id(body, context), channel, is_dm=is_dm)


def action_location(body: dict[str, Any], context: Any = None, channel: str | None = None) -> Location:
    """Where a button was clicked or a form was opened from."""
    channel = channel or (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") \
        or ""
    return Location(PLATFORM, workspace_id(body, context), channel, is_dm=channel.startswith("D"))


class ActorResolver:
    """Builds ``Actor`` values, vouching for workspace admins when configured to."""

    def __init__(self, *, check_workspace_admins: bool) -> None:
        self.check_workspace_admins = check_workspace_admins
        self._admins: dict[str, tuple[float, bool]] = {}

    async def actor(self, client: AsyncWebClient, user_id: str, display_name: str | None = None, *,
                    check_admin: bool, external: bool = False) -> Actor:
        """``check_admin``: this action depends on admin rights (asking and voting do not).
        ``external``: an outsider, never looked up as an admin."""
        vouch = check_admin and self.check_workspace_admins and not external
        is_admin = await self._is_workspace_admin(client, user_id) if vouch else False
        return Actor(PLATFORM, user_id, display_name=display_name, is_platform_admin=is_admin,
                     is_external=external)

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


class SlackIdentity:
    """``(Actor, Location)`` for each kind of payload: outsiders recognised, DMs checked."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.actors = ActorResolver(check_workspace_admins=config.slack_workspace_admins_are_admins)
        self._im_owner: OrderedDict[str, str] = OrderedDict()  # IM channel -> the user the bot's IM is with

    async def command(self, client: AsyncWebClient, command: dict[str, Any], context: Any, *,
                      check_admin: bool) -> tuple[Actor, Location]:
        home = home_teams(context, self.config)
        user = command.get("user_id", "")
        actor = await self.actors.actor(client, user, command.get("user_name"), check_admin=check_admin,
                                        external=is_outsider(home, command_teams(command)))
        location = command_location(command, context, home)
        if location.is_dm and not await self._is_own_im(client, location.channel_id, user):
            location = replace(location, is_dm=False)
        return actor, location

    async def event(self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any],
                    context: Any) -> tuple[Actor, Location]:
        external = is_outsider(home_teams(context, self.config), event_teams(event))
        actor = await self.actors.actor(client, event.get("user", ""), check_admin=False, external=external)
        return actor, event_location(body, event, context)

    async def action(self, client: AsyncWebClient, body: dict[str, Any], context: Any, *, check_admin: bool,
                     channel: str | None = None) -> tuple[Actor, Location]:
        external = is_outsider(home_teams(context, self.config), action_teams(body))
        actor = await self.actors.actor(client, (body.get("user") or {}).get("id", ""), check_admin=check_admin,
                                        external=external)
        return actor, action_location(body, context, channel)

    async def _is_own_im(self, client: AsyncWebClient, channel: str, user: str) -> bool:
        """Whether ``channel`` is the bot's IM with ``user`` (not a DM between two people)."""
        owner = self._im_owner.get(channel)
        if owner is None:
            try:
                info = (await client.conversations_info(channel=channel)).get("channel") or {}
            except SlackApiError as exc:  # not the bot's conversation (or no im:read): a channel
                log.info("conversations.info %s failed (%s); treating it as a channel", channel,
                         exc.response.get("error"))
                return False
            owner = (info.get("user") or "") if info.get("is_im") else ""
            self._im_owner[channel] = owner
            while len(self._im_owner) > IM_CACHE_SIZE:
                self._im_owner.popitem(last=False)
        return bool(owner) and owner == user
