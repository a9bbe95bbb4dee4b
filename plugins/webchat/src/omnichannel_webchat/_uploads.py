"""Visitor uploads: checked against the channel's types and size, sniffed, into the blob store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omnichannel_sdk import MediaError, MediaPart

from ._backend import ChatBackend, ack, backend, error, prechat_missing, session_of

__all__ = ["kind_of", "sniff_matches", "type_allowed", "upload"]

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


def kind_of(content_type: str) -> str:
    """The media kind of an uploaded type."""
    major = content_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "file"


def type_allowed(chat: ChatBackend, content_type: str) -> bool:
    """Whether the channel accepts uploads of ``content_type``."""
    for allowed_type in chat.settings.upload_types:
        if allowed_type == content_type or (
                allowed_type.endswith("/*") and content_type.startswith(allowed_type[:-1])):
            return True
    return False


async def upload(request: Request) -> Response:
    """A file from the visitor, into the blob store."""
    chat = backend(request)
    found = await session_of(request)
    if isinstance(found, Response):
        return found
    if not chat.services.running or chat.context.blobs is None:
        return error(503, "unavailable", "uploads need a hub with a blob store")
    if prechat_missing(chat, found):
        return error(409, "prechat", "fill in the form first")
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not type_allowed(chat, content_type):
        return error(415, "type", f"files of type {content_type or 'unknown'} are not accepted")
    declared = request.headers.get("content-length")
    limit = chat.settings.upload_max_bytes
    if declared and declared.isdigit() and int(declared) > limit:
        return error(413, "size", f"files may be at most {limit} bytes", limit=limit)
    wait = chat.limiter.take(found.visitor)
    if wait:
        return error(429, "rate_limited", "slow down", retry_after=wait)
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
        info = await chat.context.blobs.put_stream(chunks(), max_bytes=limit)
    except MediaError as exc:
        code = "size" if "larger" in str(exc) else "type"
        return error(413 if code == "size" else 415, code, str(exc))
    if info.size == 0 or not sniff_matches(content_type, bytes(head)):
        return error(415, "type", "content does not match its type")
    part = MediaPart(kind=kind_of(content_type), content_type=content_type,
                     filename=name, size=info.size, sha256=info.sha256, blob_key=info.key,
                     url=f"{chat.base_url}/media/{info.key}")
    try:
        message = await chat.receive(found, client_id, caption, [part])
    except (TypeError, ValueError) as exc:
        return error(422, "invalid", str(exc))
    return JSONResponse(await ack(chat, found, client_id, message))
