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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from omnichannel_sdk import UnparseablePayloadError

__all__ = [
    "Attachment",
    "ParsedEmail",
    "decode_bytes",
    "decode_header_value",
    "normalize_message_id",
    "parse_addresses",
    "parse_message_ids",
    "parse_mime",
]

#: Labels mail clients put on text, mapped to the codec that decodes what they really send
#: (a superset: Chinese clients label GBK text ``gb2312``, Japanese ones label CP932 ``shift_jis``).
CHARSET_ALIASES: dict[str, str] = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "euc-cn": "gb18030", "hz-gb-2312": "hz", "big5": "big5hkscs", "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs", "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932",
    "x-sjis": "cp932", "windows-31j": "cp932", "ms_kanji": "cp932", "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext", "euc-jp": "euc_jis_2004", "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949", "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "iso-8859-8-i": "iso-8859-8", "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
    "ansi_x3.4-1968": "ascii", "us-ascii": "ascii", "646": "ascii", "x-unknown": "ascii",
    "unknown-8bit": "ascii", "default": "ascii",
}
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "iso2022_jp_ext": ("iso2022_jp_2", "iso2022_jp_2004"),
    "big5hkscs": ("cp950",),
    "cp932": ("shift_jis_2004",),
}

class _RawHeaderPolicy(email.policy.EmailPolicy):
    """``policy.default`` (EmailMessage objects, its parser and line handling) except that
    header values are handed back raw: building a header object per access costs five times
    the whole parse, and we decode every header ourselves with superset codecs anyway."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        """The stored value as parsed (folding kept, 8-bit bytes surrogate-escaped)."""
        return value


READ_POLICY = _RawHeaderPolicy()
"""The policy inbound mail is parsed with."""

MAX_PARTS = 500
MAX_DEPTH = 20


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    return CHARSET_ALIASES.get(label, label) or None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset``, never failing: the label's superset codec,
    then UTF-8, then Windows-1252 with replacement characters."""
    codec = _codec(charset)
    tries: list[str] = []
    if codec and codec != "ascii":
        tries += [codec, *_FALLBACKS.get(codec, ())]
    tries.append("utf-8")
    for name in tries:
        try:
            return data.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
    if codec and codec != "ascii":
        try:
            return data.decode(codec, errors="replace")
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace")


_SURROGATES = re.compile("[\udc80-\udcff]")
_EW = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def decode_header_value(value: str | None, hint: str | None = None) -> str:
    """A header's text: RFC 2047 words decoded with superset codecs, raw 8-bit bytes (kept
    by the parser as surrogate escapes) decoded as UTF-8 or the message's ``hint`` charset."""
    if not value:
        return ""
    if not value.isascii() and _SURROGATES.search(value):
        raw = value.encode("utf-8", "surrogateescape")
        value = decode_bytes(raw, hint)
    if "=?" in value and _EW.search(value):
        try:
            chunks = email.header.decode_header(value)
        except (ValueError, AssertionError, IndexError, LookupError):
            chunks = [(value, None)]
        out = []
        for chunk, charset in chunks:
            if isinstance(chunk, bytes):
                out.append(decode_bytes(chunk, charset or hint))
            else:
                out.append(chunk)
        value = "".join(out)
    value = re.sub(r"\r?\n[ \t]+", " ", value)
    return value.replace("\r", "").replace("\n", " ").strip()


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets and whitespace (how external ids are stored)."""
    if not value:
        return None
    found = re.search(r"<([^<>\s]+)>", value)
    ident = found.group(1) if found else value.strip().split()[0] if value.strip() else ""
    ident = ident.strip("<>").strip()
    return ident[:998] or None


def parse_message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in a References / In-Reply-To header, in order, without duplicates."""
    if not value:
        return []
    found = re.findall(r"<([^<>\s]+)>", value)
    if not found:  # some clients forget the brackets
        found = [w for w in value.split() if "@" in w]
    seen: list[str] = []
    for ident in found:
        ident = ident.strip("<>")[:998]
        if ident and ident not in seen:
            seen.append(ident)
    return seen


