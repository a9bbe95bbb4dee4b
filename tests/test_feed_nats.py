"""The durable feed on NATS JetStream in process: durable consumer, resume, reads after a seq."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from omnichannel_sdk import Hub

from .conftest import NATS_URL, need_service
from .test_feed import _post, _take

pytestmark = [pytest.mark.anyio, pytest.mark.nats]


async def test_nats_feed_resumes_and_reads_after_a_seq(omni_config: dict[str, Any],
                                                       register_plugin: list[object]) -> None:
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    stream = f"OMNI_FN_{tag}"
    omni_config["omnichannel"]["bus"] = f"{NATS_URL}?stream={stream}&subject=omni.fn{tag}"
    omni_config["omnichannel"]["feed"] = {"lease": 2, "poll_interval": 0.1, "batch": 10}
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        assert hub._feed.engine == "nats"
        await _post(hub, [{"id": f"n{i}", "from": "nat", "text": str(i)} for i in range(3)])
        hub.signal("fake", "conv_x", "typing")  # passing signals are not in the feed
        events = await _take(hub.feed("desk"), 4)
        assert [e.type for e in events] == ["conversation.opened"] + ["message.received"] * 3
        assert [e.seq for e in events] == sorted(e.seq for e in events)  # type: ignore[type-var]
        await hub.ack("desk", events[1].seq)  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        assert await hub._feed.last_seq() >= events[-1].seq  # type: ignore[operator]
        after = await hub._feed.after(events[0].seq, 10)  # type: ignore[arg-type]
        assert [e.seq for e in after][:3] == [e.seq for e in events[1:]]
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        again = await _take(hub.feed("desk"), 2)  # the two not acknowledged come back
        assert [e.seq for e in again] == [e.seq for e in events[2:]]
        await hub.ack("desk", again[-1].seq)  # type: ignore[arg-type]
        await hub.bus._js.delete_stream(stream)  # type: ignore[attr-defined]


async def test_a_nats_reader_keeps_what_it_holds_for_longer_than_ack_wait(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    """The events a reader fetched and has not had acknowledged yet (handed out or not) are
    marked in progress every third of the lease, so JetStream does not redeliver them to
    another process while a slow consumer works through them."""
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    stream = f"OMNI_FN_{tag}"
    omni_config["omnichannel"]["bus"] = f"{NATS_URL}?stream={stream}&subject=omni.fn{tag}"
    omni_config["omnichannel"]["feed"] = {"lease": 1, "poll_interval": 0.1, "batch": 10}
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub, \
            Hub.from_config(omni_config, plugins=register_plugin) as other:
        await _post(hub, [{"id": f"n{i}", "from": f"u{i}", "text": str(i)} for i in range(3)])
        deadline = asyncio.get_running_loop().time() + 10
        while await hub._feed.last_seq() < 6:  # all six in the stream (a fresh one)
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        feed = hub.feed("desk")
        first = await anext(feed)  # this reader fetched all six
        elsewhere: list[Any] = []

        async def read_elsewhere() -> None:
            async for event in other.feed("desk"):
                elsewhere.append(event)

        reader = asyncio.create_task(read_elsewhere())
        await asyncio.sleep(2.5)  # 2.5 times ack_wait on the first event
        rest = [await anext(feed) for _ in range(5)]
        await asyncio.sleep(1.5)  # all handed out, none acknowledged yet (acks come in batches)
        for event in [first, *rest]:
            await hub.ack("desk", event.seq)  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        assert elsewhere == []  # nothing redelivered to the other process
        assert len({e.seq for e in [first, *rest]}) == 6
        await feed.aclose()
        await hub.bus._js.delete_stream(stream)  # type: ignore[attr-defined]
