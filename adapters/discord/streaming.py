"""Live replies in Discord: a status line while the core searches, and stream replies shown by message edits.

The status line (a reply to the question, sent while retrieval runs, in the same progress words
as Slack's loading state: "Searching 2 collections…", then "Reading VPN Setup…") is the message
the answer is later written into, so it is edited away, not left behind.
A stream reply (``RAGBOT_REPLY_MODE=stream``) grows in that message by edits, at most one per
``EDIT_INTERVAL_S`` (Discord allows a handful of edits per channel every few seconds), cut to
Discord's 2,000 characters with an ellipsis while it is live; the final edit carries the answer as
every reply is rendered (split into more messages when long), with its sources and buttons.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from adapters.discord.delivery import ASKER_ONLY, NO_MENTIONS, edit_reply, send_replies
from adapters.discord.markup import unlink
from adapters.discord.render import MESSAGE_LIMIT, OutgoingMessage, render_reply
from bot.progress import ProgressEvent, progress_text
from bot.sanitize import truncate
from bot.types import FinalReply, Reply

log = logging.getLogger(__name__)

EDIT_INTERVAL_S = 1.0  # at most one edit per message per this many seconds (read at call time: tests shorten it)
TAKE_WAIT_S = 5.0  # longest the answer waits for a status edit already on its way

Clock = Callable[[], float]


class StatusLine:
    """The core's retrieval progress in the words Slack's loading state uses ("Searching 2 collections…",
    then "Reading VPN Setup…"), posted as a reply to the question and edited as retrieval moves on, at
    most once per ``EDIT_INTERVAL_S``: an event that comes sooner is shown when the interval is up, and
    only the latest one. ``take`` ends it; the answer is then written into its message."""

    def __init__(self, channel: discord.abc.Messageable, question: discord.Message, clock: Clock = time.monotonic
                 ) -> None:
        self.channel = channel
        self.question = question
        self.clock = clock
        self.message: discord.Message | None = None
        self.edited_at = float("-inf")  # when the status line was last sent or edited (``clock`` time)
        self._wanted: str | None = None  # the latest event's words
        self._shown: str | None = None
        self._task: asyncio.Task[None] | None = None  # sends / edits the status line, one call at a time
        self._calling = False  # a send or edit is on its way to Discord
        self._closed = False  # taken (or it failed): no more calls

    async def show(self, event: ProgressEvent) -> None:
        """The core's ``on_progress``: shown now if the interval allows (the core waits, briefly, for that),
        else by a later edit that does not hold the answer up."""
        if self._closed:
            return
        self._wanted = status_text(event)
        if self._task is not None and not self._task.done():
            return  # a call or a wait for the interval is under way: the latest words follow it
        self._task = asyncio.ensure_future(self._catch_up())
        if self._wait_s() <= 0:
            await asyncio.wait([self._task])  # one call, shown before the answer

    async def take(self, target: discord.abc.Messageable) -> discord.Message | None:
        """The status message to write the answer into when it goes to ``target``; else it is deleted.
        A pending edit is dropped; one already on its way is let finish, so it cannot land over the answer."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            if not self._calling:
                task.cancel()
            await asyncio.wait([task], timeout=TAKE_WAIT_S)
            if not task.done():
                task.cancel()
                await asyncio.wait([task])
        message, self.message = self.message, None
        if message is None or getattr(target, "id", None) == message.channel.id:
            return message
        try:
            await message.delete()
        except discord.HTTPException as exc:
            log.info("could not remove status line %s: %s", message.id, exc)
        return None

    def _wait_s(self) -> float:
        return self.edited_at + EDIT_INTERVAL_S - self.clock()

    async def _catch_up(self) -> None:
        """Send the status line, then edit it to the latest words until it shows them, keeping to the pace."""
        try:
            while not self._closed and self._wanted is not None and self._wanted != self._shown:
                wait = self._wait_s()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                text = self._wanted
                self._calling = True
                try:
                    if self.message is None:
                        self.message = await self.channel.send(
                            content=text, allowed_mentions=NO_MENTIONS,
                            reference=self.question.to_reference(fail_if_not_exists=False))
                    else:
                        await self.message.edit(content=text, allowed_mentions=NO_MENTIONS)
                finally:
                    self._calling = False
                self._shown, self.edited_at = text, self.clock()
        except discord.HTTPException as exc:  # a status line is a courtesy: the answer goes out without it
            self._closed = True
            log.info("status line not shown (%s)", exc)


