"""Clean shutdown of a long-running bot process (``docker stop``'s SIGTERM, Ctrl-C).

On SIGTERM or SIGINT a bot

1. refuses new asks, votes, corrections and admin commands with
   :data:`SHUTTING_DOWN` (the user is told to try again: nothing is dropped
   without a word),
2. waits for the requests it is already handling, up to
   ``BotConfig.shutdown_grace_s``,
3. disconnects from the platform,
4. writes what its write queue holds (a write still queued when the deadline
   passes is logged and counted in ``ragbot_writes_given_up``),
5. lets go of the embedded PostgreSQL (stopped when no other process uses it),
6. logs one ``shutdown complete`` line and exits 0.

A request still running at the deadline (a model that does not finish) is
abandoned: counted in ``ragbot_shutdown_abandoned_requests``, logged, and the
process exits without waiting for its thread, which cannot be interrupted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from prometheus_client import Counter

from bot import metrics
from bot.messages import SHUTTING_DOWN as SHUTTING_DOWN  # re-exported: the core refuses with it while stopping

if TYPE_CHECKING:  # type-only: bot.core imports this module for InFlight and admitted
    from bot.core import BotCore
    from rag_engine.engine import RagEngine

log = logging.getLogger(__name__)
R = TypeVar("R")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
MIN_FLUSH_S = 2.0  # queued writes get at least this long, even when the asks used up the grace period

ABANDONED = Counter("ragbot_shutdown_abandoned_requests", "Requests still running when a stopping bot's grace "
                    "period ended (their answers were not sent).", registry=metrics.REGISTRY)


class BotRuntime(Protocol):
    """What a stopping bot needs of the composition root's runtime (``app.runtime.BotRuntime`` has it)."""

    @property
    def engine(self) -> RagEngine: ...
    @property
    def core(self) -> BotCore: ...
    def close(self, flush_timeout_s: float = ...) -> None: ...


class InFlight:
    """Counts the requests a bot is handling; once closed, it admits no new ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._closed = False

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self) -> bool:
        """Admit one request; False once :meth:`close` was called."""
        with self._lock:
            if self._closed:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1

    def close(self) -> None:
        with self._lock:
            self._closed = True

    async def drain(self, deadline: float) -> int:
        """Wait until no request runs or ``time.monotonic()`` passes ``deadline``; returns how many still run."""
        while self.count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.count


def admitted(refusal: Callable[[], R]) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """Decorate a ``BotCore`` request method: counted while it runs, ``refusal()`` once the bot is stopping."""

    def wrap(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        @functools.wraps(method)
        async def run(self: Any, *args: Any, **kwargs: Any) -> R:
            if not self.in_flight.enter():
                return refusal()
            try:
                return await method(self, *args, **kwargs)
            finally:
                self.in_flight.leave()

        return run

    return wrap


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Inside the block SIGTERM unwinds like Ctrl-C (``KeyboardInterrupt``), so a process stopped
    while starting still runs its exit hooks (the embedded database is stopped)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_until_stopped(runtime: BotRuntime, serve: Callable[[], Awaitable[None]], *,
                        hard_exit: Callable[[int], Any] = os._exit) -> None:
    """Run ``serve()`` (the platform connection) until SIGTERM/SIGINT, then shut down as described above.

    If ``serve()`` ends by itself, its error propagates after the same clean-up. ``hard_exit(0)`` ends
    the process when requests were abandoned: their threads cannot be interrupted, and both asyncio
    and the interpreter would wait for them.
    """
    asyncio.run(_serve(runtime, serve, hard_exit))


async def _serve(runtime: BotRuntime, serve: Callable[[], Awaitable[None]],
                 hard_exit: Callable[[int], Any]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _on_signal, sig, stop, runtime)
    serving = asyncio.ensure_future(serve())
    stopping = asyncio.ensure_future(stop.wait())
    deadline = None
    abandoned = 0
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            deadline = time.monotonic() + runtime.core.config.shutdown_grace_s
            abandoned = await runtime.core.in_flight.drain(deadline)
            serving.cancel()  # disconnect: after the answers went out, which need the connection
            await asyncio.wait({serving}, timeout=max(1.0, deadline - time.monotonic()))
        if serving.done() and not serving.cancelled():
            serving.result()  # it ended by itself: its error, if any, goes to the caller
    finally:
        stopping.cancel()
        runtime.core.in_flight.close()
        _shut_down(runtime, deadline, abandoned)  # blocking, on purpose: nothing else may run now
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    if abandoned:
        for handler in logging.getLogger().handlers:  # hard_exit skips the interpreter's own flush
            handler.flush()
        hard_exit(0)


def _on_signal(sig: signal.Signals, stop: asyncio.Event, runtime: BotRuntime) -> None:
    if stop.is_set():
        log.warning("%s again: already stopping", sig.name)
        return
    runtime.core.in_flight.close()
    log.info("%s received: stopping; new requests are refused, %d in flight get up to %g s",
             sig.name, runtime.core.in_flight.count, runtime.core.config.shutdown_grace_s)
    stop.set()


def _shut_down(runtime: BotRuntime, deadline: float | None, abandoned: int) -> None:
    if abandoned:
        ABANDONED.inc(abandoned)
        log.error("%d request(s) still running after %g s: abandoned, their answers were not sent",
                  abandoned, runtime.core.config.shutdown_grace_s)
    left = MIN_FLUSH_S if deadline is None else max(MIN_FLUSH_S, deadline - time.monotonic())
    runtime.close(flush_timeout_s=left)
    stats = runtime.core.writes.queue.stats
    db = runtime.engine.db
    stopped = db.close()
    log.info("shutdown complete: %d queued write(s) flushed, %d given up, %d request(s) abandoned%s",
             stats.flushed, stats.given_up, abandoned, _embedded_note(db.is_embedded, stopped))


def _embedded_note(embedded: bool, stopped: bool) -> str:
    if not embedded:
        return ""
    return "; embedded PostgreSQL stopped" if stopped else "; embedded PostgreSQL left running for other processes"
