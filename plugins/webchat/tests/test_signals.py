"""Typing and seen as ``channel.signal`` events in one process (memory bus), the long-poll signal
buffer, and history read with ``last=``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from omnichannel_webchat import Session, WebchatAdapter, _plugin
from omnichannel_webchat._registry import Connection, SignalBuffer

from omnichannel_sdk import ChannelSignal, Hub

KEY = "webchat"


def test_buffer_keeps_publish_order_and_a_cursor() -> None:
    buffer = SignalBuffer(ttl=60)
    buffer.add("c1", 10.0, {"n": 1})
    buffer.add("c1", 30.0, {"n": 3})
    buffer.add("c1", 20.0, {"n": 2})  # published earlier on another process, arrived late
    buffer.add("c2", 15.0, {"n": 9})
    assert buffer.since("c1", None) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert buffer.since("c1", 10.0) == [{"n": 2}, {"n": 3}]
    assert buffer.since("c1", 30.0) == []
    assert buffer.since("nope", None) == []
    assert buffer.since("c2", None) == [{"n": 9}]


def test_buffer_forgets_after_ttl_and_is_bounded() -> None:
    buffer = SignalBuffer(ttl=0.05, per_conversation=3, max_conversations=2)
    for n in range(5):
        buffer.add("c1", float(n), {"n": n})
    assert buffer.since("c1", None) == [{"n": 2}, {"n": 3}, {"n": 4}]
    buffer.add("c2", 1.0, {})
    buffer.add("c3", 1.0, {})
    assert len(buffer) == 2 and buffer.since("c1", None) == []  # least recently used went
    time.sleep(0.08)
    buffer.add("c4", 1.0, {})
    assert len(buffer) == 1  # stale conversations are dropped as new ones arrive
    assert buffer.since("c2", None) == [] and buffer.since("c4", None) == [{}]


@pytest.fixture
async def hub(tmp_path: Path) -> Any:
    config = {
        "omnichannel": {"store": f"sqlite:///{tmp_path / 'one.db'}", "bus": "memory",
                        "blobs": "memory://", "public_url": "http://127.0.0.1:9",
                        "delivery": {"poll_interval": 0.05}},
        "channels": {KEY: {"adapter": "webchat", "secret": "signal-test-secret-0000",
                           "history_limit": 3}},
    }
    instance = Hub.from_config(config, plugins=[_plugin], entry_points=False)
    async with instance:
        yield instance


async def drain(conn: Connection, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        out += [orjson.loads(raw) for raw in await conn.next_frames(left)]
    return out


@pytest.mark.anyio
async def test_signals_in_one_process_arrive_once(hub: Hub) -> None:
    """The adapter's own signals are delivered at once and their bus echo skipped; a bare
    ``hub.signal`` (the demo inbox) is delivered from the event stream; other channels' and
    unknown signals are ignored."""
    adapter: WebchatAdapter = hub.adapter(KEY)  # type: ignore[assignment]
    session = Session(visitor="v_oneprocess", channel_key=KEY, expires=int(time.time()) + 60)
    await adapter.visitor_typing(session, True)  # no conversation yet: nothing to signal
    conn = Connection(session.visitor)
    adapter.registry.add(conn)
    stored = await adapter.receive(session, "a1", "hi")
    assert stored is not None
    cid = stored.conversation_id
    await drain(conn, 0.2)

    events: list[Any] = []
    signals: list[Any] = []

    async def collect(source: Any, into: list[Any]) -> None:
        async for item in source:
            into.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(collect, hub.events(), events)
        tg.start_soon(collect, adapter.signals(), signals)
        await anyio.sleep(0.05)
        assert await adapter.agent_typing(cid, True, "Ann") == 1
        hub.signal(KEY, cid, "seen", {"from": "agent"})
        hub.signal("other-channel", cid, "typing", {"from": "agent", "on": True})
        hub.signal(KEY, cid, "presence", {"from": "agent"})
        for on in (True, True, True, False):  # repeats within 2 s are not published again
            await adapter.visitor_typing(session, on)
        await anyio.sleep(0.3)
        tg.cancel_scope.cancel()

    got = await drain(conn, 0.1)
    assert [(f["type"], f.get("on"), f.get("name")) for f in got] == [
        ("typing", True, "Ann"), ("seen", None, None)]
    visitor_events = [e for e in events if isinstance(e, ChannelSignal) and e.data.get("from") == "visitor"]
    assert [(e.name, e.data["on"]) for e in visitor_events] == [("typing", True), ("typing", False)]
    assert signals == [{"type": "typing", "channel_key": KEY, "conversation_id": cid,
                        "visitor": session.visitor, "on": on} for on in (True, False)]
    assert await adapter.agent_typing("no-such-conversation", True) == 0
    assert await adapter.agent_seen("no-such-conversation") == 0


@pytest.mark.anyio
async def test_history_reads_only_the_last_messages(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter: WebchatAdapter = hub.adapter(KEY)  # type: ignore[assignment]
    session = Session(visitor="v_history", channel_key=KEY, expires=int(time.time()) + 60)
    ids = []
    for n in range(5):
        message = await adapter.receive(session, f"h{n}", f"message {n}")
        assert message is not None
        ids.append(message.id)
    calls: list[dict[str, Any]] = []
    real = hub.store.list_messages

    async def spy(conversation_id: str, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(conversation_id, **kwargs)

    monkeypatch.setattr(hub.store, "list_messages", spy)
    assert [m.id for m in await adapter.history(session.visitor)] == ids[-3:]
    assert [m.id for m in await adapter.history(session.visitor, after=ids[2])] == ids[3:]
    assert calls == [{"after": None, "last": 3}, {"after": ids[2], "last": 3}]