def status_text(event: ProgressEvent) -> str:
    """``🔎 Searching 2 collections…`` / ``🔎 Reading VPN Setup…``: ``progress_text``, as a line of its own."""
    text = progress_text(event)
    return f"🔎 {text[:1].upper()}{text[1:]}"


async def deliver(target: discord.abc.Messageable, messages: list[OutgoingMessage], *,
                  into: discord.Message | None, reply_to: discord.Message | None,
                  interaction_id: int | None) -> list[discord.Message]:
    """``send_replies``, writing the first message into ``into`` (a status line or the live text) when given."""
    if into is None:
        return await send_replies(target, messages, reply_to=reply_to, interaction_id=interaction_id)
    first, *rest = messages
    await edit_reply(into, first, interaction_id=interaction_id)
    return [into, *await send_replies(target, rest, reply_to=reply_to, interaction_id=interaction_id)]


def live_content(text: str) -> str:
    """The live text as message content: no masked link, within 2,000 characters (an ellipsis marks the cut)."""
    return truncate(unlink(text), MESSAGE_LIMIT) or "…"


@dataclass(frozen=True, slots=True)
class Outlet:
    """Where a stream reply goes: how the live message is sent, and how any further messages follow it."""

    send_live: Callable[[str], Awaitable[discord.Message]]
    send_more: Callable[[list[OutgoingMessage], int | None], Awaitable[list[discord.Message]]]

    @classmethod
    def channel(cls, target: discord.abc.Messageable, reply_to: discord.Message | None) -> Outlet:
        """Messages in ``target``, replies to the question when ``reply_to`` (only the first pings the asker)."""
        async def send_live(content: str) -> discord.Message:
            if reply_to is None:
                return await target.send(content=content, allowed_mentions=NO_MENTIONS)
            return await target.send(content=content, allowed_mentions=ASKER_ONLY,
                                     reference=reply_to.to_reference(fail_if_not_exists=False))

        async def send_more(messages: list[OutgoingMessage], interaction_id: int | None) -> list[discord.Message]:
            return await send_replies(target, messages, reply_to=reply_to, interaction_id=interaction_id)

        return cls(send_live, send_more)


async def stream_reply(outlet: Outlet, reply: Reply, *, into: discord.Message | None = None,
                       edited_at: float = float("-inf"), clock: Clock = time.monotonic
                       ) -> tuple[Reply, list[discord.Message]]:
    """Show ``reply.stream`` in one message (``into``, last edited at ``edited_at``: the pace carries over;
    else one ``outlet`` sends), then the final reply."""
    if reply.stream is None:
        raise ValueError("not a stream reply")
    message = into
    last_edit = edited_at if into is not None else float("-inf")
    final: FinalReply | None = None
    async for update in reply.stream():
        if isinstance(update, FinalReply):
            final = update
            break
        if clock() - last_edit < EDIT_INTERVAL_S:
            continue  # the next edit shows this text too (each LiveText carries all of it)
        content = live_content(update.text)
        try:
            if message is None:
                message = await outlet.send_live(content)
            else:
                await message.edit(content=content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:  # live text is a courtesy: the final message is what counts
            log.info("live text not shown (%s); the answer follows when final", exc)
        last_edit = clock()
    if final is None:
        raise RuntimeError("the stream ended without a final reply")
    done = final.reply
    messages = render_reply(done)
    if message is None:
        return done, await outlet.send_more(messages, done.interaction_id)
    wait = last_edit + EDIT_INTERVAL_S - clock()
    if wait > 0:
        await asyncio.sleep(wait)  # the final edit keeps to the same pace
    first, *rest = messages
    await edit_reply(message, first, interaction_id=done.interaction_id)
    return done, [message, *await outlet.send_more(rest, done.interaction_id)]
