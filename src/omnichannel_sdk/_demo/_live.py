"""The inbox's live WebSocket: hub events out, the agent's typing and "seen" in."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.websockets import WebSocket

from ._present import event_json
from ._state import AGENT, demo_state, same_origin

__all__ = ["SEEN_PREFIX", "live"]

SEEN_PREFIX = "demo:seen:"
"""kv key prefix: when the agent last looked at a conversation (its unread count starts there)."""


async def live(websocket: WebSocket) -> None:
    """``/demo/ws``: every hub event as JSON; frames ``{"type": "typing" | "seen",
    "conversation_id", "on"}`` from the page become the agent's signals to the customer."""
    hub = demo_state(websocket).hub
    # browsers always send Origin on a WebSocket: another site's page never gets events
    if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host")):
        await websocket.close(code=4403)
        return
    await websocket.accept()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(10_000)

    def put(item: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(item)

    async def events() -> None:
        async for event in hub.events():
            put(event_json(event))

    async def reader() -> None:
        while True:
            data = orjson.loads(await websocket.receive_text())
            if not isinstance(data, dict) or not isinstance(data.get("conversation_id"), str):
                continue
            conv = await hub.store.get_conversation(data["conversation_id"])
            if conv is None or conv.channel_key not in hub.adapters:
                continue
            # passing signals for the customer, in every process (the channel passes them on)
            if data.get("type") == "typing":
                hub.signal(conv.channel_key, conv.id, "typing",
                           {"from": "agent", "on": bool(data.get("on")), "name": AGENT.name})
            elif data.get("type") == "seen":
                await hub.storage.kv_set(SEEN_PREFIX + conv.id, datetime.now(UTC).isoformat(),
                                       ttl=30 * 86400)
                hub.signal(conv.channel_key, conv.id, "seen", {"from": "agent"})

    async def writer() -> None:
        while True:
            await websocket.send_text(orjson.dumps(await queue.get()).decode())

    tasks = [asyncio.create_task(events()), asyncio.create_task(reader()),
             asyncio.create_task(writer())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
