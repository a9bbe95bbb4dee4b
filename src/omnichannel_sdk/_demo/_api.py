"""The inbox's JSON API: conversations (filtered, searched, with unread counts and the SLA
clock), one thread, replies with attachments, open/close, blobs, the simulators and the
loopback vendor."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .._errors import OmnichannelError
from .._hub import Hub
from .._models import Conversation, MediaPart, Part, StatusUpdate, TextPart
from ._live import SEEN_PREFIX
from ._present import channel_name, conversation_json, message_json, sla_target
from ._setup import next_id, simulate_requests
from ._state import AGENT, demo_state, refused

__all__ = ["MAX_ATTACHMENT", "api_channels", "api_conversation", "api_conversations",
           "api_reply", "api_simulate", "api_status", "blob", "simulate_form", "vendor"]

MAX_ATTACHMENT = 10 * 1024 * 1024
"""The largest file the agent may attach (bytes, decoded)."""

_background: set[asyncio.Task[Any]] = set()


async def _row(hub: Hub, conv: Conversation) -> tuple[dict[str, Any], str]:
    """A conversation's list row and the text a search looks through."""
    messages = await hub.store.list_messages(conv.id)
    contact = await hub.store.get_contact(conv.contact_id)
    seen = await hub.storage.kv_get(SEEN_PREFIX + conv.id)
    row = conversation_json(conv, contact, messages, datetime.fromisoformat(seen) if seen else None)
    haystack = " ".join([row["title"], row["channel_name"], conv.subject or "",
                         *(a.handle for a in (contact.addresses if contact else [])),
                         *(m.text for m in messages)])
    return row, haystack.casefold()


async def api_conversations(request: Request) -> JSONResponse:
    """``GET /demo/api/conversations?status=open|closed&q=…``: newest activity first."""
    hub = demo_state(request).hub
    status = request.query_params.get("status")
    query = request.query_params.get("q", "").strip().casefold()
    out = []
    for conv in await hub.store.list_conversations(
            status=status if status in ("open", "closed") else None, limit=200):
        row, haystack = await _row(hub, conv)
        if not query or all(word in haystack for word in query.split()):
            out.append(row)
    out.sort(key=lambda c: c["last_at"], reverse=True)
    return JSONResponse(out)


async def api_conversation(request: Request) -> JSONResponse:
    """``GET /demo/api/c/{cid}``: the conversation's header and its messages."""
    hub = demo_state(request).hub
    conv = await hub.store.get_conversation(request.path_params["cid"])
    if conv is None:
        return JSONResponse({"error": "no such conversation"}, 404)
    row, _ = await _row(hub, conv)
    messages = await hub.store.list_messages(conv.id)
    return JSONResponse({"conversation": row, "messages": [message_json(m) for m in messages]})


def _kind(content_type: str) -> Literal["image", "audio", "video", "file"]:
    major = content_type.split("/", 1)[0]
    if major == "image":
        return "image"
    if major == "audio":
        return "audio"
    if major == "video":
        return "video"
    return "file"


