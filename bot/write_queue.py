"""Durable writes: interactions and feedback survive a database outage.

A write is tried at once, with a few quick retries (tenacity, exponential
backoff). If the database stays away, the write waits in a bounded in-memory
queue that a background thread flushes, in order, as soon as the database is
back. Order matters: a vote queued behind the interaction it refers to must not
overtake it, so while anything is queued, new writes queue behind it.

Nothing is dropped silently. A write that cannot be queued (the queue holds
``config.write_queue_size`` items) or that fails for a reason other than the
outage is *given up*: logged at error level and counted (``given_up`` and the
``ragbot_writes_given_up`` metric), and the caller is told.

Interaction ids are taken from the table's sequence before the insert, so a
write retried after an ambiguous failure (committed, but the reply was lost)
is recognised by its key instead of stored twice, and an answer whose log
write had to be queued still carries the id its feedback buttons refer to (a
few ids are kept in reserve for that).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot import metrics
from bot.config import BotConfig
from rag_engine.engine import Store
from rag_engine.errors import DatabaseUnavailable, DuplicateKey
from rag_engine.feedback import VoteOutcome, record_correction, record_vote
from rag_engine.interactions import History, InteractionContext, log_interaction, set_thread
from rag_engine.scope import CollectionScope
from rag_engine.values import Answer

log = logging.getLogger(__name__)
T = TypeVar("T")

QUEUED = Counter("ragbot_writes_queued", "Writes that waited in memory for the database.", ["kind"],
                 registry=metrics.REGISTRY)
GIVEN_UP = Counter("ragbot_writes_given_up", "Writes given up (queue full, or failed for good).", ["kind"],
                   registry=metrics.REGISTRY)
PENDING = Gauge("ragbot_write_queue_pending", "Writes waiting for the database.", registry=metrics.REGISTRY)


def is_transient(exc: BaseException) -> bool:
    """The database is away or saturated (worth retrying later), not a bad write. The store
    translates a lost connection and a pool timeout into ``DatabaseUnavailable``."""
    return isinstance(exc, DatabaseUnavailable)


class QueueFull(RuntimeError):
    """The write could not be kept: the queue is at ``write_queue_size``; it was given up."""


@dataclass(slots=True)
class _Pending:
    kind: str
    run: Callable[[], Any]
    since: float


@dataclass(frozen=True, slots=True)
class Submitted(Generic[T]):
    """What became of a write: done now (``result``) or queued for later (``queued``)."""

    result: T | None
    queued: bool


@dataclass(frozen=True, slots=True)
class WriteStats:
    written: int  # done directly
    queued: int  # went through the queue (ever)
    flushed: int  # of those, written later
    given_up: int  # lost, each logged at error level
    pending: int  # waiting now


class WriteQueue:
    """A bounded, ordered, self-flushing queue of database writes (callables)."""

    def __init__(self, *, maxsize: int, retry_attempts: int = 3, retry_initial_s: float = 0.05,
                 retry_max_s: float = 0.5, flush_initial_s: float = 0.2, flush_max_s: float = 5.0,
                 name: str = "ragbot-writes") -> None:
        if maxsize < 1:
            raise ValueError("write_queue_size must be at least 1")
        self.maxsize = maxsize
        self.retry_attempts = max(1, retry_attempts)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.flush_initial_s = flush_initial_s
        self.flush_max_s = flush_max_s
        self.name = name
        self._items: deque[_Pending] = deque()  # the head stays here until it is written
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._written = self._queued = self._flushed = self._given_up = 0
        self._atexit_registered = False
        self._closed = False  # after close() nothing more is queued (the process is stopping)

    # -- submitting ----------------------------------------------------------------
    def submit(self, kind: str, run: Callable[[], T]) -> Submitted[T]:
        """Write now (retrying briefly) or, if the database is away or others wait, queue it.

        Errors other than ``DatabaseUnavailable`` on the direct path propagate to
        the caller (bad input, unknown interaction); ``QueueFull`` if it had to
        be queued and could not be.
        """
        with self._cond:
            behind_others = bool(self._items)
        if not behind_others:
            try:
                result = self._retrying()(run)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("database unavailable (%s): %s write queued", type(exc).__name__, kind)
            else:
                with self._cond:
                    self._written += 1
                return Submitted(result, queued=False)
        self._enqueue(kind, run)
        return Submitted(None, queued=True)

    def _retrying(self) -> Retrying:
        return Retrying(stop=stop_after_attempt(self.retry_attempts),
                        wait=wait_exponential(multiplier=self.retry_initial_s, max=self.retry_max_s),
                        retry=retry_if_exception(is_transient), reraise=True)

    def _enqueue(self, kind: str, run: Callable[[], Any]) -> None:
        with self._cond:
            if self._closed:
                self._give_up(kind, "the process is stopping and the database is away")
                raise QueueFull(f"{kind} write given up: the process is stopping")
            if len(self._items) >= self.maxsize:
                self._give_up(kind, f"the write queue is full ({self.maxsize} waiting)")
                raise QueueFull(f"{kind} write given up: {self.maxsize} writes already wait for the database")
            self._items.append(_Pending(kind, run, time.monotonic()))
            self._queued += 1
            QUEUED.labels(kind=kind).inc()
            PENDING.inc()
            self._start_flusher()
            self._cond.notify_all()

    def _give_up(self, kind: str, why: str) -> None:
        self._given_up += 1
        GIVEN_UP.labels(kind=kind).inc()
        log.error("%s write given up: %s", kind, why)

    # -- flushing ------------------------------------------------------------------
    def _start_flusher(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._flush_loop, name=self.name, daemon=True)
            self._thread.start()
            if not self._atexit_registered:  # a last flush attempt, and a logged count of what is lost
                atexit.register(self.close, 5.0)
                self._atexit_registered = True

    def _flush_loop(self) -> None:
        delay = self.flush_initial_s
        while not self._stop.is_set():
            with self._cond:
                while not self._items and not self._stop.is_set():
                    self._cond.wait(timeout=1.0)
                if self._stop.is_set():
                    return
                head = self._items[0]
            try:
                head.run()
            except Exception as exc:  # noqa: BLE001 - a write that can never succeed must not block the rest
                if is_transient(exc):
                    self._stop.wait(delay)  # the database is still away: back off, then retry the head
                    delay = min(self.flush_max_s, delay * 2)
                    continue
                with self._cond:
                    self._pop(head)
                    self._give_up(head.kind, f"{type(exc).__name__}: {str(exc)[:300]} "
                                             f"(queued {time.monotonic() - head.since:.0f} s ago)")
                continue
            delay = self.flush_initial_s
            with self._cond:
                self._pop(head)
                self._flushed += 1
                if not self._items:
                    log.info("write queue flushed: the database is back")

    def _pop(self, head: _Pending) -> None:
        if self._items and self._items[0] is head:
            self._items.popleft()
            PENDING.dec()
        self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._items:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.5) if left is not None else 0.5)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Try to write what is queued (for up to ``timeout`` s), then stop; what is left is given up,
        and so is any write that would have to be queued later."""
        with self._cond:
            self._closed = True
        if self._thread is not None and self._thread.is_alive():
            self.drain(timeout)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout))
        with self._cond:
            while self._items:
                item = self._items.popleft()
                PENDING.dec()
                self._give_up(item.kind, "the process stopped before the database came back "
                                         f"(queued {time.monotonic() - item.since:.0f} s ago)")

    @property
    def stats(self) -> WriteStats:
        with self._cond:
            return WriteStats(self._written, self._queued, self._flushed, self._given_up, len(self._items))

    @property
    def given_up(self) -> int:
        return self.stats.given_up