def parse_addresses(value: str | None, hint: str | None = None) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs of an address header; invalid entries are dropped."""
    if not value:
        return []
    if not value.isascii() and _SURROGATES.search(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"), hint)
    pairs = email.utils.getaddresses([value.replace("\r", "").replace("\n", " ")])
    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        addr = addr.strip().strip("<>").strip()
        if addr.count("@") != 1 or addr.startswith("@") or addr.endswith("@") or " " in addr:
            continue
        out.append((decode_header_value(name, hint), addr))
    return out


@dataclass
class Attachment:
    """A file or inline image found in the message."""

    data: bytes
    """The decoded bytes."""
    content_type: str
    """Its MIME type, lower-cased."""
    filename: str | None = None
    """The file name, decoded (RFC 2231 / RFC 2047)."""
    content_id: str | None = None
    """``Content-ID`` without brackets, for inline ``cid:`` images."""
    inline: bool = False
    """Whether the part was shown inline (disposition ``inline`` with a Content-ID)."""

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedEmail:
    """What one email says, independent of how it arrived."""

    message_id: str | None = None
    """``Message-ID`` without brackets."""
    in_reply_to: list[str] = field(default_factory=list)
    """``In-Reply-To`` ids."""
    references: list[str] = field(default_factory=list)
    """``References`` ids, oldest first."""
    subject: str = ""
    """Decoded subject."""
    from_: list[tuple[str, str]] = field(default_factory=list)
    """``From`` (name, address) pairs."""
    to: list[tuple[str, str]] = field(default_factory=list)
    """``To`` pairs."""
    cc: list[tuple[str, str]] = field(default_factory=list)
    """``Cc`` pairs."""
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    """``Reply-To`` pairs."""
    envelope_to: list[str] = field(default_factory=list)
    """SMTP ``RCPT TO`` addresses, when the transport knows them."""
    envelope_from: str | None = None
    """SMTP ``MAIL FROM`` (empty for bounces)."""
    date: datetime | None = None
    """``Date``, in UTC."""
    text: str | None = None
    """The plain-text body."""
    html: str | None = None
    """The HTML body (not yet sanitized)."""
    attachments: list[Attachment] = field(default_factory=list)
    """Files and inline images."""
    headers: dict[str, str] = field(default_factory=dict)
    """Every header, decoded, lower-case names (the first of repeated ones)."""
    dsn: dict[str, Any] | None = None
    """A delivery status notification's report (see :mod:`._dsn`)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """Attachments left out (too large, too many), with why."""
    defects: list[str] = field(default_factory=list)
    """Malformations the parser tolerated."""
    raw_sha256: str | None = None
    """SHA-256 of the raw message (the external id of mail without a Message-ID)."""

    @property
    def sender(self) -> tuple[str, str] | None:
        """The author: first ``From``, else ``Reply-To``, else the envelope sender."""
        if self.from_:
            return self.from_[0]
        if self.reply_to:
            return self.reply_to[0]
        if self.envelope_from:
            return ("", self.envelope_from)
        return None


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
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
    return out


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except (ValueError, IndexError, LookupError):
        return None
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            return email.utils.collapse_rfc2231_value(value)
        except (LookupError, UnicodeError):
            return str(value[2])
    return str(value)


def _content_type(part: Message) -> str:
    raw = _raw_header(part, "content-type")
    if raw is None:
        return part.get_default_type()
    ctype = raw.split(";", 1)[0].strip().lower()
    return ctype if "/" in ctype and " " not in ctype else "text/plain"


