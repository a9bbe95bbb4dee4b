"""A channel whose vendor is slow or rate-limited holds at most its own
``max_in_flight_per_channel`` workers: a send on another channel queued behind its backlog
goes at once, not after it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from omnichannel_sdk import Hub
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import FAKE_SECRET, signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]

SLOW = "https://api.slow.test/messages"
QUICK = "https://api.fake.test/messages"


def _hub(omni_config: dict[str, Any], register_plugin: list, slow: dict[str, Any] | None = None,
         **delivery: Any) -> Hub:
    omni_config["channels"]["slow"] = {"adapter": "fake", "secret": FAKE_SECRET,
                                       "api_base": "https://api.slow.test", **(slow or {})}
    settings = omni_config["omnichannel"]
    settings["delivery"] = {**settings.get("delivery", {}), **delivery}
    return Hub.from_config(omni_config, plugins=register_plugin)


@contextlib.asynccontextmanager
async def _two_channels(hub: Hub, slow: Callable[..., Any],
                        quick: Callable[..., Any]) -> AsyncIterator[tuple[str, str]]:
    """The open hub, a conversation on the "slow" channel and one on "fake", their vendors
    answered by ``slow`` and ``quick``."""
    async with hub:
        busy, other = await _opened(hub, "slow"), await _opened(hub, "fake")
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(side_effect=slow)
            vendor.post(QUICK).mock(side_effect=quick)
            yield busy, other


async def _opened(hub: Hub, key: str) -> str:
    """A conversation on channel ``key`` whose reply window a customer's message opened."""
    body, headers = signed([{"id": f"in-{key}", "from": "alice", "text": "hi"}])
    transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        response = await client.post(f"/webhooks/{key}", content=body, headers=headers)
    assert response.status_code == 200
    [conversation] = [c for c in await hub.store.list_conversations() if c.channel_key == key]
    return conversation.id


async def test_a_busy_channel_does_not_hold_the_workers_of_another(
        omni_config: dict, register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, concurrency=4, max_in_flight_per_channel=1)
    gate = asyncio.Event()
    quick_at: list[float] = []

    order: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        order.append(request.headers["idempotency-key"])
        await gate.wait()
        return httpx.Response(200, json={"id": request.headers["idempotency-key"]})

    def quick(request: httpx.Request) -> httpx.Response:
        quick_at.append(time.monotonic())
        return httpx.Response(200, json={"id": "q1"})

    async with _two_channels(hub, slow, quick) as (busy, other):
        held = [await hub.send(busy, text=f"m{i}") for i in range(10)]
        # one send of the busy channel holds a worker (its one slot); nine wait parked
        # without a task, and three workers stay free for every other channel
        assert len(hub.delivery._tasks) == 1 and hub.delivery._idle == 3
        sent = await asyncio.wait_for(hub.send(other, text="quick", wait=True), 5)
        assert sent.status == "sent" and len(quick_at) == 1
        gate.set()
        for message in held:
            async def done(mid: str = message.id) -> bool:
                stored = await hub.store.get_message(mid)
                return stored is not None and stored.status == "sent"
            for _ in range(500):
                if await done():
                    break
                await asyncio.sleep(0.01)
            assert await done()
    assert order == [m.id for m in held]  # the parked sends went in the order they came