class InteractionIds:
    """Ids from the ``interactions`` sequence, taken just before each insert.

    A few spare ids are kept for when the database is away: an answer computed
    just before an outage still gets an id (its log write waits in the queue).
    Spare ids are only used during an outage, so ids stay in time order otherwise.
    """

    def __init__(self, store: Store, spare: int = 32) -> None:
        self.store = store
        self.spare_size = spare
        self._spare: deque[int] = deque()
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """A fresh id, a spare one if the database is away, or None if none is left."""
        with self._lock:
            refill = self.spare_size - len(self._spare)
        try:
            ids = self.store.interaction_ids.take(1 + max(0, refill))
        except Exception as exc:
            if not is_transient(exc):
                raise
            with self._lock:
                return self._spare.popleft() if self._spare else None
        with self._lock:
            self._spare.extend(ids[1:])
        return int(ids[0])


class DurableWrites:
    """The bot core's interaction and feedback writes, through one ``WriteQueue``."""

    def __init__(self, store: Store, config: BotConfig, queue: WriteQueue | None = None) -> None:
        self.db = store.db
        self.queue = queue or WriteQueue(maxsize=config.write_queue_size,
                                         retry_attempts=store.db.config.db_retry_attempts)
        self.ids = InteractionIds(store)

    def log_interaction(self, ctx: InteractionContext, question: str, answer: Answer | None,
                        scope: CollectionScope, *, error: str | None = None,
                        history: History | None = None) -> int | None:
        """Log one ask; returns its id, or None if it had to be given up or got no id during an outage.

        ``error`` is stored redacted: ``rag_engine.interactions`` masks credentials in every stored reason."""
        interaction_id = self.ids.take()
        write = self.interaction_write(interaction_id, ctx, question, answer, scope, error=error, history=history)
        try:
            done = self.queue.submit("interaction", write)
        except QueueFull:
            return None
        return done.result if not done.queued else interaction_id

    def interaction_write(self, interaction_id: int | None, ctx: InteractionContext, question: str,
                          answer: Answer | None, scope: CollectionScope, *,
                          error: str | None = None, history: History | None = None) -> Callable[[], int]:
        """The insert of one interaction as a retryable callable (idempotent when it has an id)."""

        def write() -> int:
            try:
                return log_interaction(self.db, ctx, question, answer, scope.ids(), error=error,
                                       interaction_id=interaction_id, history=history)
            except DuplicateKey as exc:
                if interaction_id is not None and exc.constraint == "interactions_pkey":
                    return interaction_id  # an earlier attempt was committed after all
                raise

        return write

    def set_thread(self, interaction_id: int, platform: str, channel_id: str, thread_id: str) -> Submitted[bool]:
        """Queued behind the interaction's own insert when that one waits for the database."""
        return self.queue.submit("thread", lambda: set_thread(self.db, interaction_id, platform=platform,
                                                              channel_id=channel_id, thread_id=thread_id))

    def record_vote(self, interaction_id: int, user_key: str, vote: int,
                    reason: str | None = None) -> Submitted[VoteOutcome]:
        if vote not in (1, -1) or isinstance(vote, bool):  # bad input must fail now, not in the queue
            raise ValueError(f"vote must be +1 or -1, got {vote!r}")
        return self.queue.submit("vote", lambda: record_vote(self.db, interaction_id, user_key, vote, reason))

    def record_correction(self, interaction_id: int, user_key: str, text: str, *,
                          is_admin: bool) -> Submitted[int]:
        return self.queue.submit("correction", lambda: record_correction(self.db, interaction_id, user_key, text,
                                                                         is_admin=is_admin))

    def close(self, timeout: float = 5.0) -> None:
        self.queue.close(timeout)
