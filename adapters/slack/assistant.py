"""The Assistant container (Slack's split-view AI app): suggested prompts, and questions asked in it.

Opening the container (``assistant_thread_started``) or switching the channel beside it
(``assistant_thread_context_changed``) offers the questions most asked and answered where the user
is (``BotCore.suggested_questions``: the access rules of the assistant thread, a DM, apply). A
question typed in the container is a DM in a thread: answered by the same path as mentions and DMs.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAssistant
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.handlers import SlackHandlers
from adapters.slack.split import truncate
from bot.sanitize import defuse_mentions

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Often asked here"
PROMPT_TITLE_CHARS = 75  # the button shows the start of the question; the message sent is all of it


def build_assistant(handlers: SlackHandlers) -> AsyncAssistant:
    """The ``AsyncAssistant`` middleware for ``AsyncApp.assistant``; without it the container would answer
    nothing but DMs (and offer no prompts)."""
    listeners = _AssistantListeners(handlers)
    assistant = AsyncAssistant(logger=logging.getLogger("adapters.slack.bolt"))
    assistant.thread_started(listeners.offer_prompts)
    assistant.thread_context_changed(listeners.offer_prompts)  # in place of Bolt's, which saves the context
    assistant.user_message(handlers.direct_message)
    return assistant


class _AssistantListeners:
    def __init__(self, handlers: SlackHandlers) -> None:
        self.handlers = handlers

    async def offer_prompts(self, body: dict, event: dict, client: AsyncWebClient, context: AsyncBoltContext) -> None:
        thread = event.get("assistant_thread") or {}
        user, channel, thread_ts = thread.get("user_id"), thread.get("channel_id"), thread.get("thread_ts")
        if not user or not channel or not thread_ts:
            return
        viewing = (thread.get("context") or {}).get("channel_id") or None
        try:
            # the container is the user's DM with the bot: its location, rules and workspace are the DM's
            actor, location = await self.handlers.identity.event(
                client, body, {"user": user, "channel": channel, "channel_type": "im"}, context)
            questions = await self.handlers.core.suggested_questions(actor, location, context_channel=viewing)
            if questions:
                await client.assistant_threads_setSuggestedPrompts(channel_id=channel, thread_ts=thread_ts,
                                                                   title=PROMPTS_TITLE, prompts=prompts(questions))
        except Exception as exc:  # noqa: BLE001 - prompts are a courtesy; the container works without them
            log.warning("suggested prompts for %s failed: %s", channel, exc)


def prompts(questions: list[str]) -> list[dict[str, Any]]:
    """``assistant.threads.setSuggestedPrompts`` entries: a short title, the whole question as the message."""
    return [{"title": defuse_mentions(truncate(q, PROMPT_TITLE_CHARS)), "message": defuse_mentions(q)}
            for q in questions]
