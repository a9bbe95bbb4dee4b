"""The web chat's HTTP endpoints: the widget, the chat page, sessions, and the HTTP fallback
(send, poll, typing, receipts) and media downloads. Uploads: :mod:`._uploads`; the WebSocket:
:mod:`._socket`; routes: :mod:`._server`."""

from __future__ import annotations

import contextlib
import html
import logging
import math
import re
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from omnichannel_sdk import MediaPart, NotFoundError, OmnichannelError, SignatureError

from ._backend import (
    ChatBackend,
    ack,
    allowed,
    backend,
    config,
    error,
    json_object,
    prechat_missing,
    session_of,
    wire,
)
from ._registry import Connection
from ._session import EMAIL, Session, new_visitor_id

__all__ = ["deliver", "find_media", "media", "page", "poll", "receipts", "send", "session",
           "typing", "widget_js"]

log = logging.getLogger("omnichannel_webchat.server")

_POLL_MAX = 25.0


def find_media(messages: list[Any], key: str) -> MediaPart | None:
    """The media part with blob ``key`` among ``messages`` (newest first)."""
    for message in reversed(messages):
        for part in message.parts:
            if isinstance(part, MediaPart) and part.blob_key == key:
                return part
    return None


async def widget_js(request: Request) -> Response:
    """The widget script (cached by its ETag)."""
    widget, widget_etag = request.app.state.widget, request.app.state.widget_etag
    headers = {"etag": widget_etag, "cache-control": "public, max-age=300",
               "x-content-type-options": "nosniff", "access-control-allow-origin": "*"}
    if request.headers.get("if-none-match") == widget_etag:
        return Response(status_code=304, headers=headers)
    return Response(widget, media_type="text/javascript; charset=utf-8", headers=headers)


async def page(request: Request) -> HTMLResponse:
    """A page with nothing but the chat."""
    transport = ' data-transport="poll"' if request.query_params.get("transport") == "poll" else ""
    body = ('<!doctype html><html><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            "<title>Chat</title></head><body>"
            f'<script src="{html.escape(request.scope.get("root_path", ""))}/widget.js"'
            f' data-open="true"{transport} async></script>'
            "</body></html>")
    return HTMLResponse(body)


async def session(request: Request) -> Response:
    """Create or resume a visitor session: token, history, widget config."""
    chat = backend(request)
    if not allowed(request):
        return error(403, "origin", "this page may not use the chat")
    data = await json_object(request)
    if isinstance(data, Response):
        return data
    current: Session | None = None
    if data.get("token"):
        with contextlib.suppress(SignatureError):
            current = chat.check_token(str(data["token"]))
    changes: dict[str, Any] = {}
    name, email = data.get("name"), data.get("email")
    if isinstance(name, str) and name.strip():
        changes["name"] = name.strip()[:80]
    if isinstance(email, str) and email.strip():
        email = email.strip().lower()
        if not EMAIL.match(email) or len(email) > 254:
            return error(422, "email", "that email address does not look right")
        changes["email"] = email
    locale = data.get("locale")
    if isinstance(locale, str) and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}", locale):
        changes["locale"] = locale
    if current is None:
        client = request.client.host if request.client else "?"
        wait = chat.limiter.take(f"ip:{client}", 0.25)
        if wait:
            return error(429, "rate_limited", "too many new sessions", retry_after=wait)
        current = Session(visitor=new_visitor_id(), channel_key=chat.context.key, expires=0)
    fresh = current.renewed(chat.settings.session_ttl, **changes)
    history = await chat.history(fresh.visitor)
    return JSONResponse({
        "token": chat.issue(fresh), "visitor": fresh.visitor, "name": fresh.name,
        "email": fresh.email, "expires": fresh.expires,
        "conversation_id": await chat.conversation_of(fresh.visitor),
        "history": [wire(chat, m) for m in history], "config": config(chat)})


async def deliver(chat: ChatBackend, session: Session, data: dict[str, Any],
                  origin: Connection | None) -> dict[str, Any]:
    """One visitor message, from either transport: the answer frame."""
    client_id = data.get("id")
    if prechat_missing(chat, session):
        return {"type": "error", "code": "prechat", "ref": client_id,
                "detail": "fill in the form first"}
    wait = chat.limiter.take(session.visitor)
    if wait:
        return {"type": "error", "code": "rate_limited", "ref": client_id,
                "retry_after": round(wait, 2), "detail": "slow down"}
    try:
        message = await chat.receive(session, client_id, data.get("text"), origin=origin)
    except (TypeError, ValueError) as exc:
        return {"type": "error", "code": "invalid", "ref": client_id, "detail": str(exc)}
    except OmnichannelError:
        log.exception("could not store a visitor message")
        return {"type": "error", "code": "unavailable", "ref": client_id,
                "detail": "try again in a moment"}
    return await ack(chat, session, client_id, message)


