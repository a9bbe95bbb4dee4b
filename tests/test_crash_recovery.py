"""After a crash: vendor calls recorded before they are made, a restarted process takes back its
own leases at once (never a live one's), sends in flight bounded per channel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from omnichannel_sdk import Hub
from omnichannel_sdk.testing import PUBLIC_URL

from .test_delivery import SEND, conversation_id, inbound, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


def _config(omni_config: dict[str, Any], worker: str = "crash-worker", **delivery: Any) -> dict:
    settings = omni_config["omnichannel"]
    settings["delivery"] = {**settings["delivery"], "worker_id": worker, **delivery}
    return omni_config


async def _seed(hub: Hub) -> str:
    transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        await inbound(client, "in1")
    return await conversation_id(hub)


async def _job_row(hub: Hub, message_id: str) -> tuple[Any, ...] | None:
    async def read(tx: Any) -> Any:
        return await tx.fetchone(
            "SELECT owner, attempt_us, vendor_attempts, state FROM jobs WHERE message_id = $1",
            message_id)

    row = await hub.store._read(read)
    return tuple(row) if row is not None else None


async def _die_mid_call(hub: Hub, conversation: str, text: str,
                        vendor: respx.MockRouter) -> tuple[str, asyncio.Event]:
    """Send ``text`` and make the process "die" while the vendor holds the call: the job
    stays leased to this identity, its vendor call recorded as started, nothing released."""
    called = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        called.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    vendor.post(SEND).mock(side_effect=hang)
    message = await hub.send(conversation, text=text)
    await asyncio.wait_for(called.wait(), 10)
    hub.delivery._leased.clear()  # a killed process hands nothing back
    await hub.delivery.stop(timeout=0.01)
    return message.id, called


async def test_a_vendor_call_is_recorded_before_it_is_made(
        omni_config: dict, register_plugin: list) -> None:
    hub = Hub.from_config(_config(omni_config), plugins=register_plugin)
    seen: list[Any] = []
    async with hub:
        conversation = await _seed(hub)

        async def answer(request: httpx.Request) -> httpx.Response:
            seen.append(await _job_row(hub, request.headers["idempotency-key"]))
            return httpx.Response(200, json={"id": "v1"})

        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SEND).mock(side_effect=answer)
            sent = await hub.send(conversation, text="hello", wait=True)
    assert sent.status == "sent"
    [(owner, attempt_us, vendor_attempts, state)] = seen
    assert owner == "crash-worker" and attempt_us is not None and vendor_attempts == 1
    assert state == "running"
    assert "possible_duplicates" not in sent.metadata


async def test_a_restarted_process_takes_back_its_own_leases_at_once(
        omni_config: dict, register_plugin: list) -> None:
    config = _config(omni_config, lease=120.0)
    first = Hub.from_config(config, plugins=register_plugin)
    with respx.mock(assert_all_called=False) as vendor:
        async with first:
            conversation = await _seed(first)
            message_id, _ = await _die_mid_call(first, conversation, "left mid-call", vendor)
        vendor.post(SEND).respond(200, json={"id": "v-again"})
        second = Hub.from_config(config, plugins=register_plugin)
        async with second:
            # the lease runs 120 s; the same identity takes the job back now, not then
            async def sent() -> bool:
                stored = await second.store.get_message(message_id)
                return stored is not None and stored.status == "sent"

            await wait_until(sent, timeout=20)
            stored = await second.store.get_message(message_id)
            taken = second.metrics.leases_taken_over._value.get()
            resent = second.metrics.uncertain_sends.labels("fake", "resent")._value.get()
    assert second.store.identity is None  # given up on close
    assert taken == 1 and resent == 1
    assert stored is not None and stored.external_id == "v-again"
    # the first call may have reached the vendor: counted, and said on the message
    assert stored.metadata["possible_duplicates"] == 1


async def test_a_live_process_never_takes_anothers_fresh_leases(
        omni_config: dict, register_plugin: list) -> None:
    async with _two_processes(_config(omni_config, lease=120.0), register_plugin) as (
            first, second, calls, release, conversation):
        message = await first.send(conversation, text="mine")
        await wait_until(lambda: _true(bool(calls)), timeout=10)
        async with second:
            # same worker_id, both alive: the second gets an identity of its own
            assert (first.store.identity, second.store.identity) == (
                "crash-worker", "crash-worker#2")
            assert second.metrics.leases_taken_over._value.get() == 0
            for _ in range(10):  # many polls of the second process
                await asyncio.sleep(0.05)
                assert await second.store.claim_jobs(10, 60) == []
            release.set()

            async def sent() -> bool:
                stored = await first.store.get_message(message.id)
                return stored is not None and stored.status == "sent"

            await wait_until(sent, timeout=10)
    assert calls == [message.id]  # one vendor call: nobody stole the fresh lease


async def test_a_live_process_keeps_the_jobs_that_wait_longer_than_their_lease(
        omni_config: dict, register_plugin: list) -> None:
    """A process renews the leases of the jobs it holds, the one in flight and those waiting
    behind it for the channel's slot: a second process polling past the lease takes none
    over, and every message is sent once."""
    config = _config(omni_config, lease=0.6, max_in_flight_per_channel=1, poll_interval=0.05)
    async with _two_processes(config, register_plugin) as (first, second, calls, release, conversation):
        messages = [await first.send(conversation, text=f"m{i}") for i in range(3)]
        await wait_until(lambda: _true(bool(calls)), timeout=10)
        assert sum(len(line) for line in first.delivery._parked.values()) == 2
        async with second:
            # three leases' time: without renewals each job would be free after one
            deadline = asyncio.get_running_loop().time() + 1.8
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
                assert await second.store.claim_jobs(10, 60) == []
            rows = [await _job_row(first, m.id) for m in messages]
            assert all(row is not None and row[0] == "crash-worker" for row in rows)
            release.set()

            async def sent() -> bool:
                stored = [await first.store.get_message(m.id) for m in messages]
                return all(s is not None and s.status == "sent" for s in stored)

            await wait_until(sent, timeout=10)
    assert calls == [m.id for m in messages]  # each sent once, in order


async def test_renew_leases_renews_only_this_process_s_running_jobs(
        omni_config: dict, register_plugin: list) -> None:
    first = Hub.from_config(_config(omni_config, lease=120.0), plugins=register_plugin)
    second = Hub.from_config(_config(omni_config, lease=120.0), plugins=register_plugin)
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"id": "v1"})

    with respx.mock(assert_all_called=False) as vendor:
        vendor.post(SEND).mock(side_effect=slow)
        async with first, second:
            conversation = await _seed(first)
            message = await first.send(conversation, text="mine")
            job_id = next(iter(first.delivery._leased))
            assert await second.store.renew_leases([job_id, "job-gone"], 60) == 0  # not its own
            assert await first.store.renew_leases([job_id, "job-gone"], 60) == 1
            assert await first.store.renew_leases([], 60) == 0
            release.set()
            await asyncio.wait_for(first.delivery.wait_for(message.id), 10)
            assert await first.store.renew_leases([job_id], 60) == 0  # finished: no row


@contextlib.asynccontextmanager
async def _two_processes(config: dict[str, Any], register_plugin: list[Any]) -> AsyncIterator[
        tuple[Hub, Hub, list[str], asyncio.Event, str]]:
    """Two hubs of one deployment (one store, one ``worker_id``) and a vendor that holds every
    call until ``release`` is set: the first hub open with a seeded conversation, the second
    not yet open; and the idempotency keys of the vendor calls."""
    first = Hub.from_config(config, plugins=register_plugin)
    second = Hub.from_config(config, plugins=register_plugin)
    calls, release, slow = _held_vendor()
    with respx.mock(assert_all_called=False) as vendor:
        vendor.post(SEND).mock(side_effect=slow)
        async with first:
            yield first, second, calls, release, await _seed(first)


def _held_vendor() -> tuple[list[str], asyncio.Event, Callable[[httpx.Request], Any]]:
    """A vendor that notes each call's idempotency key and answers once the event is set."""
    release = asyncio.Event()
    calls: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["idempotency-key"])
        await release.wait()
        return httpx.Response(200, json={"id": f"v{len(calls)}"})

    return calls, release, slow


