"""Token-bucket rate limits per user and per channel (in process memory).

Each key has a bucket of ``burst`` tokens refilled at ``rate_per_min``; an ask
takes one. Memory is bounded: past ``max_keys`` buckets, full ones (which are
the same as a fresh bucket) go first, then the least recently used.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """``rate_per_min`` tokens refill per minute, up to ``burst``."""

    def __init__(self, rate_per_min: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        if not (math.isfinite(rate_per_min) and rate_per_min > 0) or burst < 1:
            raise ValueError(f"rate limit must be > 0 per minute with burst >= 1 (got {rate_per_min}/min, "
                             f"burst {burst})")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate = rate_per_min / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> float:
        """Take a token; returns 0.0 if allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._evict(now)
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            else:
                self._buckets.move_to_end(key)
            # a clock that steps back must not mint tokens or make a negative wait
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = max(bucket.updated, now)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate

    def refund(self, key: str) -> None:
        """Give back a token taken by an ask that was refused for another reason."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(self.burst, bucket.tokens + 1.0)

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        while len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)


class AskLimits:
    """The user limit and the channel limit together; a refused ask costs neither."""

    def __init__(self, user: TokenBucketLimiter, channel: TokenBucketLimiter) -> None:
        self.user = user
        self.channel = channel

    def check(self, user_key: str, channel_key: str) -> float:
        """0 if the ask may go ahead, else the whole seconds (rounded up) to wait before retrying."""
        wait = self.user.try_acquire(user_key)
        if not wait:
            wait = self.channel.try_acquire(channel_key)
            if wait:
                self.user.refund(user_key)
        return float(math.ceil(wait)) if wait else 0.0

    def check_user(self, user_key: str) -> float:
        """The user limit alone, for what happens outside a channel's flow (corrections): 0 or seconds to wait."""
        wait = self.user.try_acquire(user_key)
        return float(math.ceil(wait)) if wait else 0.0
