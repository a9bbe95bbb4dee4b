"""A channel whose vendor is slow or rate-limited holds at most its own
``max_in_flight_per_channel`` workers: a send on another channel queued behind its backlog
goes at once, not after it."""

from __future__ import annotations

import asyncio
import time
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


def _hub(omni_config: dict[str, Any], register_plugin: list, **delivery: Any) -> Hub:
    omni_config["channels"]["slow"] = {"adapter": "fake", "secret": FAKE_SECRET,
                                       "api_base": "https://api.slow.test"}
    settings = omni_config["omnichannel"]
    settings["delivery"] = {**settings.get("delivery", {}), **delivery}
    return Hub.from_config(omni_config, plugins=register_plugin)


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

    async with hub:
        busy, other = await _opened(hub, "slow"), await _opened(hub, "fake")
        with respx.mock(assert_all_called=False) as vendor:
            vendor.post(SLOW).mock(side_effect=slow)
            vendor.post(QUICK).mock(side_effect=quick)
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
