"""Who is connected in this process: visitors' sockets and long-polls, and per-visitor limits.

Pushing never blocks the caller: each connection has a bounded mailbox; a connection whose
mailbox overflows is dropped (the widget reconnects and catches up from the store).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any

import orjson

__all__ = ["Connection", "Registry", "TokenBucket", "frame"]

_RECENT = 64


class Connection:
    """One live link to a visitor (a WebSocket or a waiting long-poll)."""

    __slots__ = ("closed", "kind", "limit", "mailbox", "visitor", "wake")

    def __init__(self, visitor: str, kind: str = "ws", size: int = 256) -> None:
        self.visitor = visitor
        self.kind = kind
        self.mailbox: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.limit = size

    def push(self, frame: bytes) -> bool:
        """Queue a frame; ``False`` (and the connection is marked closed) when it overflowed."""
        if self.closed:
            return False
        if len(self.mailbox) >= self.limit:
            self.closed = True
            self.wake.set()
            return False
        self.mailbox.append(frame)
        self.wake.set()
        return True

    async def next_frames(self, timeout: float | None = None) -> list[bytes]:
        """Wait for frames (up to ``timeout`` seconds) and take them all."""
        if not self.mailbox and not self.closed:
            self.wake.clear()
            if timeout is None:
                await self.wake.wait()
            else:
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout)
                except TimeoutError:
                    return []
        frames = list(self.mailbox)
        self.mailbox.clear()
        return frames


class Registry:
    """Connections by visitor, and the ids recently pushed to each (to skip echoes)."""

    def __init__(self) -> None:
        self._by_visitor: dict[str, set[Connection]] = {}
        self._recent: OrderedDict[str, deque[str]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_visitor.values())

    @property
    def visitors(self) -> int:
        """How many visitors have at least one connection here."""
        return len(self._by_visitor)

    def add(self, connection: Connection) -> None:
        """Register a connection."""
        self._by_visitor.setdefault(connection.visitor, set()).add(connection)

    def remove(self, connection: Connection) -> None:
        """Forget a connection."""
        conns = self._by_visitor.get(connection.visitor)
        if conns is not None:
            conns.discard(connection)
            if not conns:
                del self._by_visitor[connection.visitor]

    def connected(self, visitor: str) -> bool:
        """Whether the visitor has a live connection in this process."""
        return bool(self._by_visitor.get(visitor))

    def connections(self, visitor: str) -> Iterable[Connection]:
        """The visitor's connections."""
        return tuple(self._by_visitor.get(visitor, ()))

    def push(self, visitor: str, frame: bytes, *, message_id: str | None = None,
             skip: Connection | None = None) -> int:
        """Queue ``frame`` on every connection of ``visitor``; returns how many took it.

        With ``message_id``, a frame for a message already pushed to this visitor is skipped
        (the same message arrives both directly and through the event bus).
        """
        if message_id is not None:
            if self.seen(visitor, message_id):
                return 0
            self.remember(visitor, message_id)
        count = 0
        for conn in self.connections(visitor):
            if conn is skip:
                continue
            if conn.push(frame):
                count += 1
        return count

    def seen(self, visitor: str, message_id: str) -> bool:
        """Whether ``message_id`` was pushed to ``visitor`` lately."""
        recent = self._recent.get(visitor)
        return recent is not None and message_id in recent

    def remember(self, visitor: str, message_id: str) -> None:
        """Note that ``message_id`` went to ``visitor``."""
        recent = self._recent.get(visitor)
        if recent is None:
            recent = self._recent[visitor] = deque(maxlen=_RECENT)
            while len(self._recent) > 50_000:
                self._recent.popitem(last=False)
        recent.append(message_id)


class TokenBucket:
    """Per-key token buckets: ``rate`` per second, bursts of ``burst``. In-process."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when allowed, else the seconds to wait before retrying."""
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


def frame(data: dict[str, Any]) -> bytes:
    """A JSON frame."""
    return orjson.dumps(data)
