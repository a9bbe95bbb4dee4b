"""What one reader of the durable feed holds, and the task that keeps it leased.

A reader is given events a batch at a time and hands them out one by one; each is leased to
its process for ``lease`` seconds. Without renewal, a batch that a slow consumer works through
for longer than that (a busy machine, a helpdesk API that answers slowly) is given to another
process while this one still holds it: both hand it out and both acknowledge it. So while a
reader holds events (given and not handed out yet, or the one handed out that the consumer is
working on, until it asks for the next) their leases are renewed every third of the lease; a
reader that stops, or a process that dies, stops renewing, and its events come back after
``lease`` at most.
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
    """Events one reader holds: ``waiting`` (given, not handed out yet) and ``current`` (handed
    out, until the consumer asks for the next).

    ``renew`` leases every held item again and returns those that must not be handed out any
    more (another process has them now, or an earlier event of their conversation); the waiting
    ones of those are dropped, and ``give_back`` is given the dropped ones it still holds.
    """

    def __init__(self, renew: Callable[[list[T]], Awaitable[Iterable[T]]], lease: float,
                 give_back: Callable[[list[T]], Awaitable[None]]) -> None:
        self.waiting: deque[T] = deque()
        self.current: T | None = None
        self._renew = renew
        self._give_back = give_back
        self._every = lease / 3
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def extend(self, items: Iterable[T]) -> None:
        """Hold ``items`` too (a new batch); the renewal starts with the first one."""
        self.waiting.extend(items)
        if self._task is None and self.waiting and not self._stopped:
            self._task = asyncio.create_task(self._keep(), name="omnichannel-feed-leases")

    def handed_out(self) -> Iterator[T]:
        """Hand the waiting items out in order; each is ``current`` until the next is asked for."""
        try:
            while self.waiting:
                self.current = self.waiting.popleft()
                yield self.current
        finally:
            self.current = None

    def held(self) -> list[T]:
        """Every item held now: the current one first, then the waiting ones in order."""
        return ([] if self.current is None else [self.current]) + list(self.waiting)

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
                lost = list(await self._renew(items))
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again; the lease is three rounds long
                log.warning("could not renew the leases of %d feed events", len(items), exc_info=True)
                continue
            if lost:
                gone = {id(item) for item in lost}
                kept = [item for item in self.waiting if id(item) not in gone]
                dropped = [item for item in self.waiting if id(item) in gone]
                self.waiting.clear()
                self.waiting.extend(kept)
                with contextlib.suppress(Exception):  # (else their leases run out)
                    await self._give_back(dropped)