async def _true(value: bool) -> bool:
    return value


async def test_sends_in_flight_per_channel_are_bounded(
        omni_config: dict, register_plugin: list) -> None:
    hub = Hub.from_config(_config(omni_config, max_in_flight_per_channel=3),
                          plugins=register_plugin)
    in_flight = 0
    most = 0
    gate = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await gate.wait()
        in_flight -= 1
        return httpx.Response(200, json={"id": request.headers["idempotency-key"]})

    async with hub:
        conversation = await _seed(hub)
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SEND).mock(side_effect=answer)
            sends = [asyncio.ensure_future(hub.send(conversation, text=f"m{i}", wait=True))
                     for i in range(12)]
            await wait_until(lambda: _true(in_flight == 3), timeout=10)
            for _ in range(5):  # the others wait for a slot, however long the vendor takes
                await asyncio.sleep(0.02)
                assert in_flight == 3
            gate.set()
            results = await asyncio.gather(*sends)
    assert most == 3 and all(m.status == "sent" for m in results)


async def test_a_timeout_keeps_the_attempt_a_refusal_clears_it(
        omni_config: dict, register_plugin: list) -> None:
    hub = Hub.from_config(_config(omni_config, max_attempts=5), plugins=register_plugin)
    answers = [httpx.ReadTimeout("slow vendor"), httpx.Response(503), httpx.ConnectError("down"),
               httpx.Response(200, json={"id": "v-last"})]
    seen: list[Any] = []

    async with hub:
        conversation = await _seed(hub)

        async def answer(request: httpx.Request) -> httpx.Response:
            row = await _job_row(hub, request.headers["idempotency-key"])
            seen.append(row[1] is not None if row else None)
            result = answers.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

        recorded: list[Any] = []
        original = hub.store.begin_attempt

        async def spy(job_id: str, **kwargs: Any) -> None:  # the job just before each call
            async def read(tx: Any) -> Any:
                return await tx.fetchone("SELECT attempt_us FROM jobs WHERE id = $1", job_id)

            recorded.append((await hub.store._read(read))[0] is not None)
            await original(job_id, **kwargs)

        hub.store.begin_attempt = spy  # type: ignore[method-assign]
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SEND).mock(side_effect=answer)
            sent = await hub.send(conversation, text="flaky", wait=True)
    assert sent.status == "sent"
    # call 1 was recorded with the job itself (hub.send found a free slot); the retries each
    # record theirs: call 1 timed out (may have arrived): kept before call 2; call 2 answered
    # 503: cleared; call 3 could not connect: nothing arrived, cleared
    assert recorded == [True, False, False]
    assert seen == [True, True, True, True]  # every call was recorded before it was made
    assert sent.metadata["possible_duplicates"] == 1  # call 2 went after a timeout