async def _session_and_object(
        request: Request) -> tuple[ChatBackend, Session, dict[str, Any]] | Response:
    """The chat backend, the visitor session and the JSON object body of a request, or the
    error to answer."""
    found = await session_of(request)
    if isinstance(found, Response):
        return found
    data = await json_object(request)
    if isinstance(data, Response):
        return data
    return backend(request), found, data


async def send(request: Request) -> Response:
    """A visitor message over HTTP (the fallback transport)."""
    asked = await _session_and_object(request)
    if isinstance(asked, Response):
        return asked
    chat, found, data = asked
    answer = await deliver(chat, found, data, None)
    status = {"rate_limited": 429, "invalid": 422, "prechat": 409, "unavailable": 503}.get(
        answer.get("code", ""), 200)
    headers = {"Retry-After": str(max(1, round(answer["retry_after"])))} \
        if status == 429 else None
    return JSONResponse(answer, status, headers=headers)


async def poll(request: Request) -> Response:
    """The long-poll: missed messages, recent signals, else wait."""
    chat = backend(request)
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
    chat.registry.add(conn)  # before reading: nothing pushed from now on is missed
    try:
        missed = await chat.history(found.visitor, after)
        frames: list[Any] = [{"type": "message", "message": wire(chat, m)} for m in missed]
        conversation_id = await chat.conversation_of(found.visitor)
        if conversation_id is not None:  # typing / seen pushed between two polls
            frames += chat.signals_since(conversation_id, cursor)
        if not frames and wait:
            frames = [orjson.loads(f) for f in await conn.next_frames(wait)]
    finally:
        chat.registry.remove(conn)
    for item in frames:
        t = item.get("t") if item.get("type") in ("typing", "seen") else None
        if isinstance(t, float) and (cursor is None or t > cursor):
            cursor = t
    return JSONResponse({"frames": frames, "sig": cursor})


async def typing(request: Request) -> Response:
    """The visitor is (not) typing."""
    asked = await _session_and_object(request)
    if isinstance(asked, Response):
        return asked
    chat, found, data = asked
    await chat.visitor_typing(found, bool(data.get("on")))
    return JSONResponse({"ok": True})


async def receipts(request: Request) -> Response:
    """The widget's delivered / read receipts."""
    asked = await _session_and_object(request)
    if isinstance(asked, Response):
        return asked
    chat, found, data = asked
    applied = 0
    for status in ("delivered", "read"):
        ids = data.get(status)
        if isinstance(ids, list):
            applied += await chat.mark(found, ids, status)
    return JSONResponse({"ok": True, "applied": applied})


async def media_part(chat: ChatBackend, visitor: str, key: str) -> MediaPart | None:
    """The file ``key`` if it is in the visitor's conversation: the recent history first,
    the whole conversation only for an older file."""
    recent = await chat.history(visitor)
    found = find_media(recent, key)
    if found is None and chat.services.running and len(recent) >= chat.settings.history_limit:
        conversation_id = await chat.conversation_of(visitor)
        if conversation_id is not None:
            found = find_media(await chat.services.store.list_messages(conversation_id), key)
    return found


async def media(request: Request) -> Response:
    """A file of the visitor's conversation."""
    chat = backend(request)
    if not allowed(request):
        return error(403, "origin", "this page may not use the chat")
    try:
        found = chat.check_token(request.query_params.get("t")
                                    or request.headers.get("x-webchat-session"))
    except SignatureError:
        return error(401, "session", "no valid session")
    key = request.path_params["key"]
    part = await media_part(chat, found.visitor, key)
    if part is None or chat.context.blobs is None:
        return error(404, "not_found", "no such file in this conversation")
    try:
        data = await chat.context.blobs.get(key)
    except NotFoundError:
        return error(404, "not_found", "no such file")
    inline = (part.content_type or "").startswith(("image/", "audio/", "video/"))
    disposition = "inline" if inline else "attachment"
    filename = quote(part.filename or "file")
    return Response(data, media_type=part.content_type or "application/octet-stream", headers={
        "content-disposition": f"{disposition}; filename*=UTF-8''{filename}",
        "x-content-type-options": "nosniff", "content-security-policy": "sandbox",
        "cache-control": "private, max-age=3600"})
