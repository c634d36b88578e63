"""The one limit on concurrent generations in a process, with a queue timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from rag_engine.config import GenerationConfig
from rag_engine.generation.base import Generator, GeneratorBusy
from rag_engine.values import GeneratedText, SearchHit, Turn

T = TypeVar("T")

_ASYNC_POLL_S = 0.02  # how often an async caller retries for a slot; generations take seconds, so this costs nothing


class GenerationPool:
    """At most ``concurrency`` calls of a (blocking) ``Generator`` run at once, sync and async callers together.

    The limit is one ``threading.Semaphore``: the engine's answer path is synchronous
    (the bot core runs it in a worker thread) and takes a slot with ``call``/``generate_blocking``;
    async callers use ``generate``/``run``, which wait without blocking the event loop and
    then run the call in a dedicated worker thread (so generation never starves the
    default executor other I/O uses). A caller that waits longer than ``queue_timeout_s``
    gets ``GeneratorBusy("generator busy: ...")`` (the engine then answers extractively
    with ``FallbackCode.QUEUE_TIMEOUT``). An async slot is freed when the worker thread
    finishes, not when the awaiting task is cancelled, so cancelled requests cannot push
    the number of running generations over the limit.
    """

    def __init__(self, generator: Generator, *, concurrency: int = 1, queue_timeout_s: float = 60.0) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.generator = generator
        self.concurrency = concurrency
        self.queue_timeout_s = queue_timeout_s
        self._slots = threading.BoundedSemaphore(concurrency)
        self._count_lock = threading.Lock()
        self.in_use = 0  # slots held now, sync and async callers together
        self.peak_in_use = 0  # the most ever held at once (the load benchmark reports it)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ragbot-generate")

    @classmethod
    def from_config(cls, generator: Generator, config: GenerationConfig) -> GenerationPool:
        return cls(
            generator,
            concurrency=config.generation_concurrency,
            queue_timeout_s=config.generation_queue_timeout_s,
        )

    @property
    def name(self) -> str:
        return self.generator.name

    def _busy(self) -> GeneratorBusy:
        return GeneratorBusy(
            f"generator busy: no free slot within {self.queue_timeout_s:g} s "
            f"({self.concurrency} generation(s) at a time)"
        )

    def _take(self, timeout: float | None) -> bool:
        """One slot, waiting up to ``timeout`` seconds (None: don't wait)."""
        if not (self._slots.acquire(timeout=timeout) if timeout is not None else self._slots.acquire(False)):
            return False
        with self._count_lock:
            self.in_use += 1
            self.peak_in_use = max(self.peak_in_use, self.in_use)
        return True

    def _give_back(self) -> None:
        with self._count_lock:
            self.in_use -= 1
        self._slots.release()

    # -- synchronous callers (the engine's answer path) -------------------------
    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; ``GeneratorBusy`` if none frees up within the queue timeout."""
        if not self._take(max(0.0, self.queue_timeout_s)):
            raise self._busy()
        try:
            yield
        finally:
            self._give_back()

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run any blocking call (generate, score, a model load) in this thread, under the limit."""
        with self.slot():
            return fn(*args)

    def generate_blocking(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        return self.call(self.generator.generate, question, hits, history)

    # -- async callers ----------------------------------------------------------
    async def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        return await self.run(self.generator.generate, question, hits, history)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Like ``call``, but waits on the event loop and runs ``fn`` in the pool's worker thread."""
        deadline = time.monotonic() + self.queue_timeout_s
        # polling, not a thread blocked in acquire(): a cancelled waiter then never takes a slot it won't use
        while not self._take(None):
            if time.monotonic() >= deadline:
                raise self._busy()
            await asyncio.sleep(_ASYNC_POLL_S)
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except BaseException:
            self._give_back()
            raise
        future.add_done_callback(lambda _: self._give_back())
        return await asyncio.shield(future)

    def close(self, *, wait: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
