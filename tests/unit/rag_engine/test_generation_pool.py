"""GenerationPool: generation off the event loop with a concurrency limit and a queue timeout."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rag_engine.generation.base import GenerationError, GeneratorBusy, fallback_code
from rag_engine.generation.pool import GenerationPool
from rag_engine.settings import Settings
from rag_engine.types import FallbackCode, GeneratedText, SearchHit, Turn


class SlowGenerator:
    """Blocks for ``seconds`` and records peak concurrency and the calling threads."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.peak = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(self.seconds)
        with self._lock:
            self.running -= 1
        return GeneratedText(text=f"answer to {question}", model="slow")


async def test_second_request_times_out_when_the_only_slot_is_busy() -> None:
    gen = SlowGenerator(0.6)
    pool = GenerationPool.from_settings(gen, Settings(generation_concurrency=1, generation_queue_timeout_s=0.1))
    first = asyncio.create_task(pool.generate("q1", [], []))
    await asyncio.sleep(0.05)  # let the first one take the slot
    with pytest.raises(GeneratorBusy, match=r"generator busy: no free slot within 0\.1 s") as busy:
        await pool.generate("q2", [], [])
    assert fallback_code(busy.value) is FallbackCode.QUEUE_TIMEOUT  # the answer says "the model was busy"
    assert (await first).text == "answer to q1"
    assert (await pool.generate("q3", [], [])).text == "answer to q3"  # slot released
    assert gen.peak == 1 and all(name.startswith("ragbot-generate") for name in gen.threads)
    pool.close()


async def test_queued_requests_run_within_timeout_and_limit_holds() -> None:
    gen = SlowGenerator(0.1)
    pool = GenerationPool(gen, concurrency=2, queue_timeout_s=5.0)
    started = time.perf_counter()
    results = await asyncio.gather(*(pool.generate(f"q{i}", [], []) for i in range(6)))
    assert [r.text for r in results] == [f"answer to q{i}" for i in range(6)]
    assert gen.peak == 2
    assert time.perf_counter() - started >= 0.3  # 6 jobs, 2 at a time, 0.1 s each
    pool.close()


async def test_event_loop_stays_responsive_during_generation() -> None:
    pool = GenerationPool(SlowGenerator(0.3), concurrency=1, queue_timeout_s=1.0)
    task = asyncio.create_task(pool.generate("q", [], []))
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks >= 10  # the loop kept running while the model "generated"
    pool.close()


async def test_cancelled_request_keeps_its_slot_until_the_thread_finishes() -> None:
    gen = SlowGenerator(0.4)
    pool = GenerationPool(gen, concurrency=1, queue_timeout_s=0.1)
    task = asyncio.create_task(pool.generate("q1", [], []))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(GenerationError, match="generator busy"):  # the thread is still generating
        await pool.generate("q2", [], [])
    await asyncio.sleep(0.45)
    assert (await pool.generate("q3", [], [])).text == "answer to q3"
    assert gen.peak == 1
    pool.close()
