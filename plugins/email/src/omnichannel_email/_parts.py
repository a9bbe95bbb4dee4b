"""Walking a MIME tree and reading one part: parameters, content type, file names,
payload bytes, dates."""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import email.utils
import re
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from omnichannel_sdk import UnparseablePayloadError

from ._headers import decode_header_value

MAX_PARTS = 500
MAX_DEPTH = 20


def _header_text(msg: Message, name: str, hint: str | None) -> str | None:
    """The raw header (surrogate-escaped as parsed), decoded by us — never through the
    policy's header objects, which raise on some malformed input."""
    for key, value in msg.raw_items():
        if key.lower() == name:
            return decode_header_value(str(value), hint)
    return None


def _raw_header(msg: Message, name: str) -> str | None:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def _walk(root: Message) -> list[tuple[Message, int]]:
    """Every part with its depth, iteratively, bounded in count and depth."""
    out: list[tuple[Message, int]] = []
    stack: list[tuple[Message, int]] = [(root, 0)]
    while stack:
        part, depth = stack.pop()
        out.append((part, depth))
        if len(out) > MAX_PARTS:
            raise UnparseablePayloadError(f"more than {MAX_PARTS} MIME parts")
        if part.get_content_maintype() == "multipart" and part.is_multipart() and depth < MAX_DEPTH:
            payload = payload_of(part)
            if isinstance(payload, list):
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
    return out


def payload_of(part: Message) -> Any:
    """``part.get_payload()``, or ``""`` where the standard library fails on it (a text
    payload with raw 8-bit bytes and a charset label it cannot use)."""
    try:
        return part.get_payload()
    except (UnicodeError, LookupError, ValueError, TypeError):
        return ""


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except (ValueError, IndexError, LookupError, TypeError, UnicodeError):
        return None  # the standard library fails on some broken RFC 2231 continuations
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            return email.utils.collapse_rfc2231_value(value)
        except (LookupError, UnicodeError, ValueError, TypeError):
            return str(value[2])
    return str(value)


def _content_type(part: Message) -> str:
    raw = _raw_header(part, "content-type")
    if raw is None:
        return part.get_default_type()
    ctype = raw.split(";", 1)[0].strip().lower()
    if not ctype.isascii() or not ctype.isprintable():
        return "application/octet-stream"
    return ctype if "/" in ctype and " " not in ctype else "text/plain"


def _filename(part: Message, hint: str | None) -> str | None:
    name = None
    try:
        name = part.get_filename()
    except (ValueError, IndexError, LookupError, TypeError, UnicodeError):
        name = None
    if name is None:
        name = _param(part, "filename", "content-disposition") or _param(part, "name")
    if not name:
        return None
    name = decode_header_value(name, hint)  # Outlook puts RFC 2047 words in parameters
    return name.strip() or None


def _original_filename(part: Message, hint: str | None) -> str | None:
    name = _filename(part, hint)
    return name[:1000] if name else None


def safe_filename(name: str | None) -> str | None:
    """A file name that is safe to store and show: no path separators (``../``), no NUL or
    other control characters, at most 255 characters. The original stays in metadata."""
    if not name:
        return None
    name = name.replace("/", "_").replace("\\", "_")
    name = "".join(c for c in name if c >= " " and c != "\x7f").strip()
    name = name.lstrip(".") or ("_" if name else "")
    return name[:255] or None


_safe_filename = safe_filename


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError, LookupError):
        data = None
    if isinstance(data, bytes):
        return data
    try:
        raw = payload_of(part)
    except (UnicodeError, LookupError, ValueError, TypeError):
        return b""
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8", "surrogateescape")
        except UnicodeError:
            return raw.encode("utf-8", "replace")
    return b""


_COLON_ZONE = re.compile(r"([+-])(\d\d):(\d\d)$")


def _message_bytes(msg: Message) -> bytes:
    """An attached message serialized again (the parser keeps no raw bytes of it)."""
    for policy in (msg.policy, email.policy.compat32):
        try:
            return msg.as_bytes(policy=policy)
        except (email.errors.MessageError, ValueError, TypeError, IndexError, LookupError,
                UnicodeError, AttributeError):
            continue
    return b""


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    value = _COLON_ZONE.sub(r"\1\2\3", value.strip())  # "-04:00" (Postmark, some clients)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
