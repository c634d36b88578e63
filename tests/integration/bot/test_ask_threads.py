"""A burst of asks reaches the generation queue at once, so its timeout (not a thread pool) decides who waits."""

from __future__ import annotations

import asyncio
import time

from app.configs import bot_config, engine_config
from bot.core import BotCore
from bot.fallback_notes import fallback_note
from bot.types import Actor, AskRequest, Location
from rag_engine.engine import RagEngine
from rag_engine.values import FallbackCode
from tests.conftest import make_settings
from tests.integration.rag_engine.test_generation_queue import QUESTION, BlockingGenerator

ASKS = 12  # twice the default executor's threads on a 2-core machine: min(32, cores + 4) = 6
HERE = Location("slack", "T1", "C1")


BUSY = fallback_note(FallbackCode.QUEUE_TIMEOUT)


async def _busy_before_release(db, embedder, scratch_dir, tmp_path, ask_threads: int) -> int:
    """How many asks of a burst were answered "model busy" while the one generation still held its slot."""
    gen = BlockingGenerator()
    limits = {"rate_limit_user_burst": 100, "rate_limit_channel_burst": 100, "min_grounded_fraction": 0,
              "generation_concurrency": 1, "generation_queue_timeout_s": 0.5}
    engine = RagEngine(engine_config(make_settings(scratch_dir, **limits)), db=db, embedder=embedder, generator=gen,
                       reranker=None)
    (tmp_path / "vpn.md").write_text("# VPN\n\nRequest VPN access in #it-help with /it vpn-request.\n")
    engine.ingest([tmp_path], "default")
    core = BotCore(bot_config(make_settings(scratch_dir, ask_threads=ask_threads, **limits)), engine)
    started = time.monotonic()
    asks = [asyncio.ensure_future(core.ask(AskRequest(Actor("slack", f"U{i}"), HERE, QUESTION))) for i in range(ASKS)]
    try:
        # the one generation holds its slot for up to 10 s; the others' queue timeout is 0.5 s
        await asyncio.wait(asks, timeout=4)
        busy = sum(1 for a in asks if a.done() and a.result().fallback_note == BUSY)
    finally:
        gen.release.set()
        await asyncio.gather(*asks)
        core.close()
    assert time.monotonic() - started < 30
    return busy


async def test_every_ask_of_a_burst_is_answered_busy_within_the_queue_timeout(db, embedder, scratch_dir, tmp_path):
    assert await _busy_before_release(db, embedder, scratch_dir, tmp_path, ask_threads=32) == ASKS - 1


async def test_with_too_few_ask_threads_asks_wait_untimed(db, embedder, scratch_dir, tmp_path):
    """The control: asks waiting for a thread reach the queue one after another, so most are not told "busy" in time."""
    assert await _busy_before_release(db, embedder, scratch_dir, tmp_path, ask_threads=2) < ASKS - 1
