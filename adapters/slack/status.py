"""Slack's loading state in a thread (``assistant.threads.setStatus``), worded from the core's retrieval progress.

Shown as "<app> is searching 3 collections…", then "<app> is reading VPN Setup…"; Slack clears it when the
bot posts in the thread, and ``clear`` does when nothing was posted. Every call is best effort: a workspace
without the Agents & AI Apps feature (or the ``assistant:write`` scope) refuses it, and the answer goes on.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.progress import ProgressEvent, progress_text
from bot.sanitize import defuse_mentions

log = logging.getLogger(__name__)


class ThreadStatus:
    """The loading state of one thread; ``show`` is the core's ``on_progress``."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.shown = False  # a status is up (Slack would keep it two minutes unless the bot posts or clears it)

    async def show(self, event: ProgressEvent) -> None:
        if await self._set("is " + defuse_mentions(progress_text(event))):
            self.shown = True

    async def clear(self) -> None:
        if self.shown and await self._set(""):
            self.shown = False

    async def _set(self, status: str) -> bool:
        try:
            await self.client.assistant_threads_setStatus(channel_id=self.channel, thread_ts=self.thread_ts,
                                                          status=status)
            return True
        except Exception as exc:  # noqa: BLE001 - a loading state must never break the answer
            log.debug("assistant.threads.setStatus failed: %s", exc)
            return False
