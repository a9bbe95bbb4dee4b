"""Reading raw MIME with the standard library (``policy.default``), tolerant of what real mail
clients send: every common CJK and European charset (with the supersets clients really mean),
RFC 2047 encoded words, RFC 2231 file names, raw 8-bit headers, broken headers.

:func:`parse_mime` turns bytes into a :class:`ParsedEmail`; it raises only
:class:`~omnichannel_sdk.UnparseablePayloadError`.
"""

from __future__ import annotations

import codecs
import email
import email.errors
import email.header
import email.policy
import email.utils
import functools
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
    "safe_filename",
    "storable_text",
    "storable_value",
    "salvage_address",
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
    "iso2022_jp_ext": ("jis-via-cp932", "iso2022_jp_2", "iso2022_jp_2004", "cp932", "euc_jis_2004"),
    "big5hkscs": ("cp950",),
    "cp932": ("shift_jis_2004", "euc_jis_2004"),
    "gb18030": ("big5hkscs",),
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
    if not label.isascii() or not label.isprintable() or len(label) > 40:
        return None
    return CHARSET_ALIASES.get(label, label) or None


_ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def _jis_via_cp932(data: bytes) -> str:
    """ISO-2022-JP through CP932: the JIS X 0208 pairs of each ``ESC $ B`` run are moved to
    Shift_JIS bytes, so NEC's row 13 (①, ㈱) and IBM extensions that Python's ISO-2022-JP
    codecs refuse decode as the Japanese clients that wrote them meant."""
    out = bytearray()
    mode = "ascii"
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if byte == 0x1B:
            seq = data[i + 1:i + 3]
            if seq in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if seq in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq == b"(I":
                mode, i = "kana", i + 3
                continue
            if data[i + 1:i + 4] == b"$(D":
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 4, "JIS X 0212")
            raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "unknown escape")
        if byte in (0x0A, 0x0D):
            out.append(byte)
            i += 1
            continue
        if mode == "jis":
            if i + 1 >= n:
                raise UnicodeDecodeError("iso2022_jp", data, i, n, "truncated pair")
            j1, j2 = byte, data[i + 1]
            if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 2, "not a JIS pair")
            s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
            s2 = j2 + (0x1F if j1 % 2 else 0x7E)
            if j1 % 2 and s2 >= 0x7F:
                s2 += 1
            out += bytes((s1, s2))
            i += 2
        elif mode == "kana":
            if not 0x21 <= byte <= 0x5F:
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "not a kana byte")
            out.append(byte + 0x80)
            i += 1
        else:
            if byte >= 0x80:
                raise UnicodeDecodeError("iso2022_jp", data, i, i + 1, "8-bit byte")
            out.append(byte)
            i += 1
    return out.decode("cp932")


