"""The web chat's own ASGI app, mounted by the gateway at ``/channels/{key}/``.

Routes (relative to the mount):

- ``GET  widget.js``  the widget (one ``<script>`` tag embeds it)
- ``GET  /``          a page with nothing but the chat (a link customers can open)
- ``POST session``    create or resume a visitor session: token, history, widget config
- ``WS   ws``         the live link: first frame ``{"type": "auth", "token", "after"}``
- ``POST send``, ``GET poll``, ``POST typing``, ``POST receipts``  the HTTP fallback
  (``poll?after=<message id>&sig=<t>&wait=<s>``: missed messages, then the typing / seen signals
  published after ``t`` in the last few seconds, else waits; answers ``{"frames", "sig"}``)
- ``POST upload``     a file (raw body, ``Content-Type``, ``?name=``), into the blob store
- ``GET  media/{key}`` a file of the visitor's conversation (``?t=`` session token)

HTTP requests carry the token in ``X-Webchat-Session``. Every request from a page whose origin
is not allowed is refused (403), WebSocket handshakes included.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import math
import re
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from omnichannel_sdk import MediaError, MediaPart, NotFoundError, OmnichannelError, SignatureError

from ._adapter import _EMAIL, wire_message
from ._registry import Connection, frame
from ._session import Session, new_visitor_id

if TYPE_CHECKING:
    from ._adapter import WebchatAdapter

__all__ = ["build_app", "sniff_matches"]

log = logging.getLogger("omnichannel_webchat.server")

_AUTH_TIMEOUT = 10.0
_POLL_MAX = 25.0
_MAX_FRAME = 64 * 1024
_FILENAME_BAD = re.compile(r"[^\w.\- ()\[\]+@]", re.UNICODE)

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


def sniff_matches(content_type: str, head: bytes) -> bool:
    """Whether the first bytes of an upload look like its declared type (for the types we know
    the signature of; others pass)."""
    magic = _MAGIC.get(content_type)
    if magic is None:
        if content_type.startswith("text/"):
            return b"\x00" not in head
        return True
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    return any(head.startswith(m) for m in magic)


def _widget_source() -> bytes:
    return resources.files("omnichannel_webchat").joinpath("static/widget.js").read_bytes()


def _own_origin(conn: HTTPConnection) -> str:
    scheme = conn.url.scheme.replace("ws", "http")
    host = conn.headers.get("host", "")
    return f"{scheme}://{host}"


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    """The request body as a JSON object (an empty body is ``{}``), or the 400 to answer."""
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return _error(400, "json", "body is not JSON")
    if not isinstance(data, dict):
        return _error(400, "json", "body is not an object")
    return data


def _kind_of(content_type: str) -> str:
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "file"


def _find_media(messages: list[Any], key: str) -> MediaPart | None:
    for message in reversed(messages):
        for part in message.parts:
            if isinstance(part, MediaPart) and part.blob_key == key:
                return part
    return None


def build_app(adapter: WebchatAdapter) -> Starlette:
    """The Starlette app of one web chat channel."""
    settings = adapter.settings
    widget = _widget_source()
    widget_etag = '"' + hashlib.sha256(widget).hexdigest()[:16] + '"'

    def allowed(conn: HTTPConnection) -> bool:
        return adapter.origin_allowed(conn.headers.get("origin"), _own_origin(conn))

    async def session_of(request: Request) -> Session | JSONResponse:
        if not allowed(request):
            return _error(403, "origin", "this page may not use the chat")
        try:
            return adapter.check_token(request.headers.get("x-webchat-session"))
        except SignatureError:
            return _error(401, "session", "no valid session: start a new one")

    def config() -> dict[str, Any]:
        return {"prechat": settings.prechat, "title": settings.title,
                "upload_max": settings.upload_max_bytes, "upload_types": settings.upload_types,
                "max_text": settings.max_visitor_text}

    def prechat_missing(session: Session) -> bool:
        return settings.prechat == "required" and not (session.name and session.email)

    async def widget_js(request: Request) -> Response:
        headers = {"etag": widget_etag, "cache-control": "public, max-age=300",
                   "x-content-type-options": "nosniff", "access-control-allow-origin": "*"}
        if request.headers.get("if-none-match") == widget_etag:
            return Response(status_code=304, headers=headers)
        return Response(widget, media_type="text/javascript; charset=utf-8", headers=headers)

    async def page(request: Request) -> HTMLResponse:
        transport = ' data-transport="poll"' if request.query_params.get("transport") == "poll" else ""
        body = ('<!doctype html><html><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width,initial-scale=1">'
                "<title>Chat</title></head><body>"
                f'<script src="{html.escape(request.scope.get("root_path", ""))}/widget.js"'
                f' data-open="true"{transport} async></script>'
                "</body></html>")
        return HTMLResponse(body)

    async def session(request: Request) -> Response:
        if not allowed(request):
            return _error(403, "origin", "this page may not use the chat")
        data = await _json_object(request)
        if isinstance(data, Response):
            return data
        current: Session | None = None
        if data.get("token"):
            with contextlib.suppress(SignatureError):
                current = adapter.check_token(str(data["token"]))
        changes: dict[str, Any] = {}
        name, email = data.get("name"), data.get("email")
        if isinstance(name, str) and name.strip():
            changes["name"] = name.strip()[:80]
        if isinstance(email, str) and email.strip():
            email = email.strip().lower()
            if not _EMAIL.match(email) or len(email) > 254:
                return _error(422, "email", "that email address does not look right")
            changes["email"] = email
        locale = data.get("locale")
        if isinstance(locale, str) and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}", locale):
            changes["locale"] = locale
        if current is None:
            client = request.client.host if request.client else "?"
            wait = adapter.limiter.take(f"ip:{client}", 0.25)
            if wait:
                return _error(429, "rate_limited", "too many new sessions", retry_after=wait)
            current = Session(visitor=new_visitor_id(), channel_key=adapter.context.key, expires=0)
        fresh = current.renewed(settings.session_ttl, **changes)
        history = await adapter.history(fresh.visitor)
        return JSONResponse({
            "token": adapter.issue(fresh), "visitor": fresh.visitor, "name": fresh.name,
            "email": fresh.email, "expires": fresh.expires,
            "conversation_id": await adapter.conversation_of(fresh.visitor),
            "history": [_wire(m) for m in history], "config": config()})

    def _wire(message: Any) -> dict[str, Any]:
        return wire_message(message, adapter.base_url)

    async def deliver(session: Session, data: dict[str, Any],
                      origin: Connection | None) -> dict[str, Any]:
        """One visitor message, from either transport: the answer frame."""
        client_id = data.get("id")
        if prechat_missing(session):
            return {"type": "error", "code": "prechat", "ref": client_id,
                    "detail": "fill in the form first"}
        wait = adapter.limiter.take(session.visitor)
        if wait:
            return {"type": "error", "code": "rate_limited", "ref": client_id,
                    "retry_after": round(wait, 2), "detail": "slow down"}
        try:
            message = await adapter.receive(session, client_id, data.get("text"), origin=origin)
        except (TypeError, ValueError) as exc:
            return {"type": "error", "code": "invalid", "ref": client_id, "detail": str(exc)}
        except OmnichannelError:
            log.exception("could not store a visitor message")
            return {"type": "error", "code": "unavailable", "ref": client_id,
                    "detail": "try again in a moment"}
        return {"type": "ack", "ref": client_id, "message": _wire(message) if message else None}

    async def send(request: Request) -> Response:
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        data = await _json_object(request)
        if isinstance(data, Response):
            return data
        answer = await deliver(found, data, None)
        status = {"rate_limited": 429, "invalid": 422, "prechat": 409, "unavailable": 503}.get(
            answer.get("code", ""), 200)
        headers = {"Retry-After": str(max(1, round(answer["retry_after"])))} \
            if status == 429 else None
        return JSONResponse(answer, status, headers=headers)

    async def poll(request: Request) -> Response:
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        after = request.query_params.get("after") or None
        try:
            wait = min(_POLL_MAX, max(0.0, float(request.query_params.get("wait", _POLL_MAX))))
        except ValueError:
            wait = _POLL_MAX
        cursor: float | None = None
        with contextlib.suppress(ValueError):
            cursor = float(request.query_params.get("sig") or "nan")
        if cursor is not None and not math.isfinite(cursor):
            cursor = None
        conn = Connection(found.visitor, kind="poll")
        adapter.registry.add(conn)  # before reading: nothing pushed from now on is missed
        try:
            missed = await adapter.history(found.visitor, after)
            frames: list[Any] = [{"type": "message", "message": _wire(m)} for m in missed]
            conversation_id = await adapter.conversation_of(found.visitor)
            if conversation_id is not None:  # typing / seen pushed between two polls
                frames += adapter.signals_since(conversation_id, cursor)
            if not frames and wait:
                frames = [orjson.loads(f) for f in await conn.next_frames(wait)]
        finally:
            adapter.registry.remove(conn)
        for item in frames:
            t = item.get("t") if item.get("type") in ("typing", "seen") else None
            if isinstance(t, float) and (cursor is None or t > cursor):
                cursor = t
        return JSONResponse({"frames": frames, "sig": cursor})

    async def typing(request: Request) -> Response:
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        try:
            data = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError:
            return _error(400, "json", "body is not JSON")
        await adapter.visitor_typing(found, bool(isinstance(data, dict) and data.get("on")))
        return JSONResponse({"ok": True})

    async def receipts(request: Request) -> Response:
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        data = await _json_object(request)
        if isinstance(data, Response):
            return data
        applied = 0
        for status in ("delivered", "read"):
            ids = data.get(status)
            if isinstance(ids, list):
                applied += await adapter.mark(found, ids, status)
        return JSONResponse({"ok": True, "applied": applied})

    def type_allowed(content_type: str) -> bool:
        for allowed_type in settings.upload_types:
            if allowed_type == content_type or (
                    allowed_type.endswith("/*") and content_type.startswith(allowed_type[:-1])):
                return True
        return False

    async def upload(request: Request) -> Response:
        found = await session_of(request)
        if isinstance(found, Response):
            return found
        if not adapter.services.running or adapter.context.blobs is None:
            return _error(503, "unavailable", "uploads need a hub with a blob store")
        if prechat_missing(found):
            return _error(409, "prechat", "fill in the form first")
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if not type_allowed(content_type):
            return _error(415, "type", f"files of type {content_type or 'unknown'} are not accepted")
        declared = request.headers.get("content-length")
        limit = settings.upload_max_bytes
        if declared and declared.isdigit() and int(declared) > limit:
            return _error(413, "size", f"files may be at most {limit} bytes", limit=limit)
        wait = adapter.limiter.take(found.visitor)
        if wait:
            return _error(429, "rate_limited", "slow down", retry_after=wait)
        name = _FILENAME_BAD.sub("_", request.query_params.get("name", "upload"))[:120] or "upload"
        client_id = request.query_params.get("id") or ""
        caption = request.query_params.get("caption") or None
        head = bytearray()

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in request.stream():
                if len(head) < 16:
                    head.extend(chunk[: 16 - len(head)])
                    if len(head) >= 12 and not sniff_matches(content_type, bytes(head)):
                        raise MediaError("content does not match its type")
                yield chunk

        try:
            info = await adapter.context.blobs.put_stream(chunks(), max_bytes=limit)
        except MediaError as exc:
            code = "size" if "larger" in str(exc) else "type"
            return _error(413 if code == "size" else 415, code, str(exc))
        if info.size == 0 or not sniff_matches(content_type, bytes(head)):
            return _error(415, "type", "content does not match its type")
        part = MediaPart(kind=_kind_of(content_type), content_type=content_type,
                         filename=name, size=info.size, sha256=info.sha256, blob_key=info.key,
                         url=f"{adapter.base_url}/media/{info.key}")
        try:
            message = await adapter.receive(found, client_id, caption, [part])
        except (TypeError, ValueError) as exc:
            return _error(422, "invalid", str(exc))
        return JSONResponse({"type": "ack", "ref": client_id,
                             "message": _wire(message) if message else None})

    async def media_part(visitor: str, key: str) -> MediaPart | None:
        """The file ``key`` if it is in the visitor's conversation: the recent history first,
        the whole conversation only for an older file."""
        recent = await adapter.history(visitor)
        found = _find_media(recent, key)
        if found is None and adapter.services.running and len(recent) >= settings.history_limit:
            conversation_id = await adapter.conversation_of(visitor)
            if conversation_id is not None:
                found = _find_media(await adapter.services.store.list_messages(conversation_id), key)
        return found

    async def media(request: Request) -> Response:
        if not allowed(request):
            return _error(403, "origin", "this page may not use the chat")
        try:
            found = adapter.check_token(request.query_params.get("t")
                                        or request.headers.get("x-webchat-session"))
        except SignatureError:
            return _error(401, "session", "no valid session")
        key = request.path_params["key"]
        part = await media_part(found.visitor, key)
        if part is None or adapter.context.blobs is None:
            return _error(404, "not_found", "no such file in this conversation")
        try:
            data = await adapter.context.blobs.get(key)
        except NotFoundError:
            return _error(404, "not_found", "no such file")
        inline = (part.content_type or "").startswith(("image/", "audio/", "video/"))
        disposition = "inline" if inline else "attachment"
        filename = quote(part.filename or "file")
        return Response(data, media_type=part.content_type or "application/octet-stream", headers={
            "content-disposition": f"{disposition}; filename*=UTF-8''{filename}",
            "x-content-type-options": "nosniff", "content-security-policy": "sandbox",
            "cache-control": "private, max-age=3600"})

    async def ws(websocket: WebSocket) -> None:
        if not allowed(websocket):
            await websocket.close(code=4403)
            return
        await websocket.accept()
        try:
            first = await asyncio.wait_for(websocket.receive_text(), _AUTH_TIMEOUT)
            hello = orjson.loads(first)
            session = adapter.check_token(hello.get("token") if isinstance(hello, dict) else None)
        except (TimeoutError, orjson.JSONDecodeError, SignatureError, WebSocketDisconnect, KeyError):
            with contextlib.suppress(Exception):
                await websocket.send_text('{"type":"error","code":"session"}')
                await websocket.close(code=4401)
            return
        conn = Connection(session.visitor)
        adapter.registry.add(conn)
        writer: asyncio.Task[None] | None = None
        try:
            fresh = session.renewed(settings.session_ttl)
            after = hello.get("after") if isinstance(hello.get("after"), str) else None
            missed = await adapter.history(session.visitor, after)
            await websocket.send_text(orjson.dumps({
                "type": "ready", "token": adapter.issue(fresh), "visitor": session.visitor,
                "name": session.name, "email": session.email,
                "conversation_id": await adapter.conversation_of(session.visitor),
                "config": config()}).decode())
            for message in missed:
                await websocket.send_text(orjson.dumps(
                    {"type": "message", "message": _wire(message)}).decode())
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
                    conn.push(frame(await deliver(session, data, conn)))
                elif kind == "typing":
                    await adapter.visitor_typing(session, bool(data.get("on")))
                elif kind in ("delivered", "read"):
                    ids = data.get("ids")
                    if isinstance(ids, list):
                        await adapter.mark(session, ids, kind)
                elif kind == "ping":
                    conn.push(b'{"type":"pong"}')
        except WebSocketDisconnect:
            pass
        except OmnichannelError:
            log.exception("webchat connection failed")
        finally:
            adapter.registry.remove(conn)
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

    origins = settings.allowed_origins
    middleware = [Middleware(
        CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-webchat-session"], max_age=600)] if origins else []
    routes = [
        Route("/", page),
        Route("/widget.js", widget_js),
        Route("/session", session, methods=["POST"]),
        Route("/send", send, methods=["POST"]),
        Route("/poll", poll),
        Route("/typing", typing, methods=["POST"]),
        Route("/receipts", receipts, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/media/{key}", media),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(routes=routes, middleware=middleware)
