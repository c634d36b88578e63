"""Answered threads on Discord: an accept reaction (✅) on a reply turns its thread into knowledge.

``on_raw_reaction_add`` / ``on_raw_reaction_remove`` (the *guild message reactions* intent) name the
message and who reacted. For the accept reaction only, the message is fetched (*Read Message
History*) and its question found: in a thread (a forum post, or a thread opened on a message) the
thread's starter message; outside threads the message it replies to. The channel counts as
private when ``@everyone`` cannot view it, and a private thread always does. The bot core
(``bot.answered_threads``) decides whether the reaction counts and where the thread goes; the
answer's jump URL is the document's link.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord.context import PLATFORM, actor_of, is_thread, location_of
from bot.answered_threads import AnsweredThread, ThreadAcceptance, ThreadMessage
from bot.types import Actor

if TYPE_CHECKING:
    from adapters.discord.client import RagbotClient

log = logging.getLogger(__name__)

MAX_REACTORS = 10  # others still showing the accept reaction, checked before a withdrawal


async def on_reaction(client: RagbotClient, payload: discord.RawReactionActionEvent, *, added: bool) -> None:
    """Accept (``added``) or withdraw the answer ``payload`` reacted to; never raises."""
    acceptance = ThreadAcceptance(client.core)
    emoji = payload.emoji.name or ""
    if payload.guild_id is None or not (acceptance.is_accept_reaction(emoji)
                                        or acceptance.is_accept_reaction(str(payload.emoji))):
        return  # DMs and every other reaction cost nothing
    try:
        channel = client.get_channel(payload.channel_id) or await client.fetch_channel(payload.channel_id)
        if not isinstance(channel, (discord.TextChannel, discord.Thread)):
            return
        answer = await channel.fetch_message(payload.message_id)
        question = await _question(channel, answer)
        if question is None:
            return
        thread_id = str(channel.id) if is_thread(channel) else str(question.id)
        thread = AnsweredThread(location_of(channel, payload.guild_id), thread_id, _message(question),
                                _message(answer), answer.jump_url, private=_private(channel),
                                label=f"Discord thread in #{getattr(channel, 'name', channel.id)}")
        actor = _actor(client, payload)
        if added:
            result = await acceptance.accept(actor, thread)
        else:
            result = await acceptance.withdraw(actor, thread, await _still_reacting(client, answer, payload))
        log.info("accept reaction by %s on %s: %s", actor.user_key, thread.uri, result.message)
    except discord.HTTPException as exc:  # gone, or no Read Message History: nothing to accept
        log.info("accept reaction on %s/%s: Discord refused (%s)", payload.channel_id, payload.message_id, exc)
    except Exception:  # a reaction must never break the client; the log says why
        log.exception("accept reaction on %s/%s failed", payload.channel_id, payload.message_id)


async def _question(channel: discord.TextChannel | discord.Thread, answer: discord.Message) -> discord.Message | None:
    """The message ``answer`` answers: its thread's starter, or the message it replies to; None if neither."""
    if isinstance(channel, discord.Thread):
        if channel.starter_message is not None:
            return channel.starter_message
        for where in (channel, channel.parent):  # a forum post's starter is in the thread; else in the parent
            if where is not None and isinstance(where, discord.abc.Messageable):
                try:
                    return await where.fetch_message(channel.id)
                except discord.NotFound:
                    continue
        async for first in channel.history(limit=1, oldest_first=True):  # a thread started on no message
            return first
        return None
    ref = answer.reference
    if ref is None or ref.message_id is None:
        return None
    if isinstance(ref.resolved, discord.Message):
        return ref.resolved
    try:
        return await channel.fetch_message(ref.message_id)
    except discord.NotFound:
        return None


def _message(message: discord.Message) -> ThreadMessage:
    return ThreadMessage(str(message.id), str(message.author.id), message.clean_content,
                         is_bot=message.author.bot or message.webhook_id is not None)


def _private(channel: discord.TextChannel | discord.Thread) -> bool:
    """Whether only some members can read ``channel`` (a private thread; a channel ``@everyone`` cannot view)."""
    if isinstance(channel, discord.Thread):
        if channel.type is discord.ChannelType.private_thread:
            return True
        parent: Any = channel.parent
        if parent is None:
            return True  # unknown: the safe side
        channel = parent
    return not channel.permissions_for(channel.guild.default_role).view_channel


def _actor(client: RagbotClient, payload: discord.RawReactionActionEvent) -> Actor:
    member = payload.member
    if member is None and payload.guild_id is not None:  # a removal carries no member: the cache may know them
        guild = client.get_guild(payload.guild_id)
        member = guild.get_member(payload.user_id) if guild is not None else None
    return actor_of(member) if member is not None else Actor(PLATFORM, str(payload.user_id))


async def _still_reacting(client: RagbotClient, answer: discord.Message,
                          payload: discord.RawReactionActionEvent) -> list[Actor]:
    """Who else still shows the accept reaction on ``answer`` (a few)."""
    found: list[Actor] = []
    for reaction in answer.reactions:
        name = reaction.emoji if isinstance(reaction.emoji, str) else reaction.emoji.name or ""
        if str(name) != (payload.emoji.name or "") or not reaction.count:
            continue
        async for user in reaction.users(limit=MAX_REACTORS + 1):
            if user.id != payload.user_id and len(found) < MAX_REACTORS:
                found.append(actor_of(user))
    return found
