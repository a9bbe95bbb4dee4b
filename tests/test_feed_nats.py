"""The durable feed on NATS JetStream in process: durable consumer, resume, reads after a seq."""

from __future__ import annotations

import asyncio
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
