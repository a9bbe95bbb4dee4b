"""A token bucket: the one rate limiter of the SDK and its plugins (outbox sends per channel key,
web chat visitors per connection)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, bursts of up to ``burst``, for each key (in-process).

    :meth:`take` answers at once (``0.0``, or how long to wait); :meth:`acquire` waits for a
    token. Keys are kept least-recently-used first and at most ``max_keys`` of them, so a flood of
    new keys (visitors) cannot grow the memory.
    """

    def __init__(self, rate: float, burst: float | None = None, *, max_keys: int = 100_000) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate)
        if not self.burst >= 1:
            raise ValueError("burst must be at least 1")
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock: asyncio.Lock | None = None

    def take(self, key: str = "", cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: ``0.0`` when they were there, else the
        seconds until they will be (nothing is taken then)."""
        now = time.monotonic()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (cost - tokens) / self.rate
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def acquire(self, key: str = "", cost: float = 1.0) -> None:
        """Wait until ``cost`` tokens of ``key`` are there, and take them (callers are served in
        turn)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while (wait := self.take(key, cost)) > 0:
                await asyncio.sleep(wait)
