"""The retry state of a send is on the message (``metadata["delivery"]``) and published live."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from omnichannel_sdk import Event, Hub, MessageUpdated

from .test_delivery import SEND, conversation_id, inbound, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


async def collect(hub: Hub, into: list[Event]) -> None:
    async for event in hub.events():
        into.append(event)


async def test_a_throttled_send_shows_attempts_last_error_and_next_try(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    events: list[Event] = []
    listener = asyncio.create_task(collect(hub, events))
    await asyncio.sleep(0.05)
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(429, headers={"Retry-After": "600"})
        before = datetime.now(UTC)
        message = await hub.send(await conversation_id(hub), text="x")

        async def tried() -> bool:
            stored = await hub.store.get_message(message.id)
            return bool(stored and "delivery" in stored.metadata)

        await wait_until(tried)
    stored = await hub.store.get_message(message.id)
    assert stored is not None and stored.status == "queued" and stored.error is None
    state = stored.metadata["delivery"]
    assert set(state) == {"attempts", "last_error", "next_attempt_at"}
    assert state["attempts"] == 1 and route.call_count == 1
    assert state["last_error"].startswith("rate_limited: ")
    next_try = datetime.fromisoformat(state["next_attempt_at"])
    assert before + timedelta(seconds=599) <= next_try <= datetime.now(UTC) + timedelta(seconds=601)
    await wait_until(lambda: _async(any(isinstance(e, MessageUpdated) for e in events)))
    [update] = [e for e in events if isinstance(e, MessageUpdated)]
    assert update.message.id == message.id and update.message.metadata["delivery"] == state
    listener.cancel()


async def _async(value: bool) -> bool:
    return value


async def test_a_send_that_went_through_on_the_second_try_is_finalised(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    answers = iter([httpx.Response(429, headers={"Retry-After": "0"}),
                    httpx.Response(200, json={"id": "v-second"})])
    with respx.mock() as vendor:
        vendor.post(SEND).mock(side_effect=lambda _r: next(answers))
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "sent"
    state = message.metadata["delivery"]
    assert state["attempts"] == 2 and state["next_attempt_at"] is None
    assert state["last_error"].startswith("rate_limited: ")
    stored = await hub.store.get_message(message.id)
    assert stored is not None and stored.metadata["delivery"] == state


async def test_a_send_given_up_says_how_many_tries_and_why(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    with respx.mock() as vendor:
        vendor.post(SEND).respond(503)
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "failed"
    state = message.metadata["delivery"]
    assert state == {"attempts": 3, "last_error": state["last_error"], "next_attempt_at": None}
    assert state["last_error"].startswith("provider: ")
    stored = await hub.store.get_message(message.id)
    assert stored is not None and stored.metadata["delivery"] == state


async def test_a_first_try_success_carries_no_retry_state(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v-first"})
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "sent" and "delivery" not in message.metadata
