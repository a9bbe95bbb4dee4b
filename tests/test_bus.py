"""Event buses: in-memory and NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from omnichannel_sdk import Address, Conversation, ConversationOpened, MemoryBus, NatsBus

from .conftest import NATS_URL, need_service

pytestmark = pytest.mark.anyio


def opened(n: int) -> ConversationOpened:
    return ConversationOpened(conversation=Conversation(
        id=f"conv_{n}", channel="sms", channel_key="sms", contact_id="ct_1",
        participants=[Address(channel="sms", handle="+14155550100")], thread_key="t",
        created_at=datetime.now(UTC)))


async def test_memory_bus_fans_out_and_never_blocks() -> None:
    bus = MemoryBus()
    first, second = bus.subscribe(maxsize=2), bus.subscribe(maxsize=2)
    got_first = asyncio.ensure_future(first.__anext__())
    got_second = asyncio.ensure_future(second.__anext__())
    await asyncio.sleep(0)
    await bus.publish(opened(1))
    assert (await got_first).conversation.id == "conv_1"
    assert (await got_second).conversation.id == "conv_1"
    for n in range(2, 6):  # a slow subscriber loses its oldest events
        await bus.publish(opened(n))
    assert bus.dropped >= 2
    await bus.close()
    assert [e.conversation.id async for e in first] == ["conv_4", "conv_5"]


@pytest.mark.nats
async def test_nats_bus_crosses_processes() -> None:
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    a = NatsBus(NATS_URL, stream=f"OMNI_TEST_{tag}", subject=f"omni.test{tag}")
    b = NatsBus(NATS_URL, stream=f"OMNI_TEST_{tag}", subject=f"omni.test{tag}")
    await a.open()
    await b.open()
    try:
        events = b.subscribe()
        waiter = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.2)
        await a.publish(opened(7))
        received = await asyncio.wait_for(waiter, 5)
        assert isinstance(received, ConversationOpened) and received.conversation.id == "conv_7"
    finally:
        await a._js.delete_stream(f"OMNI_TEST_{tag}")
        await a.close()
        await b.close()


async def test_a_full_subscriber_queue_counts_and_logs_its_drops(caplog: pytest.LogCaptureFixture) -> None:
    bus = MemoryBus()
    slow = bus.subscribe(maxsize=1)
    waiting = asyncio.ensure_future(slow.__anext__())
    await asyncio.sleep(0)
    await bus.publish(opened(0))
    await waiting  # subscribed; now it stops reading
    with caplog.at_level("WARNING", logger="omnichannel_sdk.bus"):
        for n in range(1, 5):
            await bus.publish(opened(n))
    assert bus.dropped == 3  # one queued, three pushed out
    assert any("dropped" in r.getMessage() and "conversation.opened" in r.getMessage()
               for r in caplog.records)
    await bus.close()


async def test_the_hub_skips_an_in_memory_bus_nobody_subscribed_to() -> None:
    import pluggy

    from omnichannel_sdk import hookspecs
    from omnichannel_sdk._plugins import PROJECT
    from omnichannel_sdk._publisher import Publisher

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    bus = MemoryBus()
    published: list[str] = []
    real = bus.publish

    async def spy(event: ConversationOpened) -> None:  # type: ignore[override]
        published.append(event.conversation.id)
        await real(event)

    bus.publish = spy  # type: ignore[method-assign]
    publisher = Publisher(pm, bus, hub=None)
    publisher.start()
    try:
        publisher.publish(opened(1))
        assert publisher.outgoing is not None
        await publisher.outgoing.join()
        assert published == []  # no subscriber: the pump did not call the bus
        events = bus.subscribe()
        waiter = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0)
        publisher.publish(opened(2))
        assert (await asyncio.wait_for(waiter, 5)).conversation.id == "conv_2"
        assert published == ["conv_2"]
    finally:
        await publisher.stop()
        await bus.close()
