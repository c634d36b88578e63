"""Loading states: the engine's retrieval progress, carried to the adapter and put in words.

The engine reports progress on the ask's own thread (``rag_engine.progress``); adapters show it
with async platform calls (Slack's ``assistant.threads.setStatus``). ``ProgressRelay`` hands each
event to the event loop without holding up retrieval, keeps the events in order, and lets the
core wait (briefly) for them before the answer is returned, so a status never lands after the
answer it announces.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable

from bot.sanitize import sanitize_output
from rag_engine.progress import ProgressEvent as ProgressEvent  # re-exported: the adapters' type

log = logging.getLogger(__name__)

TITLE_CHARS = 80  # a status line is one short line
DRAIN_TIMEOUT_S = 2.0  # longest the answer waits for its loading states to be shown

ShowProgress = Callable[[ProgressEvent], Awaitable[None]]  # an adapter's: shows one event (best effort)


def progress_text(event: ProgressEvent) -> str:
    """``searching 3 collections…`` / ``reading VPN Setup…``: the same words on every platform."""
    if event.stage == "searching":
        n = event.collections
        return f"searching {n} collection{'' if n == 1 else 's'}…"
    title = sanitize_output(" ".join(event.title.split()), limit=TITLE_CHARS) or "the documents"
    return f"reading {title}…"


class ProgressRelay:
    """The engine's ``on_progress`` for one ask: called on the ask's thread, shown on the event loop, in order."""

    def __init__(self, show: ShowProgress, loop: asyncio.AbstractEventLoop) -> None:
        self._show = show
        self._loop = loop
        self._last: concurrent.futures.Future[None] | None = None

    def __call__(self, event: ProgressEvent) -> None:
        """Schedule ``event`` after the ones before it; never waits for the platform."""
        self._last = asyncio.run_coroutine_threadsafe(self._after(self._last, event), self._loop)

    async def _after(self, previous: concurrent.futures.Future[None] | None, event: ProgressEvent) -> None:
        if previous is not None:
            await asyncio.wait([asyncio.wrap_future(previous)])  # its outcome is its own business
        try:
            await self._show(event)
        except Exception as exc:  # noqa: BLE001 - a loading state must never cost the answer
            log.debug("showing progress failed: %s", exc)

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Wait up to ``timeout_s`` for the events reported so far to be shown."""
        if self._last is not None:
            await asyncio.wait([asyncio.wrap_future(self._last)], timeout=timeout_s)