async def test_a_rate_limited_channel_waits_for_its_tokens_holding_no_worker(
        omni_config: dict, register_plugin: list) -> None:
    """Sends waiting for their channel's rate limit wait parked, not on a worker each: another
    channel's reply goes at once, and the limited channel keeps its rate and its order."""
    hub = _hub(omni_config, register_plugin, slow={"rate_limit": 4}, concurrency=4)
    slow_at: list[float] = []
    slow_before_quick: list[int] = []
    order: list[str] = []

    def slow(request: httpx.Request) -> httpx.Response:
        slow_at.append(time.monotonic())
        order.append(request.headers["idempotency-key"])
        return httpx.Response(200, json={"id": request.headers["idempotency-key"]})

    def quick(request: httpx.Request) -> httpx.Response:
        slow_before_quick.append(len(slow_at))
        return httpx.Response(200, json={"id": "q1"})

    async with _two_channels(hub, slow, quick) as (busy, other):
        queued = [await hub.send(busy, text=f"m{i}") for i in range(12)]
        sent = await asyncio.wait_for(hub.send(other, text="quick", wait=True), 5)
        # the reply went with the burst's sends, not after 8 more (before: each of the four
        # workers waited for a token, and the reply for a worker)
        assert sent.status == "sent" and len(slow_before_quick) == 1
        assert slow_before_quick[0] <= 5
        for _ in range(500):
            stored = [await hub.store.get_message(m.id) for m in queued]
            if all(m is not None and m.status == "sent" for m in stored):
                break
            await asyncio.sleep(0.02)
    assert [m.status if m else None for m in stored] == ["sent"] * 12
    assert order == [m.id for m in queued]
    # a burst of 4, then 4 a second: the last of 12 no sooner than 2 s after the first
    assert slow_at[-1] - slow_at[0] >= 1.8


async def test_sends_waiting_for_a_token_go_back_to_the_outbox_when_the_hub_stops(
        omni_config: dict, register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, slow={"rate_limit": 0.5}, concurrency=4)
    async with hub:
        busy = await _opened(hub, "slow")
        delivery = hub.delivery
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(return_value=httpx.Response(200, json={"id": "v1"}))
            queued = [await hub.send(busy, text=f"m{i}") for i in range(3)]
            for _ in range(200):  # the burst's one send goes; two wait for tokens 2 s apart
                first = await hub.store.get_message(queued[0].id)
                if first is not None and first.status == "sent":
                    break
                await asyncio.sleep(0.01)
            assert "slow" in delivery._throttled and delivery._idle == 4
            timer = delivery._throttled["slow"]
            await delivery.stop(timeout=0.05)
        assert not delivery._throttled and timer.cancelled()
        assert not delivery._parked and not delivery._running
        rest = [await hub.store.get_message(m.id) for m in queued[1:]]
        assert [m.status if m else None for m in rest] == ["queued", "queued"]
        assert await hub.store.pending_jobs() == 2  # handed back to the outbox, not lost


async def test_a_retry_of_another_channel_is_claimed_behind_a_parked_backlog(
        omni_config: dict, register_plugin: list) -> None:
    """Parked sends hold no worker, so the outbox's poll still claims other channels' due
    jobs (a web chat reply's retry) while one channel works through its backlog."""
    hub = _hub(omni_config, register_plugin, concurrency=4, max_in_flight_per_channel=1,
               base_delay=0.05, max_delay=0.1, poll_interval=0.05)
    gate = asyncio.Event()
    tries: list[float] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200, json={"id": request.headers["idempotency-key"]})

    def flaky(request: httpx.Request) -> httpx.Response:
        tries.append(time.monotonic())
        if len(tries) == 1:
            return httpx.Response(503, json={"error": "try again"})
        return httpx.Response(200, json={"id": "q1"})

    async with _two_channels(hub, slow, flaky) as (busy, other):
        for i in range(10):
            await hub.send(busy, text=f"m{i}")
        assert len(hub.delivery._running) >= 4  # (more than the workers: nine parked)
        sent = await asyncio.wait_for(hub.send(other, text="quick", wait=True), 5)
        assert sent.status == "sent" and len(tries) == 2  # retried while the line waits
        gate.set()


async def test_parked_sends_go_back_to_the_outbox_when_the_hub_stops(
        omni_config: dict, register_plugin: list) -> None:
    hub = _hub(omni_config, register_plugin, concurrency=4, max_in_flight_per_channel=1)
    released: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async with hub:
        busy = await _opened(hub, "slow")
        delivery = hub.delivery
        original = delivery.store.release_jobs

        async def release(job_ids: list[str]) -> None:
            released.extend(job_ids)
            await original(job_ids)

        delivery.store.release_jobs = release  # type: ignore[method-assign]
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(side_effect=hang)
            for i in range(3):
                await hub.send(busy, text=f"m{i}")
            await asyncio.sleep(0.01)
            assert sum(len(line) for line in delivery._parked.values()) == 2
            await delivery.stop(timeout=0.05)
        assert len(released) == 3  # the one in flight and the two parked
        assert not delivery._parked and not delivery._running and not delivery._tasks
        assert delivery._slot("slow").free == 1 and delivery._idle == 4