async def test_a_send_waiting_for_a_slot_records_its_call_when_it_gets_one(
        omni_config: dict, register_plugin: list) -> None:
    hub = Hub.from_config(_config(omni_config, max_in_flight_per_channel=1),
                          plugins=register_plugin)
    gate = asyncio.Event()
    seen: list[Any] = []
    async with hub:
        conversation = await _seed(hub)

        async def answer(request: httpx.Request) -> httpx.Response:
            seen.append(await _job_row(hub, request.headers["idempotency-key"]))
            await gate.wait()
            return httpx.Response(200, json={"id": f"v{len(seen)}"})

        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SEND).mock(side_effect=answer)
            first = asyncio.ensure_future(hub.send(conversation, text="one", wait=True))
            await wait_until(lambda: _true(len(seen) == 1), timeout=10)
            second = await hub.send(conversation, text="two")  # no slot free: waits its turn
            waiting = await _job_row(hub, second.id)
            waiter = hub.delivery.wait_for(second.id)
            gate.set()
            results = [await first, await asyncio.wait_for(waiter, 10)]
    assert waiting is not None and waiting[1] is None  # not recorded while it waited
    assert [r.status for r in results] == ["sent", "sent"]
    assert [row[1] is not None and row[2] == 1 for row in seen] == [True, True]
