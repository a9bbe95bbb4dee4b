"""Keeping secrets out of stored raw requests and log lines.

Adapters declare the headers and query parameters that carry bearer-like secrets
(:attr:`ChannelAdapter.secret_headers`, :attr:`ChannelAdapter.secret_query`); the hub redacts them
before a raw request is stored, and the SDK's log lines show URLs through :func:`redact_url`.
Signatures computed over the request (HMACs) are not secrets and stay, for audits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = ["BOT_TOKEN", "REDACTED", "redact_headers", "redact_lowered_headers", "redact_query",
           "redact_url", "storable_text"]

REDACTED = "<redacted>"
"""What a redacted value is replaced with."""


def redact_headers(headers: Mapping[str, str], secret: Iterable[str]) -> dict[str, str]:
    """``headers`` with the value of every name in ``secret`` (case-insensitive) replaced."""
    names = _lowered(secret)
    return {k: (REDACTED if k.lower() in names else v) for k, v in headers.items()}


def redact_lowered_headers(headers: Mapping[str, str], secret: Iterable[str]) -> dict[str, str]:
    """:func:`redact_headers` for ``headers`` whose names are lower case already (a
    :class:`~omnichannel_sdk.WebhookRequest`'s): a plain copy when none of them is secret."""
    names = _lowered(secret)
    if names.isdisjoint(headers):
        return dict(headers)
    return {k: (REDACTED if k in names else v) for k, v in headers.items()}


def _lowered(names: Iterable[str]) -> frozenset[str]:
    """``names`` lower-cased; an adapter's declared (frozen) set is lowered once."""
    if isinstance(names, frozenset):
        return _lowered_once(names)
    return frozenset(n.lower() for n in names)


@functools.lru_cache(maxsize=256)
def _lowered_once(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.lower() for n in names)


BOT_TOKEN = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
"""A Telegram bot token in a URL path (``/bot123:AAE…``)."""
_QUERY_VALUE = re.compile(r"(^|[&;])([^=&;]*)=([^&;]*)")


def redact_query(query: str) -> str:
    """A query string with every value replaced (``a=<redacted>&b=<redacted>``)."""
    return _QUERY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}", query)


def redact_url(url: str, secret: Iterable[str] | None = None) -> str:
    """``url`` fit for a log line, an error message or a stored request.

    Without ``secret`` (log lines, error messages): no user info, every query value replaced,
    Telegram bot tokens in the path hidden, no fragment. With ``secret``, the names of the
    query parameters that carry secrets (case-insensitive; a stored raw request that replay must
    still be able to read): only the password in the user info and those parameters' values are
    replaced. A URL that cannot be split is :data:`REDACTED` whole.
    """
    if isinstance(secret, frozenset) and "?" not in url and "@" not in url:
        # a channel's plain webhook URL with its declared names: the same few URLs on every
        # request (a query or user info differs per request, or may hold a secret: not kept)
        return _stored_url(url, secret)
    return _redact_url(url, secret)


@functools.lru_cache(maxsize=1024)
def _stored_url(url: str, secret: frozenset[str]) -> str:
    return _redact_url(url, secret)


def _redact_url(url: str, secret: Iterable[str] | None) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if secret is None:
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
        path = BOT_TOKEN.sub(f"/bot{REDACTED}", parts.path)
        return urlunsplit((parts.scheme, netloc, path,
                           redact_query(parts.query) if parts.query else "", ""))
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else netloc
    query = parts.query
    names = _lowered(secret)
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
