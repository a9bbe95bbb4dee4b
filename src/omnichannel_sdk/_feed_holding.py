"""What one reader of the durable feed holds, and the task that keeps it leased.

A reader is given events a batch at a time and hands them out one by one; each is leased to
its process for ``lease`` seconds. Without renewal, a batch that a slow consumer works through
for longer than that (a busy machine, a helpdesk API that answers slowly), or events it
acknowledges a hundred at a time, are given to another process while this one still holds
them: both hand them out and both acknowledge them. So while a reader lives, the leases of what
it holds (events given and not handed out yet, and those handed out and not acknowledged) are
renewed every third of the lease; a reader that ends, or a process that dies, stops renewing,
and its unacknowledged events go to another process after ``lease`` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Holding"]

log = logging.getLogger("omnichannel_sdk.feed")

T = TypeVar("T")


class Holding(Generic[T]):
    """Events one reader holds: ``waiting`` (given, not handed out yet) and ``handed`` (handed
    out and not acknowledged yet, by ``seq``).

    ``slim`` is what stays held of an item once handed out (enough to renew its lease).
    ``renew`` leases every held item again and returns those another process has now (its
    lease ran out while this process stalled). They are forgotten; so are the waiting items of
    their ``group`` (conversation) after them, which must wait for them there: those are given
    to ``give_back``.
    """

    def __init__(self, renew: Callable[[list[T]], Awaitable[Iterable[T]]], lease: float,
                 give_back: Callable[[list[T]], Awaitable[None]], *, seq: Callable[[T], int],
                 group: Callable[[T], str | None] = lambda item: None,
                 slim: Callable[[T], T] = lambda item: item) -> None:
        self.waiting: deque[T] = deque()
        self.handed: dict[int, T] = {}
        self._renew = renew
        self._give_back = give_back
        self._seq = seq
        self._group = group
        self._slim = slim  # what of a handed-out item stays held (a consumer may ack late)
        self._every = lease / 3
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def extend(self, items: Iterable[T]) -> None:
        """Hold ``items`` too (a new batch); the renewal starts with the first one."""
        self.waiting.extend(items)
        if self._task is None and self.waiting and not self._stopped:
            self._task = asyncio.create_task(self._keep(), name="omnichannel-feed-leases")

    def handed_out(self) -> Iterator[T]:
        """Hand the waiting items out in order; each stays held until it is acknowledged."""
        while self.waiting:
            item = self.waiting.popleft()
            self.handed[self._seq(item)] = self._slim(item)
            yield item

    def acknowledged(self, seq: int) -> None:
        """``seq`` and every earlier item were acknowledged: no longer held."""
        for number in [n for n in self.handed if n <= seq]:
            del self.handed[number]

    def forget(self, item: T) -> None:
        """``item`` alone is done (acknowledged by the reader itself)."""
        self.handed.pop(self._seq(item), None)

    def held(self) -> list[T]:
        """Every item held now: those handed out, then the waiting ones, in order."""
        return [*self.handed.values(), *self.waiting]

    async def stop(self) -> None:
        """Stop renewing, for good (the reader ended, or its hub closes)."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            items = self.held()
            if not items:
                continue
            try:
                taken = list(await self._renew(items))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; the lease is three rounds long
                log.warning("could not renew the leases of %d feed events", len(items), exc_info=True)
                continue
            if taken:
                await self._leave(taken)

    async def _leave(self, taken: list[T]) -> None:
        gone = {self._seq(item) for item in taken}
        first: dict[str, int] = {}
        for item in taken:
            self.handed.pop(self._seq(item), None)
            group = self._group(item)
            if group is not None:
                first[group] = min(first.get(group, self._seq(item)), self._seq(item))
        kept: list[T] = []
        later: list[T] = []
        for item in self.waiting:
            seq, group = self._seq(item), self._group(item)
            if seq in gone:
                continue
            if group is not None and group in first and seq > first[group]:
                later.append(item)
            else:
                kept.append(item)
        self.waiting.clear()
        self.waiting.extend(kept)
        if later:
            with contextlib.suppress(Exception):  # (else their leases run out)
                await self._give_back(later)
