"""Answered threads on Slack: an accept reaction (✅) on a reply turns its thread into knowledge.

``reaction_added`` / ``reaction_removed`` events (scope ``reactions:read``) name the message and
who reacted. For the accept reaction only, the listener fetches the thread
(``conversations.replies``: ``channels:history`` / ``groups:history``), whether the channel is
private (``conversations.info``: ``channels:read`` / ``groups:read``; unknown counts as private,
the safe side) and the answer's permalink (``chat.getPermalink``), and hands them to the bot core
(``bot.answered_threads``), which decides whether the reaction counts and where the thread goes.
The reactor alone is told, in an ephemeral note, when an answer was saved or withdrawn.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.identity import PLATFORM, SlackIdentity, event_teams, home_teams, is_outsider, workspace_id
from bot.answered_threads import AnsweredThread, ThreadAcceptance, ThreadMessage
from bot.core import BotCore
from bot.types import Actor, Location

log = logging.getLogger(__name__)

THREAD_LIMIT = 200  # messages read of one thread (the question is the first, the answer one of them)
MAX_REACTORS = 10  # others still showing the accept reaction, checked before a withdrawal
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_USER = re.compile(r"<@([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")


def plain_text(mrkdwn: str) -> str:
    """A Slack message's text as readers would see it: links, mentions and escapes resolved."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), mrkdwn)
    text = _USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)).lstrip("@"), text)
    return html.unescape(text)


class AnsweredThreadListener:
    """The ``reaction_added`` / ``reaction_removed`` listeners."""

    def __init__(self, core: BotCore, identity: SlackIdentity) -> None:
        self.acceptance = ThreadAcceptance(core)
        self.identity = identity
        self.config = core.config

    def register(self, app: AsyncApp) -> None:
        app.event("reaction_added")(self.reaction_added)
        app.event("reaction_removed")(self.reaction_removed)

    async def reaction_added(self, body: dict, event: dict, client: AsyncWebClient,
                             context: AsyncBoltContext) -> None:
        await self._react(body, event, client, context, added=True)

    async def reaction_removed(self, body: dict, event: dict, client: AsyncWebClient,
                               context: AsyncBoltContext) -> None:
        await self._react(body, event, client, context, added=False)

    async def _react(self, body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext, *,
                     added: bool) -> None:
        item = event.get("item") or {}
        user, channel, ts = event.get("user") or "", item.get("channel") or "", item.get("ts") or ""
        if not self.acceptance.is_accept_reaction(event.get("reaction") or "") or item.get("type") != "message" \
                or not (user and channel and ts):
            return  # every other reaction costs nothing
        try:
            found = await self._thread(body, client, context, channel, ts)
            if found is None:
                return
            thread, answer_message = found
            actor = await self._actor(client, context, event, user, thread)
            if added:
                result = await self.acceptance.accept(actor, thread)
                tell = result.ok and bool(result.data.get("new"))
            else:
                result = await self.acceptance.withdraw(actor, thread,
                                                        await self._still_reacting(client, context, answer_message,
                                                                                   thread, user))
                tell = result.ok
            if tell:
                await _note(client, channel, user, thread.thread_id, result.message)
        except Exception:  # a reaction must never break the app; the log says why
            log.exception("accept reaction on %s/%s failed", channel, ts)

    async def _thread(self, body: dict, client: AsyncWebClient, context: AsyncBoltContext, channel: str,
                      ts: str) -> tuple[AnsweredThread, dict[str, Any]] | None:
        """The thread of message ``ts`` and that message; None when it is not a reply in a thread."""
        messages = await _replies(client, channel, ts)
        answer = next((m for m in messages if m.get("ts") == ts), None)
        thread_ts = (answer or {}).get("thread_ts")
        if answer is None or not thread_ts or thread_ts == ts:
            return None  # not a reply in a thread (or gone)
        if not messages or messages[0].get("ts") != thread_ts:  # the reply alone: read the thread from its start
            messages = await _replies(client, channel, thread_ts)
        question = next((m for m in messages if m.get("ts") == thread_ts), None)
        if question is None:
            return None
        kind = await _channel_kind(client, channel)
        location = Location(PLATFORM, workspace_id(body, context), channel, is_dm=kind == "im")
        thread = AnsweredThread(location, thread_ts, _message(question), _message(answer),
                                await _permalink(client, channel, ts), private=kind != "public",
                                label=f"Slack thread in {channel}")
        return thread, answer

    async def _actor(self, client: AsyncWebClient, context: AsyncBoltContext, event: dict, user: str,
                     thread: AnsweredThread) -> Actor:
        external = is_outsider(home_teams(context, self.config), event_teams(event))
        # the asker needs no admin lookup (users.info); anyone else's reaction counts only as an admin's
        return await self.identity.actors.actor(client, user, check_admin=user != thread.question.author_id,
                                                external=external)

    async def _still_reacting(self, client: AsyncWebClient, context: AsyncBoltContext, message: dict[str, Any],
                              thread: AnsweredThread, removed_by: str) -> list[Actor]:
        """Who else still shows the accept reaction on the answer (a few, each checked like the reactor)."""
        users = [u for r in message.get("reactions") or [] if self.acceptance.is_accept_reaction(r.get("name", ""))
                 for u in r.get("users") or [] if u != removed_by]
        return [await self._actor(client, context, {}, u, thread) for u in users[:MAX_REACTORS]]


def _message(raw: dict[str, Any]) -> ThreadMessage:
    is_bot = bool(raw.get("bot_id")) or raw.get("subtype") == "bot_message"
    return ThreadMessage(str(raw.get("ts", "")), str(raw.get("user") or raw.get("bot_id") or ""),
                         plain_text(raw.get("text") or ""), is_bot=is_bot)


async def _replies(client: AsyncWebClient, channel: str, ts: str) -> list[dict[str, Any]]:
    try:
        response = await client.conversations_replies(channel=channel, ts=ts, limit=THREAD_LIMIT)
    except SlackApiError as exc:  # no history scope, not a member, or gone: nothing to accept
        log.info("conversations.replies %s/%s failed: %s", channel, ts, exc.response.get("error"))
        return []
    return list(response.get("messages") or [])


async def _channel_kind(client: AsyncWebClient, channel: str) -> str:
    """``public``, ``private`` (private channel, group DM, or unknown: the safe side) or ``im``."""
    try:
        info = (await client.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError as exc:
        log.info("conversations.info %s failed (%s); treating it as private", channel, exc.response.get("error"))
        return "private"
    if info.get("is_im"):
        return "im"
    shared_out = info.get("is_ext_shared") or info.get("is_shared")
    public = info.get("is_channel") and not info.get("is_private") and not info.get("is_mpim") and not shared_out
    return "public" if public else "private"


async def _permalink(client: AsyncWebClient, channel: str, ts: str) -> str | None:
    try:
        return (await client.chat_getPermalink(channel=channel, message_ts=ts)).get("permalink")
    except SlackApiError as exc:
        log.info("chat.getPermalink %s/%s failed: %s", channel, ts, exc.response.get("error"))
        return None


async def _note(client: AsyncWebClient, channel: str, user: str, thread_ts: str, text: str) -> None:
    try:
        await client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except SlackApiError as exc:  # cosmetic: the answer is saved either way
        log.info("could not tell %s in %s: %s", user, channel, exc.response.get("error"))