async def _attachments(hub: Hub, files: Any) -> list[Part]:
    """``[{"name", "type", "data": base64}]`` stored as blobs, as media parts."""
    if files is None:
        return []
    if not isinstance(files, list):
        raise ValueError("files must be a list")
    parts: list[Part] = []
    for item in files[:10]:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise ValueError("each file needs base64 data")
        try:
            data = base64.b64decode(item["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a file is not valid base64") from exc
        if len(data) > MAX_ATTACHMENT:
            raise ValueError(f"a file is larger than {MAX_ATTACHMENT // 1_048_576} MB")
        content_type = str(item.get("type") or "application/octet-stream")[:100]
        name = str(item.get("name") or "file")[:200]
        info = await hub.blobs.put(data)
        parts.append(MediaPart(kind=_kind(content_type), content_type=content_type,
                               filename=name, size=info.size, blob_key=info.key))
    return parts


async def api_reply(request: Request) -> JSONResponse:
    """``POST /demo/api/c/{cid}/reply`` ``{"text": markdown, "files": [...]}``."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    try:
        data = orjson.loads(await request.body())
        text = str(data.get("text") or "").strip()
        media = await _attachments(state.hub, data.get("files"))
    except (orjson.JSONDecodeError, AttributeError):
        return JSONResponse({"error": "send JSON {\"text\": ...}"}, 400)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, 400)
    if not text and not media:
        return JSONResponse({"error": "empty reply"}, 400)
    parts: list[Part] = [TextPart(text=text, format="markdown")] if text else []
    try:
        sent = await state.hub.send(request.path_params["cid"], parts=[*parts, *media],
                                    author=AGENT)
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 409)
    return JSONResponse(message_json(sent))


async def api_status(request: Request) -> JSONResponse:
    """``POST /demo/api/c/{cid}/status`` ``{"status": "open" | "closed"}``."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    try:
        wanted = orjson.loads(await request.body()).get("status")
    except (orjson.JSONDecodeError, AttributeError):
        wanted = None
    if wanted not in ("open", "closed"):
        return JSONResponse({"error": "status is open or closed"}, 400)
    cid = request.path_params["cid"]
    try:
        if wanted == "closed":
            await state.hub.close_conversation(cid)
        else:
            await state.hub.reopen_conversation(cid)
    except OmnichannelError as exc:
        return JSONResponse({"error": str(exc)}, 404)
    return JSONResponse({"id": cid, "status": wanted})


async def api_channels(request: Request) -> JSONResponse:
    """``GET /demo/api/channels``: the configured channels (the simulator menu)."""
    hub = demo_state(request).hub
    return JSONResponse([{"key": key, "channel": a.channel, "name": channel_name(a.channel),
                          "adapter": a.name, "sla_target": sla_target(a.channel)}
                         for key, a in hub.adapters.items()])


async def blob(request: Request) -> Response:
    """``/demo/blob/{key}``: stored media, never rendered as a page of ours."""
    hub = demo_state(request).hub
    try:
        data = await hub.blobs.get(request.path_params["key"])
    except OmnichannelError:
        return Response("not found", 404)
    wanted = request.query_params.get("type", "")
    safe = wanted if wanted.startswith(("image/", "audio/")) or wanted in (
        "application/pdf", "text/plain") else "application/octet-stream"
    return Response(data, media_type=safe, headers={
        "x-content-type-options": "nosniff", "content-security-policy": "sandbox"})


async def _simulate(hub: Hub, key: str) -> int:
    requests = simulate_requests(hub, key)
    for req in requests:
        await hub.handle_webhook(key, req)
    return len(requests)


async def api_simulate(request: Request) -> JSONResponse:
    """``POST /demo/api/simulate/{key}``: a channel's sample traffic, without a page load."""
    state = demo_state(request)
    if not state.allowed(request):
        return refused()
    key = request.path_params["key"]
    if key not in state.hub.adapters:
        return JSONResponse({"error": f"no channel {key!r}"}, 404)
    return JSONResponse({"channel_key": key, "requests": await _simulate(state.hub, key)})


async def simulate_form(request: Request) -> Response:
    """``POST /demo/simulate/{key}``: the same from a plain form (back to the inbox)."""
    state = demo_state(request)
    if not state.allowed(request, parse_qs((await request.body()).decode("utf-8", "replace"))):
        return refused()
    await _simulate(state.hub, request.path_params["key"])
    return RedirectResponse("/demo/", 303)


async def vendor(request: Request) -> Response:
    """``/demo/vendor/json``: the loopback vendor, accepts, then reports delivery."""
    hub = demo_state(request).hub
    ext = f"stub-{next_id()}"
    key = next((k for k, a in hub.adapters.items() if a.name == "json-mapping"), None)

    async def deliver() -> None:
        await asyncio.sleep(0.5)
        if key:
            await hub.apply_status(key, StatusUpdate(external_id=ext, status="delivered"))

    task = asyncio.create_task(deliver())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return JSONResponse({"id": ext, "status": "accepted"})
