"""Run blocking generation off the event loop, with a concurrency limit and a queue timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from rag_engine.generation.base import Generator, GeneratorBusy
from rag_engine.settings import Settings
from rag_engine.types import GeneratedText, SearchHit, Turn

T = TypeVar("T")


class GenerationPool:
    """Async front for a (blocking) ``Generator``.

    At most ``concurrency`` calls run at once, each in a dedicated worker thread
    (so generation never starves the default executor other I/O uses). Further
    requests wait in FIFO order; one that waits longer than ``queue_timeout_s``
    fails with ``GeneratorBusy("generator busy: ...")``. A slot is freed when
    the worker thread finishes, not when the awaiting task is cancelled, so
    cancelled requests cannot push the number of running generations over the limit.
    """

    def __init__(self, generator: Generator, *, concurrency: int = 1, queue_timeout_s: float = 60.0) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.generator = generator
        self.concurrency = concurrency
        self.queue_timeout_s = queue_timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ragbot-generate")

    @classmethod
    def from_settings(cls, generator: Generator, settings: Settings) -> GenerationPool:
        return cls(
            generator,
            concurrency=settings.generation_concurrency,
            queue_timeout_s=settings.generation_queue_timeout_s,
        )

    @property
    def name(self) -> str:
        return self.generator.name

    async def generate(self, question: str, hits: list[SearchHit], history: list[Turn]) -> GeneratedText:
        return await self.run(self.generator.generate, question, hits, history)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run any blocking call (generate, score, a model load) under the same limit."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self.queue_timeout_s)
        except TimeoutError:
            raise GeneratorBusy(
                f"generator busy: no free slot within {self.queue_timeout_s:g} s "
                f"({self.concurrency} generation(s) at a time)"
            ) from None
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(future)

    def close(self, *, wait: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
