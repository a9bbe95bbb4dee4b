"""Framework-neutral HTTP request and response objects that adapters verify and parse."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

from ._errors import UnparseablePayloadError

__all__ = ["WebhookRequest", "WebhookResponse", "alternate_port_url"]


def alternate_port_url(url: str) -> str | None:
    """``url`` with the scheme's default port added, or removed when it is there.

    Vendors sign the URL exactly as they called it, and some (Twilio) write ``:443`` / ``:80``
    while the gateway only knows the configured ``public_url``: an adapter checks both forms.
    ``None`` for a URL on another port or without a host.
    """
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if port is None:
        netloc = f"{prefix}{host}:{default}"
    elif port == default:
        netloc = f"{prefix}{host}"
    else:
        return None
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class WebhookRequest:
    """An HTTP request as a vendor sent it: ``method``, ``url``, ``headers``, ``query``, ``body``.

    ``url`` is the URL the vendor called as it sees it (the hub builds it from ``public_url``),
    which is what signatures are computed over. Header names are case-insensitive. ``query``
    maps each name to its first value; ``query_items`` keeps every pair in order.
    """

    __slots__ = ("_form", "_query", "_query_items", "body", "headers", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        query: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.headers: dict[str, str] = {k.lower(): v for k, v in items}
        self.body = body
        self._query: dict[str, str] | None = dict(query) if query is not None else None
        self._query_items: list[tuple[str, str]] | None = (
            list(self._query.items()) if self._query is not None else None)
        self._form: dict[str, str] | None = None

    @classmethod
    def _from_lowered(cls, method: str, url: str, headers: dict[str, str],
                      body: bytes) -> WebhookRequest:
        """A request whose ``headers`` dict already has lower-case names (the gateway decodes
        the ASGI headers into one): taken as it is, not copied and lowered again."""
        self = cls.__new__(cls)
        self.method = method.upper()
        self.url = url
        self.headers = headers
        self.body = body
        self._query = self._query_items = self._form = None
        return self

    @property
    def query_items(self) -> list[tuple[str, str]]:
        """Every query parameter pair, in order (parsed from ``url`` on first use)."""
        if self._query_items is None:
            # without "?" there is no query (most webhook URLs): no split, no parse to run
            self._query_items = (parse_qsl(urlsplit(self.url).query, keep_blank_values=True)
                                 if "?" in self.url else [])
        return self._query_items

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, the first value of each name."""
        if self._query is None:
            query: dict[str, str] = {}
            for k, v in self.query_items:
                query.setdefault(k, v)
            self._query = query
        return self._query

    def header(self, name: str, default: str | None = None) -> str | None:
        """Return a header value by case-insensitive name."""
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-cased, without parameters."""
        return (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value per name)."""
        if self._form is None:
            try:
                text = self.body.decode("utf-8")
            except UnicodeDecodeError:
                raise UnparseablePayloadError("form body is not UTF-8") from None
            form: dict[str, str] = {}
            for k, v in parse_qsl(text, keep_blank_values=True):
                form.setdefault(k, v)
            self._form = form
        return self._form

    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`UnparseablePayloadError` when it is not."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise UnparseablePayloadError(f"body is not JSON: {exc}") from None

    def __repr__(self) -> str:
        return f"<WebhookRequest {self.method} {self.url} {len(self.body)} bytes>"


class WebhookResponse:
    """What the gateway answers the vendor: status, body and content type."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = dict(headers or {})

    @classmethod
    def json(cls, data: Any, status: int = 200) -> WebhookResponse:
        """A JSON response."""
        return cls(status, orjson.dumps(data), "application/json")

    def __repr__(self) -> str:
        return f"<WebhookResponse {self.status} {self.content_type} {len(self.body)} bytes>"
