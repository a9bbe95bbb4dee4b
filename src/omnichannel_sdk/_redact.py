"""Keeping secrets out of stored raw requests and log lines.

Adapters declare the headers and query parameters that carry bearer-like secrets
(:attr:`ChannelAdapter.secret_headers`, :attr:`ChannelAdapter.secret_query`); the hub redacts them
before a raw request is stored, and the SDK's log lines show URLs through :func:`redact_url`.
Signatures computed over the request (HMACs) are not secrets and stay, for audits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_headers", "redact_url", "storable_text"]

REDACTED = "<redacted>"
"""What a redacted value is replaced with."""


def redact_headers(headers: Mapping[str, str], secret: Iterable[str]) -> dict[str, str]:
    """``headers`` with the value of every name in ``secret`` (case-insensitive) replaced."""
    names = {n.lower() for n in secret}
    return {k: (REDACTED if k.lower() in names else v) for k, v in headers.items()}


def redact_url(url: str, secret: Iterable[str] = ()) -> str:
    """``url`` without a password in its user info and without the values of the query
    parameters named in ``secret`` (case-insensitive)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else netloc
    query = parts.query
    names = {n.lower() for n in secret}
    if query and names:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in names for k, _ in pairs):
            query = "&".join(
                f"{quote(k, safe='')}={REDACTED if k.lower() in names else quote(v, safe='')}"
                for k, v in pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def storable_text(text: str) -> str:
    """``text`` that every store can hold: U+0000 and lone surrogates escaped (PostgreSQL
    refuses the first in text, every UTF-8 encoder the second)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
