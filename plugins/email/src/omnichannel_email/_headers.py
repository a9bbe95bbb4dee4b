"""Header values of mail: RFC 2047 encoded words, raw 8-bit headers, message ids,
addresses (salvaged from broken ``From`` lines), and text the store can hold."""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import email.utils
import re
from typing import Any

from ._charsets import decode_bytes

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
