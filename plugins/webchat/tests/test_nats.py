"""Fan-out across processes: a reply sent by one gateway reaches a visitor connected to another
through the NATS bus (two hubs on one store stand for two processes)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import orjson
import pytest
from omnichannel_webchat import Session, WebchatAdapter, _plugin
from omnichannel_webchat._registry import Connection

from omnichannel_sdk import Hub

pytestmark = pytest.mark.nats
NATS_URL = os.environ.get("OMNICHANNEL_TEST_NATS", "nats://127.0.0.1:4222")


def nats_up() -> bool:
    host, port = NATS_URL.removeprefix("nats://").split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


@pytest.mark.anyio
async def test_reply_from_another_process_reaches_the_visitor(tmp_path: Path) -> None:
    if not nats_up():
        if os.environ.get("CI") == "true":
            pytest.fail("NATS is not reachable (CI=true: required)")
        pytest.skip("NATS is not reachable")
    key = f"chat-{uuid.uuid4().hex[:8]}"
    config = {
        "omnichannel": {"store": f"sqlite:///{tmp_path / 'shared.db'}", "bus": NATS_URL,
                        "blobs": "memory://", "public_url": "http://127.0.0.1:9",
                        "delivery": {"poll_interval": 0.05}},
        "channels": {key: {"adapter": "webchat", "secret": "nats-test-secret-000000"}},
    }
    first = Hub.from_config(config, plugins=[_plugin], entry_points=False)
    second = Hub.from_config(config, plugins=[_plugin], entry_points=False)
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
