"""Sending rendered messages: to a channel (as replies) or as interaction follow-ups.

Every send states ``allowed_mentions`` explicitly (the client default says the
same): nothing the bot posts can ping ``@everyone``, ``@here``, a role or a
user named in a document or generated text. The only notification allowed is
the reply ping to the person who asked.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import discord

from adapters.discord.render import OutgoingMessage
from adapters.discord.views import feedback_view

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
ASKER_ONLY = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


async def send_replies(channel: discord.abc.Messageable, messages: list[OutgoingMessage], *,
                       reply_to: discord.Message | None, interaction_id: int | None) -> list[discord.Message]:
    """Post ``messages`` in order. With ``reply_to`` each one is a reply to the question, so any
    of them continues the same reply chain; only the first pings the asker."""
    sent: list[discord.Message] = []
    reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to is not None else None
    for i, msg in enumerate(messages):
        kwargs: dict = {"content": msg.content or None, "embeds": msg.embeds,
                        "allowed_mentions": ASKER_ONLY if (i == 0 and reference) else NO_MENTIONS}
        if reference is not None:
            kwargs["reference"] = reference
        if msg.with_feedback and interaction_id is not None:
            kwargs["view"] = feedback_view(interaction_id)
        sent.append(await channel.send(**kwargs))
    return sent


async def send_followups(interaction: discord.Interaction, messages: list[OutgoingMessage], *,
                         ephemeral: bool, interaction_id: int | None) -> list[discord.WebhookMessage]:
    """Answer a deferred interaction: the first follow-up replaces the "thinking…" message."""
    sent: list[discord.WebhookMessage] = []
    for msg in messages:
        kwargs: dict = {"content": msg.content or discord.utils.MISSING, "embeds": msg.embeds,
                        "ephemeral": ephemeral, "allowed_mentions": NO_MENTIONS, "wait": True}
        if msg.with_feedback and interaction_id is not None:
            kwargs["view"] = feedback_view(interaction_id)
        sent.append(await interaction.followup.send(**kwargs))
    return sent


async def edit_reply(message: discord.Message | discord.WebhookMessage, replacement: OutgoingMessage, *,
                     interaction_id: int | None) -> None:
    """Replace a sent answer in place (answer-first replies): its text, sources and buttons."""
    kwargs: dict = {"content": replacement.content or None, "embeds": replacement.embeds,
                    "allowed_mentions": NO_MENTIONS}
    if replacement.with_feedback and interaction_id is not None:
        kwargs["view"] = feedback_view(interaction_id)
    await message.edit(**kwargs)


async def send_ephemeral_texts(interaction: discord.Interaction, texts: list[str]) -> None:
    """Private notes to whoever clicked or ran a command (the response, or follow-ups once used)."""
    for text in texts:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


@contextlib.asynccontextmanager
async def typing_in(channel: discord.abc.Messageable) -> AsyncIterator[None]:
    """The typing indicator while the bot works; best effort (a missing permission or a
    hiccup must not cost the answer)."""
    typing = channel.typing()
    indicator: discord.context_managers.Typing | None = typing
    try:
        await typing.__aenter__()
    except discord.HTTPException as exc:
        log.info("typing indicator unavailable: %s", exc)
        indicator = None
    try:
        yield
    finally:
        if indicator is not None:
            await indicator.__aexit__(None, None, None)
