"""Fan-out across processes: a reply sent by one gateway reaches a visitor connected to another
through the NATS bus, and so do typing and "seen" both ways, each delivered exactly once (two
hubs on one store stand for two processes)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from omnichannel_webchat import Session, WebchatAdapter, _plugin
from omnichannel_webchat._registry import Connection

from omnichannel_sdk import ChannelSignal, Hub

pytestmark = pytest.mark.nats
NATS_URL = os.environ.get("OMNICHANNEL_TEST_NATS", "nats://127.0.0.1:4222")


def nats_up() -> bool:
    host, port = NATS_URL.removeprefix("nats://").split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def need_nats() -> None:
    if not nats_up():
        if os.environ.get("CI") == "true":
            pytest.fail("NATS is not reachable (CI=true: required)")
        pytest.skip("NATS is not reachable")


def two_hubs(tmp_path: Path, key: str) -> tuple[Hub, Hub]:
    config = {
        "omnichannel": {"store": f"sqlite:///{tmp_path / 'shared.db'}", "bus": NATS_URL,
                        "blobs": "memory://", "public_url": "http://127.0.0.1:9",
                        "delivery": {"poll_interval": 0.05}},
        "channels": {key: {"adapter": "webchat", "secret": "nats-test-secret-000000"}},
    }
    return (Hub.from_config(config, plugins=[_plugin], entry_points=False),
            Hub.from_config(config, plugins=[_plugin], entry_points=False))


@pytest.mark.anyio
async def test_reply_from_another_process_reaches_the_visitor(tmp_path: Path) -> None:
    need_nats()
    key = f"chat-{uuid.uuid4().hex[:8]}"
    first, second = two_hubs(tmp_path, key)
    async with first, second:
        here: WebchatAdapter = first.adapter(key)  # type: ignore[assignment]
        session = Session(visitor="v_natsvisitor", channel_key=key, expires=int(time.time()) + 60)
        conn = Connection(session.visitor)
        here.registry.add(conn)
        stored = await here.receive(session, "n1", "hello from process one")
        assert stored is not None
        sent = await second.send(stored.conversation_id, text="answer from process two", wait=True)
        assert sent.status == "sent"
        assert not second.adapter(key).registry.connected(session.visitor)  # type: ignore[attr-defined]
        ids: list[str] = []
        deadline = time.monotonic() + 5
        while sent.id not in ids and time.monotonic() < deadline:
            for raw in await conn.next_frames(0.5):
                frame = orjson.loads(raw)
                if frame["type"] == "message":
                    ids.append(frame["message"]["id"])
        assert ids == [stored.id, sent.id]


async def frames_of(conn: Connection, seconds: float) -> list[dict[str, Any]]:
    """Every frame ``conn`` gets within ``seconds``."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        out += [orjson.loads(raw) for raw in await conn.next_frames(left)]
    return out


async def collect(source: AsyncIterator[Any], into: list[Any]) -> None:
    async for item in source:
        into.append(item)


@pytest.mark.anyio
async def test_typing_and_seen_cross_processes_once(tmp_path: Path) -> None:
    """Visitor on process one, agent on process two: the agent's typing and seen (from the
    adapter or a bare ``hub.signal``) reach the visitor; the visitor's typing and read
    receipts reach process two's inbox listeners. Nothing arrives twice, not even in the
    process that published it."""
    need_nats()
    key = f"chat-{uuid.uuid4().hex[:8]}"
    first, second = two_hubs(tmp_path, key)
    async with first, second:
        here: WebchatAdapter = first.adapter(key)  # type: ignore[assignment]
        there: WebchatAdapter = second.adapter(key)  # type: ignore[assignment]
        session = Session(visitor="v_natstyping", channel_key=key, expires=int(time.time()) + 60)
        conn = Connection(session.visitor)
        here.registry.add(conn)
        stored = await here.receive(session, "t1", "hello")
        assert stored is not None
        cid = stored.conversation_id
        await frames_of(conn, 0.3)  # the visitor's own message comes back through the bus

        inbox_events: list[Any] = []
        adapter_signals: list[Any] = []
        local_signals: list[Any] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, second.events(), inbox_events)
            tg.start_soon(collect, there.signals(), adapter_signals)
            tg.start_soon(collect, here.signals(), local_signals)
            await anyio.sleep(0.1)

            # agent on process two -> visitor on process one
            assert await there.agent_typing(cid, True, "Bo") == 0  # nobody connected there
            second.signal(key, cid, "typing_stopped", {"from": "agent"})  # what the demo inbox does
            assert await there.agent_seen(cid, stored.id) == 0
            got = await frames_of(conn, 1.0)
            assert [(f["type"], f.get("on"), f.get("name"), f.get("up_to")) for f in got] == [
                ("typing", True, "Bo", None), ("typing", False, None, None),
                ("seen", None, None, stored.id)]
            assert all(isinstance(f["t"], float) for f in got)

            # agent on the visitor's own process: delivered at once, the bus echo is skipped
            assert await here.agent_typing(cid, True, "Cy") == 1
            got = await frames_of(conn, 0.7)
            assert [(f["type"], f["on"], f["name"]) for f in got] == [("typing", True, "Cy")]

            # visitor on process one -> inbox listeners on process two (and here, once)
            await here.visitor_typing(session, True)
            sent = await second.send(cid, text="answer", wait=True)
            assert await here.mark(session, [sent.id], "read") == 1
            await anyio.sleep(1.0)
            tg.cancel_scope.cancel()

        visitor_signals = [e for e in inbox_events if isinstance(e, ChannelSignal)
                           and e.data.get("from") == "visitor"]
        assert [(e.name, e.conversation_id, e.data.get("on"), e.data.get("up_to"))
                for e in visitor_signals] == [("typing", cid, True, None), ("seen", cid, None, sent.id)]
        expected = [("typing", cid, session.visitor, True), ("seen", cid, session.visitor, sent.id)]
        for signals in (adapter_signals, local_signals):
            assert [(s["type"], s["conversation_id"], s["visitor"], s.get("on", s.get("up_to")))
                    for s in signals] == expected
        # a long-poll on either process finds the agent's signals of the last seconds
        for adapter in (here, there):
            buffered = adapter.signals_since(cid, None)
            assert [f["type"] for f in buffered] == ["typing", "typing", "seen", "typing"]
            assert adapter.signals_since(cid, buffered[-1]["t"]) == []