def _decode_with(data: bytes, codec: str) -> str:
    if not _is_text_codec(codec):
        raise LookupError(codec)
    if codec == "jis-via-cp932":
        return _jis_via_cp932(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        raise
    except (UnicodeError, ValueError, TypeError) as exc:  # a codec's own failures
        raise LookupError(codec) from exc


def detect_charset(data: bytes) -> str | None:
    """The charset charset-normalizer finds for ``data`` (mapped to its superset), or ``None``
    when the text is too short to tell (fewer than 8 non-ASCII bytes)."""
    if sum(1 for b in data if b >= 0x80) < 8:
        return None
    from charset_normalizer import from_bytes

    try:
        best = from_bytes(data[:65536]).best()
    except (ValueError, LookupError, TypeError):  # pragma: no cover - defensive
        return None
    return _codec(best.encoding) if best is not None else None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset`` (see :func:`_decode_bytes`), without NUL (no
    store holds it, no mail means it)."""
    text = _decode_bytes(data, charset)
    return text.replace("\x00", "") if "\x00" in text else text


@functools.lru_cache(maxsize=256)
def _is_text_codec(name: str) -> bool:
    """Whether ``name`` is a text encoding: a label may name any Python codec, and
    ``base64``, ``rot13`` or ``unicode_escape`` must never run on mail."""
    if name == "jis-via-cp932":
        return True
    try:
        info = codecs.lookup(name)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False
    bad = {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined"}
    return bool(getattr(info, "_is_text_encoding", True)) and info.name not in bad


def _decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Text from ``data`` labelled ``charset``, never failing: the label's superset codec and
    its relatives, UTF-8, then what charset-normalizer detects when the label is absent or
    wrong, then Windows-1252 with replacement characters. A decode that leaves ESC sequences
    (ISO-2022 text read as something else) is never accepted."""
    codec = _codec(charset)
    tries: list[str] = []
    if codec and codec != "ascii":
        tries += [codec, *_FALLBACKS.get(codec, ())]
    tries.append("utf-8")
    for name in tries:
        try:
            text = _decode_with(data, name)
        except (LookupError, UnicodeDecodeError):
            continue
        if "\x1b" in text and not name.startswith("iso2022"):
            continue
        if not text.isascii() and _ANY_SURROGATE.search(text):
            continue  # UTF-7 and friends can yield lone surrogates: no store can hold them
        return text
    if b"\x1b$" in data or b"\x1b(" in data:
        for name in ("iso2022_jp_ext", "jis-via-cp932", "iso2022_jp_2", "iso2022_kr"):
            try:
                return _decode_with(data, name)
            except (LookupError, UnicodeDecodeError):
                continue
    detected = detect_charset(data)
    if detected and detected not in tries:
        try:
            text = data.decode(detected)
            if "\x1b" not in text and not _ANY_SURROGATE.search(text):
                return text
        except (LookupError, UnicodeDecodeError):
            pass
    if codec and codec not in ("ascii", "utf-8", "utf-7") and _is_text_codec(codec) \
            and codec != "jis-via-cp932":
        try:
            text = data.decode(codec, errors="replace")
            if "\x1b" not in text and not _ANY_SURROGATE.search(text):
                return text
        except (LookupError, UnicodeError, ValueError, TypeError):
            pass
    return data.decode("cp1252", errors="replace")


_SURROGATES = re.compile("[\udc80-\udcff]")
# encoded words as clients write them, also with spaces inside (``=?us-ascii?Q?ABC / 123?=``)
_EW = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\r\n]*?\?=")


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
        except (ValueError, AssertionError, IndexError, LookupError, TypeError,
                email.errors.HeaderParseError):  # binascii.Error is a ValueError
            chunks = [(value, None)]
        out = []
        for chunk, charset in chunks:
            if isinstance(chunk, bytes):
                out.append(decode_bytes(chunk, charset or hint))
            else:
                out.append(chunk)
        value = "".join(out)
    value = re.sub(r"\r?\n[ \t]+", " ", value)
    value = value.replace("\r", "").replace("\n", " ").strip()
    return value if value.isprintable() else storable_text(value)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def storable_text(value: str) -> str:
    """``value`` as text every store can hold: raw 8-bit bytes (surrogate escapes of the
    parser) decoded as UTF-8 (RFC 6532) or else Windows-1252, NUL and control characters
    removed."""
    if not value.isascii() and _SURROGATES.search(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"))
    if not value.isprintable():
        value = _CONTROL.sub(" ", value) if _CONTROL.search(value) else value
        value = "".join(c for c in value if not 0xD800 <= ord(c) <= 0xDFFF)
    return value


def storable_value(value: Any) -> Any:
    """``value`` (JSON-shaped: dicts, lists, strings) with every string made storable."""
    if isinstance(value, str):
        if value.isprintable() or not _NEEDS_CLEANING.search(value):
            return value
        if _SURROGATES.search(value):  # raw bytes the parser kept: read them as text
            try:
                value = decode_bytes(value.encode("utf-8", "surrogateescape"))
            except UnicodeError:
                pass
        return _NEEDS_CLEANING.sub("", value)  # NUL and lone surrogates; newlines stay
    if isinstance(value, dict):
        return {storable_value(k) if isinstance(k, str) else k: storable_value(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_value(v) for v in value]
    return value


_NEEDS_CLEANING = re.compile("[\x00\ud800-\udfff]")


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets and whitespace (how external ids are stored);
    raw 8-bit bytes and control characters made storable (see :func:`storable_text`)."""
    if not value:
        return None
    value = storable_text(value)
    found = re.search(r"<([^<>\s]+)>", value)
    ident = found.group(1) if found else value.strip().split()[0] if value.strip() else ""
    ident = ident.strip("<>").strip()
    return ident[:998] or None


def parse_message_ids(value: str | None) -> list[str]:
    """Every ``<id>`` in a References / In-Reply-To header, in order, without duplicates."""
    if not value:
        return []
    value = storable_text(value)
    found = re.findall(r"<([^<>\s]+)>", value)
    if not found:  # some clients forget the brackets
        found = [w for w in value.split() if "@" in w]
    seen: list[str] = []
    for ident in found:
        ident = ident.strip("<>")[:998]
        if ident and ident not in seen:
            seen.append(ident)
    return seen


_ADDR = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_COMMENT = re.compile(r"\(([^()]*)\)")


def _valid_addr(addr: str) -> bool:
    return (addr.count("@") == 1 and not addr.startswith("@") and not addr.endswith("@")
            and " " not in addr and "=?" not in addr and "?=" not in addr and "," not in addr
            and ":" not in addr and "<" not in addr and ">" not in addr and "\"" not in addr
            and "." in addr.rpartition("@")[2])


def parse_addresses(value: str | None, hint: str | None = None) -> list[tuple[str, str]]:
    """``(display name, address)`` pairs of an address header; invalid entries are dropped.

    Encoded words are protected before the list is split, so a comma or colon inside an
    encoded display name (``=?utf-8?Q?B=C3=BCrling,_Andreas?=``, or an attacker's
    ``=?utf-8?Q?x,evil@attacker.example?=``) never splits the list or becomes an address.
    Comments stay in the display name (``MAILER-DAEMON (Mail Delivery System)``).
    """
    if not value:
        return []
    if not value.isascii() and _SURROGATES.search(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"), hint)
    value = value.replace("\r", "").replace("\n", " ")
    words: list[str] = []
    if "=?" in value:
        def protect(found: re.Match[str]) -> str:
            words.append(found.group(0))
            return f'"\x00{len(words) - 1}\x00"'

        value = _EW.sub(protect, value)
    try:
        pairs = email.utils.getaddresses([value])
    except (ValueError, IndexError, TypeError):  # pragma: no cover - getaddresses is lenient
        pairs = []

    def restore(text: str) -> str:
        return re.sub("\x00(\\d+)\x00", lambda m: words[int(m.group(1))], text) if words else text

    out: list[tuple[str, str]] = []
    for name, addr in pairs:
        addr = restore(addr).strip().strip("<>").strip()
        if not _valid_addr(addr):
            continue
        out.append((decode_header_value(restore(name), hint), addr))
    if out and "(" in value and len(out) == 1:
        comments = [c.strip() for c in _COMMENT.findall(value) if c.strip()]
        name = out[0][0]
        extra = [c for c in comments if c not in name]
        if extra and name:
            out[0] = (f"{name} ({' '.join(extra)})", out[0][1])
    return out


def salvage_address(value: str | None, hint: str | None = None) -> tuple[str, str] | None:
    """An address found in a header that does not parse as an address list
    (``<power quadrant system@example.com>``, ``"Millions Lottery"@example.com>``,
    ``Test test@example.com``): the last thing that looks like ``local@domain.tld`` outside
    encoded words, with the rest as the display name."""
    if not value:
        return None
    if not value.isascii() and _SURROGATES.search(value):
        value = decode_bytes(value.encode("utf-8", "surrogateescape"), hint)
    plain = _EW.sub(" ", value.replace("\r", "").replace("\n", " "))
    found = list(_ADDR.finditer(plain))
    if not found:
        return None
    addr = found[-1].group(0).strip(".")
    if not _valid_addr(addr):
        return None
    name = decode_header_value(value.replace(addr, " "), hint)
    name = re.sub(r"[<>\"]+", " ", name)
    return " ".join(name.split()), addr


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
    original_filename: str | None = None
    """The name as the mail gave it, when :attr:`filename` had to be made safe."""
    from_tnef: bool = False
    """Unpacked from an Outlook ``winmail.dat`` (TNEF)."""

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

    sender_header: list[tuple[str, str]] = field(default_factory=list)
    """``Sender`` pairs."""
    return_path: str | None = None
    """``Return-Path`` address (what the last MTA recorded as the envelope sender)."""
    from_raw: list[str] = field(default_factory=list)
    """Every ``From`` header as it came (a mail may carry a junk one and a good one)."""
    hint: str | None = None
    """The charset the message's text parts declare (raw 8-bit headers are read in it)."""

    def author(self) -> tuple[tuple[str, str] | None, str]:
        """The author and where it was found: ``from``, ``from-salvaged`` (an address dug out
        of a From that does not parse), ``sender``, ``reply-to``, ``return-path``,
        ``envelope``, ``from-2`` (a second From header); ``(None, "unknown")`` when nothing
        names one."""
        if self.from_:
            return self.from_[0], "from"
        first = self.from_raw[0] if self.from_raw else None
        salvaged = salvage_address(first, self.hint)
        if salvaged is not None:
            return salvaged, "from-salvaged"
        if self.sender_header:
            return self.sender_header[0], "sender"
        if self.reply_to:
            return self.reply_to[0], "reply-to"
        for source, value in (("return-path", self.return_path), ("envelope", self.envelope_from)):
            if value and _valid_addr(value):
                return ("", value), source
        for value in self.from_raw[1:]:
            found = parse_addresses(value, self.hint)
            pair = found[0] if found else salvage_address(value, self.hint)
            if pair is not None:
                return pair, "from-2"
        return None, "unknown"

    @property
    def sender(self) -> tuple[str, str] | None:
        """The author (see :meth:`author`), ``None`` when the mail names none."""
        return self.author()[0]


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
        from ._dsn import read_report

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
