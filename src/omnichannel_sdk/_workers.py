"""The outbox's workers: ``concurrency`` jobs at once per process, at most
``max_in_flight_per_channel`` vendor calls of sends per channel, and jobs waiting for either
without a task of their own.

A send takes a worker, a slot of its channel and, where the channel has a rate limit, a token
of it together. A send whose channel has no slot free or no token yet when a worker is free
waits parked, holding none of them (a rate-limited channel's line is woken when its next token
is due), so a slow channel holds no more workers than its slots, a rate-limited one none while
it waits, and another channel's sends still find one.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from ._models import Message, Part
from ._store import Job

__all__ = ["ChannelSlots", "Workers"]


class ChannelSlots:
    """One channel's vendor-call slots (``max_in_flight_per_channel``): taken without waiting
    when a send gets a worker; a send whose channel has none free waits parked, holding no
    worker (:meth:`Workers._dispatch`). Giving one back lets the channel's next send go."""

    __slots__ = ("_freed", "free")

    def __init__(self, size: int, freed: Callable[[], None]) -> None:
        self.free = size
        """Slots free now."""
        self._freed = freed

    def release(self) -> None:
        """Give a slot back and hand it on (to the oldest parked send, if a worker is free)."""
        self.free += 1
        self._freed()


class Workers(abc.ABC):
    """Hands workers and channel slots to jobs in the order they came (see the module); a
    subclass runs each job (:meth:`_run`) and gives its worker back (:meth:`_free_worker`)."""

    def __init__(self, concurrency: int, max_in_flight_per_channel: int) -> None:
        self._idle = concurrency
        """Workers free: a job runs holding one (``concurrency`` at most at once)."""
        self._channel_slots: dict[str, ChannelSlots] = {}
        self._tasks: dict[asyncio.Task[Any], Job] = {}  # running jobs' tasks (see _done)
        self._unstarted: dict[str, asyncio.Task[Any]] = {}  # by job id: _run not begun yet
        self._running: set[str] = set()
        self._leased: set[str] = set()
        self._reserved: set[str] = set()
        """Sends holding their channel's slot, taken with their worker: a fresh send's by
        ``hub.send`` (:meth:`reserve`), any other's when it was handed a worker."""
        self._recorded: set[str] = set()
        """Fresh sends whose first vendor call the store recorded with the job (:meth:`reserve`)."""
        self._rendered: dict[str, list[Part]] = {}
        """The parts ``hub.send`` rendered for a fresh send, until it runs (:meth:`reserve`)."""
        self._backlog: deque[tuple[Job, Message | None]] = deque()
        """Jobs submitted while every worker was busy, in order: each gets its task when a
        worker is handed to it (:meth:`_dispatch`), not before."""
        self._parked: dict[str, deque[tuple[int, Job, Message | None]]] = {}
        """Sends, by channel key, that reached a free worker while their channel had no slot
        free: they wait without the worker, oldest first (with the order they were parked in),
        so a slow or rate-limited channel holds no more workers than its slots."""
        self._parks = 0
        self._throttled: dict[str, asyncio.TimerHandle] = {}
        """Channels whose parked line waits for its rate limit's next token: woken then."""
        self._max_in_flight = max_in_flight_per_channel
        self._stopping = False

    @abc.abstractmethod
    async def _run(self, job: Job, message: Message | None) -> tuple[Job, Message | None] | None:
        """Run ``job`` holding a worker (and, for a send, a slot of its channel). Answer the
        job the worker runs next in the same task (:meth:`_hand_on`, or a successor a send
        handed its slot to), or ``None`` once the worker was given back."""

    def _token(self, channel_key: str) -> float:
        """Take a token of the channel's rate limit for a send that goes now: ``0.0``, or the
        seconds until one is due (none taken then). The base has no rate limits."""
        return 0.0

    def _throttle(self, channel_key: str, wait: float) -> None:
        """The channel's parked line waits ``wait`` seconds for its next token."""
        if (earlier := self._throttled.get(channel_key)) is not None:
            earlier.cancel()
        self._throttled[channel_key] = asyncio.get_running_loop().call_later(
            wait, self._unthrottle, channel_key)

    def _unthrottle(self, channel_key: str) -> None:
        self._throttled.pop(channel_key, None)
        self._dispatch()

    def _slot(self, channel_key: str) -> ChannelSlots:
        slot = self._channel_slots.get(channel_key)
        if slot is None:
            slot = self._channel_slots[channel_key] = ChannelSlots(
                self._max_in_flight, self._dispatch)
        return slot

    async def reserve(self, job: Job, parts: list[Part]) -> bool:
        """Take a worker and a channel slot for a fresh send ``job`` if both are free now (no
        wait), so that its vendor call follows its creation at once: the store then records
        the call as started in the transaction that creates the job (``create_outbound(...,
        attempt=True)``) instead of in one of its own. False: the send waits its turn as
        usual. Give the reservation back with :meth:`unreserve` if the job is not created.

        ``parts`` (the rendered parts, kept either way) spare the job's run reading them back
        from its payload."""
        self._rendered[job.id] = parts
        slot = self._slot(job.channel_key)
        # (a parked send of the channel is older and waits for this very slot: no jump)
        if (self._stopping or not self._idle or slot.free <= 0 or job.channel_key in self._parked
                or self._token(job.channel_key) > 0):  # (last: it takes the token)
            return False
        self._idle -= 1
        slot.free -= 1
        self._reserved.add(job.id)
        self._recorded.add(job.id)
        return True

    def unreserve(self, job: Job) -> None:
        """Give back what :meth:`reserve` took (the job was not created)."""
        if self._give_back(job):
            self._free_worker()

    def _give_back(self, job: Job) -> bool:
        """Forget what was kept for a job that never ran, and give its channel slot back;
        whether it held one (and so a worker)."""
        self._rendered.pop(job.id, None)
        self._recorded.discard(job.id)
        if job.id not in self._reserved:
            return False
        self._reserved.discard(job.id)
        self._slot(job.channel_key).free += 1
        return True

    def submit(self, job: Job, message: Message | None = None) -> None:
        """Run ``job`` now in this process (it is already leased to us)."""
        if job.id in self._running:
            return
        self._running.add(job.id)
        self._leased.add(job.id)
        if job.id in self._reserved:  # (a reserved job holds its worker already)
            self._start(job, message)
            return
        # the job waits in line without a task until a worker (and, for a send, a slot of
        # its channel) is free: a task, its coroutines and context per waiting job are what
        # a backlog of thousands of sends would keep alive, and the garbage collector scan
        # again and again
        self._backlog.append((job, message))
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand the free workers to the waiting jobs that can run (:meth:`_pick`)."""
        while self._idle:
            picked = self._pick()
            if picked is None:
                return
            self._idle -= 1
            self._start(*picked)

    def _pick(self) -> tuple[Job, Message | None] | None:
        """The oldest waiting job that can run now (a send's channel slot taken for it):
        parked sends whose channel has a slot free again first, then the backlog in order. A
        send of the backlog whose channel has no slot free is parked instead: it waits holding
        no worker, so that one slow or rate-limited channel never holds the workers another
        channel's sends need."""
        picked = self._parked_ready() if self._parked else None
        while picked is None:
            if not self._backlog:
                return None
            picked = self._backlog.popleft()
            job = picked[0]
            if job.kind != "send":
                break
            key = job.channel_key
            wait = 0.0
            if key in self._parked or self._slot(key).free <= 0 or (wait := self._token(key)) > 0:
                # (parking frees no slot: no parked send became ready meanwhile)
                self._parked.setdefault(key, deque()).append((self._parks, *picked))
                self._parks += 1
                picked = None
                if wait > 0:
                    self._throttle(key, wait)
        job = picked[0]
        if job.kind == "send":
            self._slot(job.channel_key).free -= 1
            self._reserved.add(job.id)
        return picked

    def _hand_on(self) -> tuple[Job, Message | None] | None:
        """The job a worker done with its own runs next, in the same task (:meth:`_pick`);
        ``None``: the worker is free again."""
        picked = self._pick()
        if picked is None:
            self._idle += 1
        return picked

    def _successor(self, job: Job) -> tuple[int, Job, Message] | None:
        """A parked fresh send of ``job``'s channel to hand ``job``'s slot and worker to once
        ``job``'s send is recorded, its first vendor call recorded in the same transaction
        (one write fewer than recording it on its own): the channel's oldest, unless an
        older send of another channel could run instead. Taken out of its line, its slot
        counted as held; give it back with :meth:`_hand_back` if the record fails."""
        key = job.channel_key
        line = self._parked.get(key)
        if self._stopping or not line or key in self._throttled:
            return None
        order, successor, message = line[0]
        if message is None or successor.attempt_started_at is not None:
            return None  # (a job from the store, or one whose last call's outcome is unknown)
        if len(self._parked) > 1:
            for other_key, other in self._parked.items():
                if (other[0][0] < order and self._channel_slots[other_key].free > 0
                        and other_key not in self._throttled):
                    return None
        if (wait := self._token(key)) > 0:  # (last: it takes the token)
            self._throttle(key, wait)
            return None
        line.popleft()
        if not line:
            del self._parked[job.channel_key]
        self._reserved.add(successor.id)
        return order, successor, message

    def _hand_back(self, successor: tuple[int, Job, Message]) -> None:
        """A successor whose call was not recorded after all waits again, first in its line."""
        job = successor[1]
        self._reserved.discard(job.id)
        self._parked.setdefault(job.channel_key, deque()).appendleft(successor)

    def _parked_ready(self) -> tuple[Job, Message | None] | None:
        """The oldest parked send whose channel has a slot free and a token of its rate limit
        (taken for it), taken out of its line."""
        while True:
            best: str | None = None
            order = 0
            for key, line in self._parked.items():  # (a few channels: no index is needed)
                if (self._channel_slots[key].free > 0 and key not in self._throttled
                        and (best is None or line[0][0] < order)):
                    best, order = key, line[0][0]
            if best is None:
                return None
            if (wait := self._token(best)) > 0:  # its line waits for the token: the next one
                self._throttle(best, wait)
                continue
            line = self._parked[best]
            _, job, message = line.popleft()
            if not line:
                del self._parked[best]
            return job, message

    def _start(self, job: Job, message: Message | None) -> None:
        """Run ``job`` in a task of its own, holding a worker (:meth:`_work`)."""
        task = asyncio.create_task(self._work(job, message))
        self._tasks[task] = job
        self._unstarted[job.id] = task
        task.add_done_callback(self._done)

    async def _work(self, job: Job, message: Message | None) -> None:
        """A worker's task: ``job``, then each job handed on to the same worker when the one
        before is done (:meth:`_run`'s answer), so that waiting jobs run one after another in
        one task rather than in a task each."""
        del self._unstarted[job.id]  # begun: _run gives back what each job holds
        task = asyncio.current_task()
        assert task is not None
        while True:
            handed = await self._run(job, message)
            if handed is None:
                return
            job, message = handed
            self._tasks[task] = job

    def _done(self, task: asyncio.Task[Any]) -> None:
        """A worker's task ended. One ``stop()`` cancelled before its first step never ran
        :meth:`_run`: what its job holds is given back here (it stays leased)."""
        job = self._tasks.pop(task)
        if self._unstarted.get(job.id) is task:  # (the first thing _work does is take it out)
            del self._unstarted[job.id]
            self._running.discard(job.id)
            self._give_back(job)
            self._free_worker()

    def _free_worker(self) -> None:
        """A job is done with its worker: hand it to the oldest job that can run, else back."""
        self._idle += 1
        self._dispatch()
