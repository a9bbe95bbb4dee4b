"""Statuses say where a message is: receipts only for accepted sends; stopping frees leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from omnichannel_sdk import Address, Hub, StatusUpdate
from omnichannel_sdk.testing import PUBLIC_URL

from .test_delivery import SEND, conversation_id, inbound, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


async def test_a_read_watermark_never_marks_a_message_still_in_our_outbox(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    hub.delivery.submit = lambda job, message=None: None  # type: ignore[method-assign]  # never sent
    message = await hub.send(await conversation_id(hub), text="not yet at the vendor")
    await hub.apply_status("fake", StatusUpdate(
        status="read", watermark=datetime.now(UTC) + timedelta(minutes=1),
        recipient=Address(channel="fake", handle="alice")))
    stored = await hub.store.get_message(message.id)
    assert stored is not None and stored.status == "queued"


async def test_stopping_hands_unfinished_sends_back_at_once(
        omni_config: dict, register_plugin: list) -> None:
    first = Hub.from_config(omni_config, plugins=register_plugin)
    async with first:
        transport = httpx.ASGITransport(app=first.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "in1")
        first.delivery._poller.cancel()  # type: ignore[union-attr]  # this process only queues
        original = first.delivery._run

        async def never(job, message):  # the send is leased but never reaches the vendor
            import asyncio
            await asyncio.sleep(3600)

        first.delivery._run = never  # type: ignore[method-assign]
        message = await first.send(await conversation_id(first), text="left behind?")
        first.delivery._run = original  # type: ignore[method-assign]
    # the default lease is 120 s: a second process finds the job due now, not in two minutes
    second = Hub.from_config(omni_config, plugins=register_plugin)
    with respx.mock(assert_all_called=False) as vendor:
        vendor.post(SEND).respond(200, json={"id": "v-left"})
        async with second:
            jobs = await second.store.claim_jobs(10, 60)
            if not jobs:  # the second hub's own poller was quicker: it took the job at once
                async def sent() -> bool:
                    stored = await second.store.get_message(message.id)
                    return stored is not None and stored.status == "sent"

                await wait_until(sent, timeout=10)
            else:
                assert [j.message_id for j in jobs] == [message.id]
