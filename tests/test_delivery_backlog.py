"""The outbox's backlog: jobs submitted while every worker is busy wait in line without a task
of their own, start in the order they came as workers free up, never more than
``concurrency`` at once, and still run (or go back to the outbox) when the hub stops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from omnichannel_sdk import Hub
from omnichannel_sdk._store import Job

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


def _jobs(n: int) -> list[Job]:
    return [Job(id=f"job-probe-{i:03d}", kind="probe", channel_key="fake", message_id=None)
            for i in range(n)]


def _hub(omni_config: dict[str, Any], register_plugin: list, concurrency: int) -> Hub:
    omni_config["omnichannel"]["delivery"] = {"concurrency": concurrency}
    return Hub.from_config(omni_config, plugins=register_plugin)


async def test_waiting_jobs_start_in_order_at_most_concurrency_at_once(
        omni_config: dict, register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, 3)
    async with hub:
        delivery = hub.delivery
        started: list[str] = []
        running = 0
        most = 0
        gate = asyncio.Event()

        async def probe(job: Job) -> None:
            nonlocal running, most
            started.append(job.id)
            running += 1
            most = max(most, running)
            await gate.wait()
            running -= 1
            await hub.store.finish_job(job.id)

        delivery.handlers["probe"] = probe
        jobs = _jobs(10)
        for job in jobs:
            delivery.submit(job)
        assert len(delivery._tasks) == 3  # the other seven wait without a task
        await asyncio.sleep(0.05)
        assert started == [j.id for j in jobs[:3]]
        gate.set()
        for _ in range(200):
            if len(started) == 10 and not delivery._tasks:
                break
            await asyncio.sleep(0.01)
        assert started == [j.id for j in jobs]  # in the order they came
        assert most == 3
        assert not delivery._running and not delivery._leased
        assert delivery._idle == 3  # every worker given back


async def test_a_fresh_send_does_not_jump_the_backlog(omni_config: dict,
                                                      register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, 1)
    async with hub:
        delivery = hub.delivery
        gate = asyncio.Event()

        async def probe(job: Job) -> None:
            await gate.wait()

        delivery.handlers["probe"] = probe
        for job in _jobs(2):
            delivery.submit(job)
        fresh = Job(id="job-fresh", kind="send", channel_key="fake", message_id=None)
        assert not await delivery.reserve(fresh, [])  # no worker free: it waits its turn
        delivery.unreserve(fresh)
        gate.set()


async def test_stopping_runs_the_backlog_until_the_timeout(omni_config: dict,
                                                           register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, 2)
    done: list[str] = []
    async with hub:
        async def probe(job: Job) -> None:
            await asyncio.sleep(0.01)
            done.append(job.id)
            await hub.store.finish_job(job.id)

        hub.delivery.handlers["probe"] = probe
        for job in _jobs(6):
            hub.delivery.submit(job)
    assert sorted(done) == [j.id for j in _jobs(6)]  # the backlog ran while the hub stopped


async def test_a_backlog_left_at_the_timeout_goes_back_to_the_outbox(
        omni_config: dict, register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, 1)
    released: list[str] = []
    async with hub:
        delivery = hub.delivery

        async def probe(job: Job) -> None:
            await asyncio.sleep(3600)

        async def release(job_ids: list[str]) -> None:
            released.extend(job_ids)

        delivery.handlers["probe"] = probe
        delivery.store.release_jobs = release  # type: ignore[method-assign]
        for job in _jobs(3):
            delivery.submit(job)
        await asyncio.sleep(0.01)
        await delivery.stop(timeout=0.05)
        assert sorted(released) == [j.id for j in _jobs(3)]  # the running one and the waiting
        assert not delivery._tasks and not delivery._backlog and not delivery._running


async def test_stop_cancelling_tasks_that_never_started_gives_their_workers_back(
        omni_config: dict, register_plugin: list) -> None:
    """A task handed a worker but cancelled by ``stop()`` before its first step never runs the
    job's ``finally``: its worker, channel slot and reservation are given back all the same,
    and the job goes back to the outbox."""
    hub = _hub(omni_config, register_plugin, 3)
    released: list[str] = []
    async with hub:
        delivery = hub.delivery
        assert delivery._poller is not None
        delivery._poller.cancel()  # (so that stop() below does not yield before cancelling)
        await asyncio.gather(delivery._poller, return_exceptions=True)
        delivery._poller = None

        async def release(job_ids: list[str]) -> None:
            released.extend(job_ids)

        delivery.handlers["probe"] = lambda job: asyncio.sleep(3600)
        delivery.store.release_jobs = release  # type: ignore[method-assign]
        slot = delivery._slot("fake")
        free_slots = slot.free
        fresh = Job(id="job-fresh", kind="probe", channel_key="fake", message_id=None)
        assert await delivery.reserve(fresh, [])
        delivery.submit(fresh)
        for job in _jobs(2):
            delivery.submit(job)
        assert len(delivery._tasks) == 3 and delivery._idle == 0
        await delivery.stop(timeout=0)  # cancels the three before any has begun
        assert sorted(released) == sorted([fresh.id] + [j.id for j in _jobs(2)])
        assert delivery._idle == 3  # every worker given back
        assert slot.free == free_slots  # and the reserved channel slot
        assert not delivery._tasks and not delivery._running and not delivery._reserved
        assert not delivery._rendered and not getattr(delivery, "_unstarted", None)
