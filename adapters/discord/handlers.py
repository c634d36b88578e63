"""What the bot does for each Discord event: translate to a core call, render the result.

Every handler ends in a message to the user — an answer, an honest refusal,
or a short error with a reference to quote — and never lets an exception
escape into discord.py's loop (the client stays connected either way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import discord

from adapters.discord.context import (
    actor_of,
    addresses_bot,
    guild_id_of,
    is_thread,
    location_of,
    strip_own_mentions,
)
from adapters.discord.delivery import (
    NO_MENTIONS,
    edit_reply,
    send_ephemeral_texts,
    send_followups,
    send_replies,
    typing_in,
)
from adapters.discord.render import OutgoingMessage, render_action, render_reply
from adapters.discord.streaming import Outlet, StatusLine, deliver, stream_reply
from adapters.discord.views import CorrectionModal
from bot import messages
from bot.sanitize import truncate
from bot.types import ActionResult, AskRequest, Location, Reply

if TYPE_CHECKING:
    from discord.abc import MessageableChannel  # a type alias discord.py defines for type checkers only

    from adapters.discord.client import RagbotClient

log = logging.getLogger(__name__)

THREAD_NAME_LIMIT = 100
VOTES = {"up": 1, "down": -1}
CONVERSATION_KINDS = frozenset({"answer", "not_found", "ask_back"})


def error_reply(reference: str) -> Reply:
    return Reply("error", messages.failed(reference))


# -- mentions and DMs ------------------------------------------------------------------------------

async def on_message(client: RagbotClient, message: discord.Message) -> None:
    me = client.user
    if me is None or not addresses_bot(message, me):
        return
    try:
        await answer_message(client, message, me)
    except Exception:
        log.exception("failed to answer message %s", message.id)
        with _best_effort():
            await send_replies(message.channel, render_reply(error_reply(f"message {message.id}")),
                               reply_to=message, interaction_id=None)


async def answer_message(client: RagbotClient, message: discord.Message, me: discord.ClientUser) -> None:
    channel = message.channel
    if isinstance(channel, discord.PartialMessageable) and message.guild is not None:
        channel = await _full_channel(client, channel)
    role = message.guild.self_role if message.guild is not None else None
    text = strip_own_mentions(message.content, me.id, role.id if role else None)
    thread_id = await client.conversations.thread_id(message) if not is_thread(channel) else str(channel.id)
    req = AskRequest(actor=actor_of(message.author), location=location_of(channel, guild_id_of(message)),
                     text=text, thread_id=thread_id, event_id=f"message:{message.id}")
    # answer-first and stream replies: a status line while the core searches, which the answer is written into
    status = StatusLine(channel, message) if client.core.config.reply_mode != "final" else None
    # the question is on its way before the typing request goes out: no added latency
    asking = asyncio.ensure_future(client.core.ask(req, on_progress=status.show if status else None))
    async with typing_in(channel):
        try:
            reply = await asking
        except Exception:
            log.exception("the core failed on message %s", message.id)
            reply = error_reply(f"message {message.id}")
    messages = render_reply(reply) if reply.stream is None else []
    if not messages and reply.stream is None:  # a re-delivered event: it was answered the first time
        return
    target, reply_to = await _answer_target(client, message, channel, text, reply)
    into = await status.take(target) if status else None
    if reply.stream is not None:  # RAGBOT_REPLY_MODE=stream: the model's text as it is written, by edits
        async with typing_in(target):
            reply, sent = await stream_reply(Outlet.channel(target, reply_to), reply, into=into,
                                             edited_at=status.edited_at if status else float("-inf"))
    else:
        sent = await deliver(target, messages, into=into, reply_to=reply_to, interaction_id=reply.interaction_id)
    for posted in sent:
        client.conversations.remember(posted.id, thread_id)
    if len(sent) == 1 and reply.refine is not None:
        async with typing_in(target):  # still working: on the model's answer
            await _refine_in_place(sent[0], reply)


async def _answer_target(client: RagbotClient, message: discord.Message, channel: object, question: str,
                         reply: Reply) -> tuple[discord.abc.Messageable, discord.Message | None]:
    """Where the answer goes: a new thread on the question (``discord_reply_in_thread``, in a
    guild text channel, for a real answer — a usage hint or a refusal opens no thread), else
    a reply to the question."""
    if (client.config.discord_reply_in_thread and reply.kind in CONVERSATION_KINDS
            and message.guild is not None and isinstance(channel, discord.TextChannel)):
        try:
            thread = await message.create_thread(name=truncate(question or "question", THREAD_NAME_LIMIT),
                                                 auto_archive_duration=1440)
            return thread, None
        except discord.HTTPException as exc:  # e.g. no Create Public Threads permission
            log.warning("could not open a thread on message %s (%s); replying instead", message.id, exc)
    return message.channel, message


async def _full_channel(client: RagbotClient, channel: discord.PartialMessageable) -> MessageableChannel:
    """A channel the cache doesn't know (e.g. a thread created while offline): ask Discord
    what it is, so threads are recognised and scoped to their parent."""
    try:
        # a message arrived in it, so whatever Discord says it is can be written to
        return cast("MessageableChannel", await client.fetch_channel(channel.id))
    except discord.HTTPException:
        return channel


# -- /ask -------------------------------------------------------------------------------------------

async def on_ask_command(interaction: discord.Interaction[RagbotClient], question: str) -> None:
    client = interaction.client
    ephemeral = client.core.config.answer_ephemeral
    # Discord allows 3 s before the first response; the answer comes as a follow-up
    await interaction.response.defer(thinking=True, ephemeral=ephemeral)
    channel = interaction.channel
    thread_id = str(interaction.channel_id) if is_thread(channel) else str(interaction.id)
    req = AskRequest(actor=actor_of(interaction.user, channel_permissions=interaction.permissions),
                     location=location_of(channel or _bare_channel(interaction), interaction.guild_id),
                     text=question, thread_id=thread_id, event_id=f"interaction:{interaction.id}",
                     ephemeral=ephemeral)  # an answer only the asker sees is no one else's thread history
    try:
        reply = await client.core.ask(req)
    except Exception:
        log.exception("the core failed on interaction %s", interaction.id)
        reply = error_reply(f"interaction {interaction.id}")
    if reply.stream is not None:  # RAGBOT_REPLY_MODE=stream: the first follow-up grows by edits
        reply, streamed = await stream_reply(_followups(interaction, ephemeral), reply)
        for posted in streamed:
            client.conversations.remember(posted.id, thread_id)
        return
    messages = render_reply(reply)
    if not messages:
        with _best_effort():
            await interaction.delete_original_response()
        return
    sent = await send_followups(interaction, messages, ephemeral=ephemeral, interaction_id=reply.interaction_id)
    for posted in sent:
        client.conversations.remember(posted.id, thread_id)
    if len(sent) == 1 and reply.refine is not None:
        await _refine_in_place(sent[0], reply)


def _followups(interaction: discord.Interaction[RagbotClient], ephemeral: bool) -> Outlet:
    """A stream reply to ``/ask``: the live message is the first follow-up (it replaces "thinking…")."""
    async def send_live(content: str) -> discord.Message:
        return await interaction.followup.send(content=content, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS,
                                               wait=True)

    async def send_more(messages: list[OutgoingMessage], interaction_id: int | None) -> list[discord.Message]:
        return list(await send_followups(interaction, messages, ephemeral=ephemeral, interaction_id=interaction_id))

    return Outlet(send_live, send_more)


async def _refine_in_place(sent: discord.Message | discord.WebhookMessage, reply: Reply) -> None:
    """Answer-first: edit the posted answer into the model's, if it gives one that passes the grounding
    check; otherwise the quoted answer stays (the core logged why). Best effort: the quoted one is an answer."""
    if reply.refine is None:
        return
    refined = await reply.refine()
    if refined is None:
        return
    messages = render_reply(refined)
    if len(messages) != 1:  # one message can only become one message
        log.info("the refined answer %s needs %d messages: the quoted one stays", refined.interaction_id,
                 len(messages))
        return
    try:
        await edit_reply(sent, messages[0], interaction_id=refined.interaction_id)
    except discord.HTTPException as exc:
        log.warning("could not replace answer %s by the refined one: %s", refined.interaction_id, exc)


# -- /ragbot-admin -----------------------------------------------------------------------------------

async def on_admin_command(interaction: discord.Interaction[RagbotClient], command: str) -> None:
    """Admin commands; the core decides who may run them and audits every attempt."""
    client = interaction.client
    await interaction.response.defer(thinking=True, ephemeral=True)
    actor = actor_of(interaction.user, channel_permissions=interaction.permissions)
    result = await client.core.admin(actor, _interaction_location(interaction), command)
    await send_ephemeral_texts(interaction, render_action(result))


# -- buttons and the correction form -------------------------------------------------------------------

async def on_feedback_click(interaction: discord.Interaction[RagbotClient], action: str,
                            interaction_id: int) -> None:
    if action == "fix":
        await interaction.response.send_modal(CorrectionModal(interaction_id))
        return
    await interaction.response.defer(thinking=True, ephemeral=True)
    actor = actor_of(interaction.user, channel_permissions=interaction.permissions)
    result = await interaction.client.core.vote(actor, interaction_id, VOTES[action],
                                                location=_interaction_location(interaction))
    text = result.message
    if result.ok and action == "down" and result.data.get("changed"):
        text += " If you know the right answer, use **Suggest a correction**."
    await send_ephemeral_texts(interaction, [text])


async def on_correction_submit(interaction: discord.Interaction[RagbotClient], interaction_id: int,
                               text: str) -> None:
    await interaction.response.defer(thinking=True, ephemeral=True)
    actor = actor_of(interaction.user, channel_permissions=interaction.permissions)
    result = await interaction.client.core.correct(actor, interaction_id, text,
                                                   location=_interaction_location(interaction))
    if not result.ok:  # give the text back (as the Slack form does): nothing the user wrote is lost
        result = ActionResult(False, f"{result.message}\nHere is what you wrote, so you can try again:",
                              detail_lines=[text])
    await send_ephemeral_texts(interaction, render_action(result))


async def report_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Last resort for a failed command, button or form: log it, tell the user honestly."""
    log.error("interaction %s failed", interaction.id, exc_info=error)
    with _best_effort():
        await send_ephemeral_texts(interaction, [error_reply(f"interaction {interaction.id}").text])


def _bare_channel(interaction: discord.Interaction) -> discord.Object:
    return discord.Object(id=interaction.channel_id or 0)


def _interaction_location(interaction: discord.Interaction) -> Location:
    return location_of(interaction.channel or _bare_channel(interaction), interaction.guild_id)


@contextlib.contextmanager
def _best_effort() -> Iterator[None]:
    """Delivering an error report may itself fail (Discord down, channel gone): log, move on."""
    try:
        yield
    except discord.HTTPException as exc:
        log.warning("could not deliver a message: %s", exc)