async def _attempt_us(hub: Hub, message_id: str) -> Any:
    async def read(tx: Any) -> Any:
        return await tx.fetchone("SELECT attempt_us FROM jobs WHERE message_id = $1", message_id)

    row = await hub.store._read(read)
    return row[0] if row is not None else None


async def test_a_parked_send_s_call_is_recorded_with_the_result_before_it(
        omni_config: dict, register_plugin: list) -> None:
    """The worker done with a send takes the channel's next parked send on: that send's call
    is recorded as started in the transaction that records the result before it (no
    ``begin_attempt`` of its own), and durably before the vendor sees it."""
    hub = _hub(omni_config, register_plugin, concurrency=4, max_in_flight_per_channel=1)
    seen: list[Any] = []
    begun: list[str] = []
    gate = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(await _attempt_us(hub, request.headers["idempotency-key"]))
        await gate.wait()
        return httpx.Response(200, json={"id": f"v{len(seen)}"})

    async with hub:
        busy = await _opened(hub, "slow")
        original = hub.store.begin_attempt

        async def spy(job_id: str, **kwargs: Any) -> None:
            begun.append(job_id)
            await original(job_id, **kwargs)

        hub.store.begin_attempt = spy  # type: ignore[method-assign]
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(side_effect=answer)
            queued = [await hub.send(busy, text=f"m{i}") for i in range(4)]
            waiters = [hub.delivery.wait_for(m.id) for m in queued]
            gate.set()
            sent = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert [m.status for m in sent] == ["sent"] * 4
    assert len(seen) == 4 and all(at is not None for at in seen)  # recorded before each call
    assert begun == []  # the first with its job, the others with the send before them


async def test_a_record_that_fails_gives_the_next_send_back_its_place(
        omni_config: dict, register_plugin: list) -> None:
    """When the transaction that would record the next send's call fails, that send is not
    recorded and waits first in line again: it records its own call before it is made."""
    from omnichannel_sdk._errors import StoreUnavailableError

    hub = _hub(omni_config, register_plugin, concurrency=4, max_in_flight_per_channel=1,
               base_delay=0.05, max_delay=0.1, poll_interval=0.05)
    seen: dict[str, Any] = {}
    begun: list[str] = []
    failed: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        key = request.headers["idempotency-key"]
        seen.setdefault(key, await _attempt_us(hub, key))
        await asyncio.sleep(0.02)
        return httpx.Response(200, json={"id": f"v-{key}"})

    async with hub:
        busy = await _opened(hub, "slow")
        record, begin = hub.store.record_sent, hub.store.begin_attempt

        async def flaky(message: Any, ids: list[str], job_id: str | None, *,
                        next_attempt: str | None = None) -> Any:
            if next_attempt and not failed:
                failed.append(next_attempt)
                raise StoreUnavailableError("the database went away for a moment")
            return await record(message, ids, job_id, next_attempt=next_attempt)

        async def spy(job_id: str, **kwargs: Any) -> None:
            begun.append(job_id)
            await begin(job_id, **kwargs)

        hub.store.record_sent = flaky  # type: ignore[method-assign]
        hub.store.begin_attempt = spy  # type: ignore[method-assign]
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(side_effect=answer)
            queued = [await hub.send(busy, text=f"m{i}") for i in range(3)]
            waiters = [hub.delivery.wait_for(m.id) for m in queued]
            sent = await asyncio.wait_for(asyncio.gather(*waiters), 10)
    assert [m.status for m in sent] == ["sent"] * 3
    assert failed and failed[0] in begun  # handed back: it recorded its own call
    assert all(seen[m.id] is not None for m in queued)  # every call recorded before it
