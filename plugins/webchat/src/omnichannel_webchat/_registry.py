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

__all__ = ["Connection", "Registry", "SignalBuffer", "frame"]

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


class SignalBuffer:
    """The last few seconds of live signals (typing, seen) per conversation, for long-polls.

    A visitor on the HTTP fallback has no connection between two polls; a signal pushed then
    would be lost. Each signal carries its publish time ``t`` (set once, by the process that
    published it, so every process buffers the same value); a poll passes the newest ``t`` it
    has seen and takes what is newer, in publish order.
    """

    def __init__(self, ttl: float = 5.0, per_conversation: int = 16, max_conversations: int = 50_000,
                 ) -> None:
        self.ttl = ttl
        self.per_conversation = per_conversation
        self.max_conversations = max_conversations
        # conversation id -> (arrival of its newest entry, [(arrival, t, frame)] sorted by t)
        self._by_conversation: OrderedDict[str, tuple[float, list[tuple[float, float, dict[str, Any]]]]] \
            = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_conversation)

    def add(self, conversation_id: str, t: float, data: dict[str, Any]) -> None:
        """Keep signal frame ``data`` (published at wall-clock time ``t``)."""
        now = time.monotonic()
        _, entries = self._by_conversation.pop(conversation_id, (now, []))
        index = len(entries)
        while index and entries[index - 1][1] > t:  # a signal from another process came late
            index -= 1
        entries.insert(index, (now, t, data))
        del entries[:-self.per_conversation]
        self._by_conversation[conversation_id] = (now, entries)  # most recently used last
        while len(self._by_conversation) > self.max_conversations:
            self._by_conversation.popitem(last=False)
        self._expire(now)

    def since(self, conversation_id: str, cursor: float | None) -> list[dict[str, Any]]:
        """The fresh signals of a conversation published after ``cursor`` (all fresh ones when
        ``None``), oldest first."""
        found = self._by_conversation.get(conversation_id)
        if found is None:
            return []
        limit = time.monotonic() - self.ttl
        fresh = [e for e in found[1] if e[0] >= limit]
        if not fresh:
            del self._by_conversation[conversation_id]
            return []
        if len(fresh) < len(found[1]):
            self._by_conversation[conversation_id] = (found[0], fresh)
        return [data for _, t, data in fresh if cursor is None or t > cursor]

    def _expire(self, now: float) -> None:
        # the least recently signalled conversations come first: drop them while stale
        limit = now - self.ttl
        while self._by_conversation:
            key, (newest, _) = next(iter(self._by_conversation.items()))
            if newest >= limit:
                break
            del self._by_conversation[key]


def frame(data: dict[str, Any]) -> bytes:
    """A JSON frame."""
    return orjson.dumps(data)
