"""The web chat's WebSocket: the first frame authenticates, then messages, typing and receipts
flow both ways; a writer task drains the connection's queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from omnichannel_sdk import OmnichannelError, SignatureError

from ._backend import allowed, backend, config, wire
from ._endpoints import deliver
from ._registry import Connection, frame

__all__ = ["ws"]

log = logging.getLogger("omnichannel_webchat.server")

_AUTH_TIMEOUT = 10.0
_MAX_FRAME = 64 * 1024


async def ws(websocket: WebSocket) -> None:
    """The live link: auth frame, then messages both ways."""
    chat = backend(websocket)
    if not allowed(websocket):
        await websocket.close(code=4403)
        return
    await websocket.accept()
    try:
        first = await asyncio.wait_for(websocket.receive_text(), _AUTH_TIMEOUT)
        hello = orjson.loads(first)
        session = chat.check_token(hello.get("token") if isinstance(hello, dict) else None)
    except (TimeoutError, orjson.JSONDecodeError, SignatureError, WebSocketDisconnect, KeyError):
        with contextlib.suppress(Exception):
            await websocket.send_text('{"type":"error","code":"session"}')
            await websocket.close(code=4401)
        return
    conn = Connection(session.visitor)
    chat.registry.add(conn)
    writer: asyncio.Task[None] | None = None
    try:
        fresh = session.renewed(chat.settings.session_ttl)
        after = hello.get("after") if isinstance(hello.get("after"), str) else None
        missed = await chat.history(session.visitor, after)
        await websocket.send_text(orjson.dumps({
            "type": "ready", "token": chat.issue(fresh), "visitor": session.visitor,
            "name": session.name, "email": session.email,
            "conversation_id": await chat.conversation_of(session.visitor),
            "config": config(chat)}).decode())
        for message in missed:
            await websocket.send_text(orjson.dumps(
                {"type": "message", "message": wire(chat, message)}).decode())
        writer = asyncio.create_task(_write(websocket, conn))
        while True:
            text = await websocket.receive_text()
            if len(text) > _MAX_FRAME:
                conn.push(frame({"type": "error", "code": "too_large"}))
                continue
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                conn.push(frame({"type": "error", "code": "json"}))
                continue
            if not isinstance(data, dict):
                continue
            kind = data.get("type")
            if kind == "message":
                conn.push(frame(await deliver(chat, session, data, conn)))
            elif kind == "typing":
                await chat.visitor_typing(session, bool(data.get("on")))
            elif kind in ("delivered", "read"):
                ids = data.get("ids")
                if isinstance(ids, list):
                    await chat.mark(session, ids, kind)
            elif kind == "ping":
                conn.push(b'{"type":"pong"}')
    except WebSocketDisconnect:
        pass
    except OmnichannelError:
        log.exception("webchat connection failed")
    finally:
        chat.registry.remove(conn)
        conn.closed = True
        conn.wake.set()
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer


async def _write(websocket: WebSocket, conn: Connection) -> None:
    try:
        while not conn.closed:
            for item in await conn.next_frames():
                await websocket.send_text(item.decode())
        await websocket.close(code=4408)  # fell behind: the widget reconnects and catches up
    except (WebSocketDisconnect, RuntimeError, OSError):
        return