def _filename(part: Message, hint: str | None) -> str | None:
    name = None
    try:
        name = part.get_filename()
    except (ValueError, IndexError, LookupError, TypeError):
        name = None
    if name is None:
        name = _param(part, "filename", "content-disposition") or _param(part, "name")
    if not name:
        return None
    name = decode_header_value(name, hint)  # Outlook puts RFC 2047 words in parameters
    name = name.replace("/", "_").replace("\\", "_").replace("\x00", "").strip()
    return name[:255] or None


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError, LookupError):
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
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
    if not msg.keys():
        raise UnparseablePayloadError("no headers: not an email")
    try:
        return _read(msg, raw, max_attachment_bytes, max_attachments)
    except RecursionError:
        raise UnparseablePayloadError("MIME structure nested too deeply") from None


def _body_charset(msg: Message) -> str | None:
    for part, _ in _walk(msg)[:50]:
        if _content_type(part).startswith("text/"):
            charset = _param(part, "charset")
            if charset and _codec(charset) not in ("ascii", "utf-8"):
                return charset
    return None


def _read(msg: Message, raw: bytes, max_bytes: int, max_attachments: int) -> ParsedEmail:
    hint = _body_charset(msg)
    parsed = ParsedEmail(raw_sha256=hashlib.sha256(raw).hexdigest())
    for key, value in msg.raw_items():
        name = key.lower()
        if name not in parsed.headers:
            parsed.headers[name] = decode_header_value(str(value), hint)[:4000]
    parsed.message_id = normalize_message_id(_raw_header(msg, "message-id"))
    parsed.in_reply_to = parse_message_ids(_raw_header(msg, "in-reply-to"))
    parsed.references = parse_message_ids(_raw_header(msg, "references"))
    parsed.subject = (_header_text(msg, "subject", hint) or "")[:998]
    parsed.from_ = parse_addresses(_raw_header(msg, "from"), hint)
    parsed.to = parse_addresses(_raw_header(msg, "to"), hint)
    parsed.cc = parse_addresses(_raw_header(msg, "cc"), hint)
    parsed.reply_to = parse_addresses(_raw_header(msg, "reply-to"), hint)
    parsed.date = _date(_raw_header(msg, "date"))
    return_path = _raw_header(msg, "return-path")
    if return_path is not None:
        parsed.envelope_from = return_path.strip().strip("<>").strip()
    parsed.defects = [type(d).__name__ for d in getattr(msg, "defects", [])][:20]

    texts: list[str] = []
    htmls: list[str] = []
    for part, _depth in _walk(msg):
        ctype = _content_type(part)
        if ctype.startswith("multipart/") or (part.is_multipart() and not ctype.startswith("message/")):
            if ctype == "multipart/report" and (_param(part, "report-type") or "").lower() \
                    == "delivery-status":
                from ._dsn import read_report

                parsed.dsn = read_report(part)
            continue
        disposition = (_raw_header(part, "content-disposition") or "").split(";", 1)[0]
        disposition = disposition.strip().lower()
        filename = _filename(part, hint)
        is_body_text = ctype in ("text/plain", "text/html") and disposition != "attachment" \
            and not (filename and disposition != "inline")
        if is_body_text:
            data = _payload_bytes(part)
            text = decode_bytes(data, _param(part, "charset"))
            (htmls if ctype == "text/html" else texts).append(text)
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status",
                     "text/rfc822-headers") and parsed.dsn is not None:
            continue
        if ctype.startswith("multipart/"):
            continue
        data = _payload_bytes(part)
        if ctype in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                data = _message_bytes(inner[0])
            filename = filename or "forwarded-message.eml"
        cid = normalize_message_id(_raw_header(part, "content-id"))
        if len(parsed.attachments) >= max_attachments:
            parsed.skipped.append({"filename": filename, "size": len(data), "reason": "too many"})
            continue
        if len(data) > max_bytes:
            parsed.skipped.append({"filename": filename, "size": len(data),
                                   "reason": f"larger than {max_bytes} bytes"})
            continue
        if not data and not filename:
            continue
        parsed.attachments.append(Attachment(
            data=data, content_type=ctype, filename=filename, content_id=cid,
            inline=bool(cid) and disposition != "attachment"))
    parsed.text = "\n\n".join(t for t in texts if t.strip()) or None
    parsed.html = "\n".join(htmls) or None
    return parsed
