"""GenerationPool: generation off the event loop with a concurrency limit and a queue timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from itertools import pairwise

import pytest

from app.configs import engine_config
from app.settings import Settings
from rag_engine.generation.base import GenerationError, GeneratorBusy, fallback_code
from rag_engine.generation.pool import GenerationPool
from rag_engine.values import FallbackCode, GeneratedText, SearchHit, Turn


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
    pool = GenerationPool.from_config(gen, engine_config(Settings(generation_concurrency=1,
                                                                  generation_queue_timeout_s=0.1)).generation)
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


class OverlapRecorder:
    """Records every (start, end) of its generations, to check that none overlap."""

    name = "recorder"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        start = time.perf_counter()
        time.sleep(self.seconds)
        with self._lock:
            self.spans.append((start, time.perf_counter()))
        return GeneratedText(text=f"answer to {question}", model=self.name)

    def overlaps(self) -> int:
        spans = sorted(self.spans)
        return sum(later[0] < earlier[1] for earlier, later in pairwise(spans))


def _in_threads(count: int, target: Callable[[int], object]) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_blocking_callers_with_concurrency_one_never_overlap() -> None:
    gen = OverlapRecorder(0.1)
    pool = GenerationPool(gen, concurrency=1, queue_timeout_s=5.0)
    answers: list[str] = []
    _in_threads(4, lambda i: answers.append(pool.generate_blocking(f"q{i}", [], []).text))
    assert sorted(answers) == [f"answer to q{i}" for i in range(4)]
    assert len(gen.spans) == 4 and gen.overlaps() == 0


def test_without_the_limit_the_recorder_sees_overlap() -> None:
    """The control for the test above: the recorder does detect concurrent generations."""
    gen = OverlapRecorder(0.1)
    pool = GenerationPool(gen, concurrency=4, queue_timeout_s=5.0)
    _in_threads(4, lambda i: pool.generate_blocking(f"q{i}", [], []))
    assert gen.overlaps() >= 1


def test_blocking_caller_times_out_with_generator_busy() -> None:
    gen = SlowGenerator(0.5)
    pool = GenerationPool(gen, concurrency=1, queue_timeout_s=0.1)
    first = threading.Thread(target=pool.generate_blocking, args=("q1", [], []))
    first.start()
    time.sleep(0.05)
    started = time.perf_counter()
    with pytest.raises(GeneratorBusy, match=r"generator busy: no free slot within 0\.1 s"):
        pool.generate_blocking("q2", [], [])
    assert 0.09 <= time.perf_counter() - started < 0.4  # gave up at the timeout, not when the slot freed
    first.join()
    assert pool.generate_blocking("q3", [], []).text == "answer to q3" and gen.peak == 1


async def test_blocking_and_async_callers_share_one_limit() -> None:
    gen = SlowGenerator(0.1)
    pool = GenerationPool(gen, concurrency=1, queue_timeout_s=5.0)
    blocking = [asyncio.to_thread(pool.generate_blocking, f"b{i}", [], []) for i in range(3)]
    awaiting = [pool.generate(f"a{i}", [], []) for i in range(3)]
    results = await asyncio.gather(*blocking, *awaiting)
    assert len(results) == 6 and gen.peak == 1
    pool.close()
