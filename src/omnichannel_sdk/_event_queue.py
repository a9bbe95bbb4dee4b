"""A first-in first-out queue of events for one event loop: the publisher's pump and every
in-memory bus subscription.

It answers what those use of :class:`asyncio.Queue` (``put_nowait``, ``get``, ``get_nowait``,
``task_done``, ``join``, ``empty``, ``full``, ``qsize``) with the same meaning and less work:
an item put is a ``deque.append``, a counter and, when a consumer waits, one wake-up; an item
taken is a ``popleft``. :class:`asyncio.Queue` also re-checks its putters, its getters and its
``join`` event in Python for every item: a send's three events (queued, sent, status) through
the pump and a bus subscriber cost 633 bytecodes more with it (``bench/opcodes.py outbound``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Generic, TypeVar

__all__ = ["EventQueue"]

T = TypeVar("T")


class EventQueue(Generic[T]):
    """Items in the order they were put, for consumers on one event loop.

    ``maxsize`` (0: unbounded) makes :meth:`put_nowait` raise :class:`asyncio.QueueFull` on a
    full queue, as :class:`asyncio.Queue` does. :meth:`join` waits until :meth:`task_done` was
    called once for every item put.
    """

    __slots__ = ("_finished", "_getters", "_items", "_unfinished", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._unfinished = 0
        self._finished: asyncio.Event | None = None
        """Set when the last unfinished item is done; made only for a :meth:`join` that waits."""

    def qsize(self) -> int:
        """How many items wait."""
        return len(self._items)

    def empty(self) -> bool:
        """Whether no item waits."""
        return not self._items

    def full(self) -> bool:
        """Whether ``maxsize`` items wait (never, unbounded)."""
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: T) -> None:
        """Queue ``item`` and wake the first waiting consumer (raises
        :class:`asyncio.QueueFull` when full)."""
        if self.maxsize and len(self._items) >= self.maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        self._unfinished += 1
        if self._getters:  # a waiting consumer: woken once (what is put before it runs waits)
            self._wake_next()

    def get_nowait(self) -> T:
        """The oldest item (raises :class:`asyncio.QueueEmpty` when none waits)."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        """The oldest item, waiting for one when none waits."""
        while not self._items:
            await self._wait()
        return self._items.popleft()

    async def _wait(self) -> None:
        getter = asyncio.get_running_loop().create_future()
        self._getters.append(getter)
        try:
            await getter
        except BaseException:
            getter.cancel()  # (does nothing to a future already woken)
            with contextlib.suppress(ValueError):  # not woken: no longer waiting either
                self._getters.remove(getter)
            if self._items and not getter.cancelled():
                # woken, then cancelled before it ran: the wake-up goes to the next consumer
                self._wake_next()
            raise

    def _wake_next(self) -> None:
        """Wake the first consumer still waiting (a cancelled one's future is skipped)."""
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def task_done(self) -> None:
        """Say that one item taken from the queue was handled (for :meth:`join`)."""
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            finished, self._finished = self._finished, None
            finished.set()

    async def join(self) -> None:
        """Wait until every item put was handled (:meth:`task_done`)."""
        while self._unfinished:
            if self._finished is None:
                self._finished = asyncio.Event()
            await self._finished.wait()
