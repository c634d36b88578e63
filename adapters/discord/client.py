"""The discord.py client: intents, safe mention defaults, commands, persistent buttons."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord import answered, handlers, slash_commands
from adapters.discord.config import DiscordConfig
from adapters.discord.context import ConversationTracker
from adapters.discord.delivery import NO_MENTIONS
from adapters.discord.views import FeedbackAction, FeedbackButton
from bot.core import BotCore
from bot.tenants import warn_if_unbound, workspace_allowed

log = logging.getLogger(__name__)

API_VERSION_PATH = "/api/v10"


# What the bot does in a channel: read it, answer (with embeds), follow replies back,
# and — with discord_reply_in_thread — open a thread on the question and post in it.
REQUIRED_PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                                           read_message_history=True, send_messages_in_threads=True,
                                           create_public_threads=True)
INVITE_SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=REQUIRED_PERMISSIONS, scopes=INVITE_SCOPES)


def intents() -> discord.Intents:
    """Only what the bot uses: guilds (channels, threads, roles), guild messages with their
    content (a privileged intent: enable "Message Content Intent" in the developer portal), DMs, and
    guild message reactions (an accept reaction marks an answered thread: adapters/discord/answered.py)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.message_content = True
    wanted.dm_messages = True
    wanted.guild_reactions = True
    return wanted


def apply_api_base(config: DiscordConfig) -> None:
    """Point discord.py's REST client at ``config.discord_api_base`` (a proxy, or a local fake
    in tests). The library keeps the base URL on its ``Route`` class, so this is process-wide."""
    if config.discord_api_base:
        base = config.discord_api_base.rstrip("/")
        if not base.endswith(API_VERSION_PATH):
            base += API_VERSION_PATH
        discord.http.Route.BASE = base


class RagbotClient(discord.Client):
    """A ``discord.Client`` bound to a ``BotCore``. Handlers reach the core through the client."""

    def __init__(self, core: BotCore, config: DiscordConfig, *, sync_commands: bool = False,
                 sync_guild_id: int | None = None) -> None:
        super().__init__(intents=intents(), allowed_mentions=NO_MENTIONS,
                         activity=discord.Activity(type=discord.ActivityType.listening, name="/ask"))
        self.core = core
        self.config = config
        self.conversations = ConversationTracker()
        self.tree = app_commands.CommandTree(self)
        self.sync_commands = sync_commands
        self.sync_guild_id = sync_guild_id
        slash_commands.register(self.tree)
        apply_api_base(config)

    async def setup_hook(self) -> None:
        warn_if_unbound(self.core.config, "discord")
        # buttons posted before a restart route by their custom id pattern
        self.add_dynamic_items(FeedbackButton)
        if self.sync_commands:
            await self._sync()

    async def _sync(self) -> None:
        if self.sync_guild_id:
            guild = discord.Object(id=self.sync_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()  # global commands may take a while to appear
        log.info("synced %d application commands%s", len(synced),
                 f" to guild {self.sync_guild_id}" if self.sync_guild_id else "")

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s (id %s) in %d guild(s)", self.user, getattr(self.user, "id", "?"),
                 len(self.guilds))
        if self.application_id:
            log.info("invite the bot to a server with %s", invite_url(self.application_id))
        for guild in list(self.guilds):
            await self.leave_if_unlisted(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.leave_if_unlisted(guild)

    async def leave_if_unlisted(self, guild: discord.Guild) -> bool:
        """Leave a server RAGBOT_DISCORD_GUILD_IDS does not list, when configured to; True if it left.
        Staying, the bot answers there only that it is not enabled (the core decides)."""
        if workspace_allowed("discord", str(guild.id), self.core.config):
            return False
        if not self.config.discord_leave_unlisted_guilds:
            log.warning("in server %s (%s), which RAGBOT_DISCORD_GUILD_IDS does not list: the bot only says it is "
                        "not enabled there", guild.id, guild.name)
            return False
        try:
            await guild.leave()
        except discord.HTTPException as exc:
            log.warning("could not leave unlisted server %s: %s", guild.id, exc)
            return False
        log.warning("left server %s (%s): not in RAGBOT_DISCORD_GUILD_IDS", guild.id, guild.name)
        return True

    async def on_message(self, message: discord.Message) -> None:
        await handlers.on_message(self, message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await answered.on_reaction(self, payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await answered.on_reaction(self, payload, added=False)

    # -- FeedbackRoutes (adapters.discord.views): what buttons and the correction form do
    async def feedback_clicked(self, interaction: discord.Interaction[Any], action: FeedbackAction,
                               interaction_id: int) -> None:
        await handlers.on_feedback_click(interaction, action, interaction_id)

    async def correction_submitted(self, interaction: discord.Interaction[Any], interaction_id: int,
                                   text: str) -> None:
        await handlers.on_correction_submit(interaction, interaction_id, text)

    async def interaction_failed(self, interaction: discord.Interaction[Any], error: BaseException) -> None:
        await handlers.report_interaction_error(interaction, error)

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        # discord.py keeps the connection either way; make sure it's in our logs
        log.exception("unhandled error in %s", event_method)


class DiscordConfigError(ValueError):
    """Settings that cannot work (no token); the message says what to set."""


def check_credentials(config: DiscordConfig) -> str:
    """The bot token, or a clear message about how to set it (the token itself is never shown)."""
    token = config.discord_token.get_secret_value().strip() if config.discord_token else ""
    if not token:
        raise DiscordConfigError("RAGBOT_DISCORD_TOKEN is not set: copy the bot token from the Discord developer "
                                 "portal (Bot → Reset Token) into it. See docs/discord.md.")
    return token


async def serve(client: RagbotClient, token: str) -> None:
    """Log in, connect, and run until interrupted (discord.py reconnects on its own)."""
    try:
        async with client:
            await client.start(token, reconnect=True)
    except discord.LoginFailure:
        raise DiscordConfigError("Discord rejected the token in RAGBOT_DISCORD_TOKEN (reset it in the developer "
                                 "portal and set it again).") from None
    except discord.PrivilegedIntentsRequired:
        raise DiscordConfigError("the bot needs the Message Content intent: enable it in the developer portal "
                                 "(Bot → Privileged Gateway Intents). See docs/discord.md.") from None
