"""Who asked, where, and in which conversation: Discord objects → ``Actor`` / ``Location`` / thread id.

Conversations (the ``thread_id`` the core keys history on, together with the
channel id) are:

* a Discord thread: the thread's id, with the thread's *parent* channel as the
  location (so the parent channel's collection access applies, and a thread the
  bot opened from message M has id M: the first answer and the follow-ups
  share a key);
* a reply chain: the id of the chain's first message, found by walking the
  replies back (a bounded walk; each answer the bot posts is remembered so the
  usual follow-up needs no walk at all);
* a ``/ask`` answer: the slash command's interaction id, which Discord puts on
  the answer message as ``interaction_metadata`` — so replying to it continues
  that conversation.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

import discord

from bot.types import Actor, Location

log = logging.getLogger(__name__)

PLATFORM = "discord"
THREAD_TYPES = frozenset({discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                          discord.ChannelType.news_thread})


def actor_of(user: discord.abc.User, *, channel_permissions: discord.Permissions | None = None) -> Actor:
    """The core's ``Actor``: Manage Server (guild-wide or as Discord resolved it for this
    interaction) vouches for a platform admin; role ids are matched against settings."""
    roles: tuple[str, ...] = ()
    manages = False
    if isinstance(user, discord.Member):
        roles = tuple(str(r.id) for r in user.roles if not r.is_default())
        manages = user.guild_permissions.manage_guild
    if channel_permissions is not None and channel_permissions.manage_guild:
        manages = True
    return Actor(PLATFORM, str(user.id), display_name=user.display_name, is_platform_admin=manages,
                 role_ids=roles)


def is_thread(channel: object) -> bool:
    return isinstance(channel, discord.Thread) or getattr(channel, "type", None) in THREAD_TYPES


def location_of(channel: object, guild_id: int | None) -> Location:
    """Threads count as their parent channel (its collection access applies)."""
    if guild_id is None:
        return Location(PLATFORM, "", str(getattr(channel, "id", "")), is_dm=True)
    channel_id = getattr(channel, "id", 0)
    parent_id = getattr(channel, "parent_id", None)
    if is_thread(channel) and parent_id:
        channel_id = parent_id
    return Location(PLATFORM, str(guild_id), str(channel_id))


class ConversationTracker:
    """Finds the conversation (``thread_id``) a message belongs to; remembers the bot's answers."""

    def __init__(self, *, max_hops: int = 25, memory: int = 20_000) -> None:
        self.max_hops = max_hops
        self.memory = memory
        self._known: OrderedDict[int, str] = OrderedDict()

    def remember(self, message_id: int, thread_id: str) -> None:
        self._known[message_id] = thread_id
        self._known.move_to_end(message_id)
        while len(self._known) > self.memory:
            self._known.popitem(last=False)

    async def thread_id(self, message: discord.Message) -> str:
        if is_thread(message.channel):
            return str(message.channel.id)
        ref = message.reference
        if ref is None or ref.message_id is None:
            return str(message.id)
        found = await self._walk(message, ref, ref.message_id)
        self.remember(message.id, found)
        return found

    async def _walk(self, message: discord.Message, ref: discord.MessageReference, current: int) -> str:
        resolved = ref.resolved if isinstance(ref.resolved, discord.Message) else ref.cached_message
        for _ in range(self.max_hops):
            if current in self._known:
                return self._known[current]
            msg = resolved if resolved is not None and resolved.id == current else None
            if msg is None:
                msg = await self._fetch(message.channel, current)
            if msg is None:  # deleted or unreadable: the chain starts here as far as we can tell
                return str(current)
            meta = msg.interaction_metadata
            if meta is not None and msg.author.bot:
                return str(meta.id)  # an /ask answer: the conversation is that command's
            nxt = msg.reference
            if nxt is None or nxt.message_id is None:
                return str(msg.id)
            current = nxt.message_id
            resolved = nxt.resolved if isinstance(nxt.resolved, discord.Message) else nxt.cached_message
        log.info("reply chain longer than %d hops; treating message %s as its start", self.max_hops, current)
        return str(current)

    @staticmethod
    async def _fetch(channel: discord.abc.Messageable, message_id: int) -> discord.Message | None:
        try:
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            return None


_MENTION_TOKEN = "<@{id}>|<@!{id}>"


def strip_own_mentions(content: str, user_id: int, role_id: int | None = None) -> str:
    """Remove the bot's own mention tokens (user or managed role) anywhere in the text."""
    pattern = _MENTION_TOKEN.format(id=user_id)
    if role_id is not None:
        pattern += f"|<@&{role_id}>"
    return " ".join(re.sub(pattern, " ", content).split())


def addresses_bot(message: discord.Message, me: discord.ClientUser) -> bool:
    """A DM from a person, or a guild message that mentions the bot (user or its managed role).
    ``@everyone``/``@here`` alone never counts."""
    if message.author.bot or message.author.id == me.id:
        return False
    if guild_id_of(message) is None:
        return True
    if me.id in message.raw_mentions:
        return True
    role = message.guild.self_role if message.guild is not None else None
    return role is not None and role.id in message.raw_role_mentions


def guild_id_of(message: discord.Message) -> int | None:
    """The guild a message was posted in; None for DMs (also when the guild isn't cached)."""
    if message.guild is not None:
        return message.guild.id
    return getattr(message.channel, "guild_id", None)
