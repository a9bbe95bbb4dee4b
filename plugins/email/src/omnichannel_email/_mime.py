"""Reading raw MIME with the standard library (``policy.default``), tolerant of what real mail
clients send: every common CJK and European charset (with the supersets clients really mean),
RFC 2047 encoded words, RFC 2231 file names, raw 8-bit headers, broken headers.

:func:`parse_mime` turns bytes into a :class:`ParsedEmail`; it raises only
:class:`~omnichannel_sdk.UnparseablePayloadError`.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import email.utils
import hashlib
import re
from email.message import Message

from omnichannel_sdk import UnparseablePayloadError

from ._charsets import _codec, decode_bytes
from ._dsn import read_report
from ._headers import (
    decode_header_value,
    normalize_message_id,
    parse_addresses,
    parse_message_ids,
    salvage_address,
    storable_text,
    storable_value,
)
from ._parsed import Attachment, ParsedEmail
from ._parts import (
    MAX_DEPTH,
    _content_type,
    _date,
    _filename,
    _header_text,
    _message_bytes,
    _original_filename,
    _param,
    _payload_bytes,
    _raw_header,
    _safe_filename,
    _walk,
    payload_of,
    safe_filename,
)

__all__ = [
    "Attachment",
    "ParsedEmail",
    "decode_bytes",
    "decode_header_value",
    "normalize_message_id",
    "parse_addresses",
    "parse_message_ids",
    "parse_mime",
    "safe_filename",
    "storable_text",
    "storable_value",
    "salvage_address",
]

#: Labels mail clients put on text, mapped to the codec that decodes what they really send

class _RawHeaderPolicy(email.policy.EmailPolicy):
    """``policy.default`` (EmailMessage objects, its parser and line handling) except that
    header values are handed back raw: building a header object per access costs five times
    the whole parse, and we decode every header ourselves with superset codecs anyway."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        """The stored value as parsed (folding kept, 8-bit bytes surrogate-escaped)."""
        return value


READ_POLICY = _RawHeaderPolicy()
"""The policy inbound mail is parsed with."""


def parse_mime(
    raw: bytes,
    *,
    max_attachment_bytes: int = 25 * 1024 * 1024,
    max_attachments: int = 100,
) -> ParsedEmail:
    """Parse one RFC 5322 message. Raises :class:`UnparseablePayloadError` only for input
    that is not an email at all (no headers, nothing to read)."""
    if not raw or not raw.strip():
        raise UnparseablePayloadError("empty message")
    try:
        msg = email.message_from_bytes(raw, policy=READ_POLICY)
    except (ValueError, TypeError, IndexError, LookupError, RecursionError) as exc:
        raise UnparseablePayloadError(f"not a MIME message: {type(exc).__name__}") from None
    if not msg.keys() or any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect)
                             for d in msg.defects):
        repaired = repair_header_block(raw)
        if repaired is not None:
            try:
                msg = email.message_from_bytes(repaired, policy=READ_POLICY)
            except (ValueError, TypeError, IndexError, LookupError, RecursionError):
                raise UnparseablePayloadError("not a MIME message") from None
            msg.defects.append(email.errors.InvalidHeaderDefect("header block repaired"))
    if not msg.keys():
        raise UnparseablePayloadError("no headers: not an email")
    try:
        return _read(msg, raw, max_attachment_bytes, max_attachments)
    except RecursionError:
        raise UnparseablePayloadError("MIME structure nested too deeply") from None


_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:")
_SEPARATOR_LINE = re.compile(rb"^\s*-{2,}.*-{2,}\s*$")


def repair_header_block(raw: bytes) -> bytes | None:
    """A header block the parser can read, or ``None`` when nothing needs repairing.

    Mail clients and forwarders write header blocks that end too early for RFC 5322: a first
    line that is not a header (``---- Original email message ----``, a garbled field), and
    continuation lines that lost their indentation. Leading lines that are not headers are
    dropped (up to 20); inside the block, a line that is neither a header nor indented but is
    followed by more header lines is taken as a continuation.
    """
    lines = raw.split(b"\n")
    start = 0
    while start < min(len(lines), 20) and not _HEADER_LINE.match(lines[start]):
        start += 1
    if start >= len(lines) or not _HEADER_LINE.match(lines[start]):
        return None
    out = []
    i = start
    changed = start > 0
    while i < len(lines):
        line = lines[i]
        if not line.strip(b"\r"):
            break
        if _HEADER_LINE.match(line) or line[:1] in (b" ", b"\t"):
            out.append(line)
        else:
            rest = lines[i + 1:i + 40]
            ahead = next((x for x in rest if not x.strip(b"\r") or _HEADER_LINE.match(x)), b"")
            if ahead.strip(b"\r") and not _SEPARATOR_LINE.match(line):
                out.append(b" " + line)  # an unindented continuation
                changed = True
            else:
                break  # the body starts here: keep a separator line for it
        i += 1
    if not changed and i < len(lines) and not lines[i].strip(b"\r"):
        return None
    body = lines[i:]
    if not body or body[0].strip(b"\r"):
        body = [b"\r" if out and out[0].endswith(b"\r") else b"", *body]
    return b"\n".join(out + body)


def _body_charset(msg: Message) -> str | None:
    for part, _ in _walk(msg)[:50]:
        if _content_type(part).startswith("text/"):
            charset = _param(part, "charset")
            if charset and _codec(charset) not in ("ascii", "utf-8"):
                return charset
    return None


def _address_header(msg: Message, name: str, hint: str | None) -> list[tuple[str, str]]:
    value = _raw_header(msg, name)
    return parse_addresses(value, hint) if value is not None else []


def _read(msg: Message, raw: bytes, max_bytes: int, max_attachments: int) -> ParsedEmail:
    hint = _body_charset(msg)
    parsed = ParsedEmail(raw_sha256=hashlib.sha256(raw).hexdigest(), hint=hint)
    for key, value in msg.raw_items():
        name = key.lower()
        if name == "from":
            parsed.from_raw.append(str(value))
        if name not in parsed.headers:
            parsed.headers[name] = decode_header_value(str(value), hint)[:4000]
    parsed.message_id = normalize_message_id(_raw_header(msg, "message-id"))
    parsed.in_reply_to = parse_message_ids(_raw_header(msg, "in-reply-to"))
    parsed.references = parse_message_ids(_raw_header(msg, "references"))
    parsed.subject = (_header_text(msg, "subject", hint) or "")[:MAX_SUBJECT]
    parsed.from_ = parse_addresses(parsed.from_raw[0], hint) if parsed.from_raw else []
    parsed.to = _address_header(msg, "to", hint)
    parsed.cc = _address_header(msg, "cc", hint)
    parsed.reply_to = _address_header(msg, "reply-to", hint)
    parsed.sender_header = _address_header(msg, "sender", hint)
    parsed.date = _date(_raw_header(msg, "date"))
    return_path = _raw_header(msg, "return-path")
    if return_path is not None:
        parsed.envelope_from = return_path.strip().strip("<>").strip()
        found = parse_addresses(return_path, hint)
        parsed.return_path = found[0][1] if found else None
    parsed.defects = [type(d).__name__ for d in getattr(msg, "defects", [])][:20]
    walk = _walk(msg)  # bounds the part count and depth before anything else runs
    del walk
    bodies = _Bodies()
    _structure([msg], "mixed", False, bodies, 0)
    texts: list[str] = []
    for part in bodies.text or []:
        ctype = _content_type(part)
        if ctype == "text/plain":
            texts.append(_part_text(part))
        elif ctype == "text/html":
            from ._text import html_to_text

            texts.append(html_to_text(_part_text(part)))
    htmls = [_part_text(p) for p in bodies.html or [] if _content_type(p) == "text/html"]
    shown = {id(p) for p in (bodies.text or []) + (bodies.html or [])}
    files = list(bodies.attachments)
    # inline media shown in both bodies are files too: never lose an image
    files += [p for p in (bodies.text or []) + (bodies.html or [])
              if not _content_type(p).startswith("text/") and p not in files]
    for part in files:
        if id(part) in shown and _content_type(part).startswith("text/"):
            continue
        _attach(parsed, part, hint, max_bytes, max_attachments)
    parsed.text = "\n\n".join(t for t in texts if t.strip()) or None
    parsed.html = "\n".join(htmls) or None
    return parsed


MAX_SUBJECT = 16_000
"""Longest subject kept (RFC 5322 allows folded subjects beyond 998 characters)."""

_INLINE_MEDIA = ("image/", "audio/", "video/")


class _Bodies:
    """RFC 8621 (JMAP) section 4.1.4: which parts are the text body, the HTML body and the
    attachments — the algorithm mail clients and Stalwart follow."""

    def __init__(self) -> None:
        self.text: list[Message] | None = []
        self.html: list[Message] | None = []
        self.attachments: list[Message] = []


def _part_text(part: Message) -> str:
    return decode_bytes(_payload_bytes(part), _param(part, "charset"))


def _disposition(part: Message) -> str:
    return (_raw_header(part, "content-disposition") or "").split(";", 1)[0].strip().lower()


def _structure(parts: list[Message], multipart: str, in_alternative: bool, bodies: _Bodies,
               depth: int) -> None:
    text_length = len(bodies.text) if bodies.text is not None else -1
    html_length = len(bodies.html) if bodies.html is not None else -1
    for i, part in enumerate(parts):
        ctype = _content_type(part)
        payload = payload_of(part)
        if ctype.startswith("multipart/") and isinstance(payload, list):
            if ctype == "multipart/report" and (_param(part, "report-type") or "").lower() \
                    == "delivery-status":
                bodies.attachments.append(part)  # read as the DSN report, see _attach
            if depth >= MAX_DEPTH:
                continue
            sub = ctype.partition("/")[2]
            _structure([p for p in payload if isinstance(p, Message)], sub,
                       in_alternative or sub == "alternative", bodies, depth + 1)
            continue
        media = ctype.startswith(_INLINE_MEDIA)
        # the file name is looked up only where it decides (parameter parsing is not free)
        inline = _disposition(part) != "attachment" and (ctype in ("text/plain", "text/html") or media) \
            and (i == 0 or (multipart != "related" and (media or _filename(part, None) is None)))
        if not inline:
            bodies.attachments.append(part)
            continue
        if multipart == "alternative":
            if ctype == "text/plain" and bodies.text is not None:
                bodies.text.append(part)
            elif ctype == "text/html" and bodies.html is not None:
                bodies.html.append(part)
            else:
                bodies.attachments.append(part)
            continue
        if in_alternative:
            if ctype == "text/plain":
                bodies.html = None
            if ctype == "text/html":
                bodies.text = None
        if bodies.text is not None:
            bodies.text.append(part)
        if bodies.html is not None:
            bodies.html.append(part)
        if (bodies.text is None or bodies.html is None) and media:
            bodies.attachments.append(part)
    if multipart == "alternative" and bodies.text is not None and bodies.html is not None:
        if text_length == len(bodies.text) and html_length != len(bodies.html):
            bodies.text.extend(bodies.html[html_length:])
        if html_length == len(bodies.html) and text_length != len(bodies.text):
            bodies.html.extend(bodies.text[text_length:])


_DSN_PARTS = ("message/delivery-status", "message/global-delivery-status", "text/rfc822-headers")


def _attach(parsed: ParsedEmail, part: Message, hint: str | None, max_bytes: int,
            max_attachments: int) -> None:
    ctype = _content_type(part)
    if ctype == "multipart/report":
        parsed.dsn = storable_value(read_report(part))
        return
    if ctype in _DSN_PARTS and parsed.dsn is not None:
        return
    original = _original_filename(part, hint)
    filename = _safe_filename(original)
    payload = payload_of(part)
    if ctype.startswith("message/") and isinstance(payload, list) and payload \
            and isinstance(payload[0], Message):
        data = _message_bytes(payload[0])
        if ctype == "message/partial":
            number = _param(part, "number") or "1"
            ident = re.sub(r"[^\w.@-]+", "_", _param(part, "id") or "message")[:80]
            filename = filename or f"partial-{ident}-{number}.eml"
        elif ctype == "message/external-body":
            filename = filename or "external-body.txt"
        else:
            filename = filename or "forwarded-message.eml"
    else:
        data = _payload_bytes(part)
        if ctype == "message/external-body" and not data:
            data = b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogateescape")
                            for k, v in part.raw_items())
            filename = filename or "external-body.txt"
    if ctype == "application/ms-tnef" or (filename or "").lower() == "winmail.dat":
        unpacked = _tnef(data)
        if unpacked:
            for name, content in unpacked:
                _keep(parsed, Attachment(data=content, content_type=_guess_type(name),
                                         filename=_safe_filename(name), original_filename=name
                                         if _safe_filename(name) != name else None,
                                         from_tnef=True), max_bytes, max_attachments)
            return
    cid = normalize_message_id(_raw_header(part, "content-id"))
    if not data and not filename:
        return
    _keep(parsed, Attachment(
        data=data, content_type=ctype, filename=filename, content_id=cid,
        inline=bool(cid) and _disposition(part) != "attachment",
        original_filename=original if original != filename else None), max_bytes, max_attachments)


def _keep(parsed: ParsedEmail, att: Attachment, max_bytes: int, max_attachments: int) -> None:
    if len(parsed.attachments) >= max_attachments:
        parsed.skipped.append({"filename": att.filename, "size": len(att.data), "reason": "too many"})
        return
    if len(att.data) > max_bytes:
        parsed.skipped.append({"filename": att.filename, "size": len(att.data),
                               "reason": f"larger than {max_bytes} bytes"})
        return
    parsed.attachments.append(att)


def _tnef(data: bytes) -> list[tuple[str, bytes]]:
    """The files inside a TNEF ``winmail.dat`` (Outlook's rich-text wrapper), or ``[]`` when
    it cannot be read (then the ``winmail.dat`` itself is kept)."""
    if len(data) < 6:
        return []
    try:
        import tnefparse  # type: ignore[import-untyped]

        tnef = tnefparse.TNEF(data)
        out = []
        for att in tnef.attachments:
            name = att.long_filename() or att.name or "attachment"
            if isinstance(name, bytes):
                name = decode_bytes(name)
            out.append((str(name), bytes(att.data)))
        return out
    except Exception:  # noqa: BLE001 - a broken TNEF blob stays a file, it never fails the mail
        return []


def _guess_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"
