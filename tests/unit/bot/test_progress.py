"""Loading-state words, and the relay that carries the engine's progress from the ask thread to the adapter."""

from __future__ import annotations

import asyncio
import threading

from bot.progress import ProgressEvent, ProgressRelay, progress_text


def test_progress_words():
    assert progress_text(ProgressEvent("searching", collections=3)) == "searching 3 collections…"
    assert progress_text(ProgressEvent("searching", collections=1)) == "searching 1 collection…"
    assert progress_text(ProgressEvent("reading", title="VPN\n  Setup")) == "reading VPN Setup…"
    assert progress_text(ProgressEvent("reading", title="")) == "reading the documents…"
    shown = progress_text(ProgressEvent("reading", title="<!channel> " + "x" * 500))
    assert "<!channel>" not in shown and len(shown) < 100


async def test_events_reported_on_another_thread_are_shown_in_order_and_a_failure_costs_nothing():
    shown: list[str] = []

    async def show(event: ProgressEvent) -> None:
        if event.title == "boom":
            raise RuntimeError("Slack said no")
        await asyncio.sleep(0.05 if event.stage == "searching" else 0)  # the first is the slowest to show
        shown.append(progress_text(event))

    relay = ProgressRelay(show, asyncio.get_running_loop())
    events = [ProgressEvent("searching", collections=2), ProgressEvent("reading", title="boom"),
              ProgressEvent("reading", title="VPN")]
    thread = threading.Thread(target=lambda: [relay(e) for e in events])  # as the engine does, on the ask thread
    thread.start()
    await asyncio.to_thread(thread.join)
    await relay.drain()
    assert shown == ["searching 2 collections…", "reading VPN…"]


async def test_drain_waits_only_so_long():
    release = asyncio.Event()

    async def stuck(event: ProgressEvent) -> None:
        await release.wait()

    relay = ProgressRelay(stuck, asyncio.get_running_loop())
    await asyncio.to_thread(relay, ProgressEvent("searching", collections=1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await relay.drain(timeout_s=0.2)
    assert 0.15 <= loop.time() - started < 2
    release.set()
