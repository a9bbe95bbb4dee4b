"""The hub's one HTTP client for vendor calls.

httpx is the API adapters use, and by default httpx's own transport carries the requests, so a
plain ``respx.mock()`` intercepts every vendor call in an embedder's tests (SPEC §4). httpcore's
pool does not scale with its size (its bookkeeping grows with the square of the connections it
holds, see docs/performance.md), so the default transport keeps one small pool per vendor origin
and bounds the requests in flight to each: a request waits on a semaphore (cheap) instead of in
httpcore's queue (expensive). ``http_transport = "aiohttp"`` (the ``[aiohttp]`` extra) carries
requests over aiohttp's pool through ``httpx-aiohttp`` instead: faster under high outbound
concurrency, but invisible to a plain ``respx.mock()``.

The client keeps no cookies: vendor APIs are server-to-server, one client serves every channel
and tenant, and a shared jar would carry one vendor session's cookies into another's requests
(parsing ``Set-Cookie`` on every answer was also a tenth of a send's CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx

from ._errors import ConfigurationError
from ._extras import missing_extra

__all__ = ["NoCookies", "PerHostTransport", "make_http_client"]

USER_AGENT = "omnichannel-sdk"

DEFAULT_PER_HOST = 32
"""Requests in flight to one vendor origin with httpx's transport (a pool of that many)."""


class NoCookies(httpx.Cookies):
    """A cookie jar that never stores anything."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore ``Set-Cookie``."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Refuse to store cookies."""


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its origin's slot back when it is closed (the connection is
    busy until then)."""

    def __init__(self, inner: httpx.AsyncByteStream, gate: asyncio.Semaphore) -> None:
        self._inner = inner
        self._gate: asyncio.Semaphore | None = gate

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            gate, self._gate = self._gate, None
            if gate is not None:
                gate.release()


class PerHostTransport(httpx.AsyncBaseTransport):
    """httpx's own transport with one small connection pool per origin and at most
    ``per_host`` requests in flight to each (the rest wait their turn in order).

    respx patches the pools underneath, so ``respx.mock()`` still intercepts every request.
    """

    def __init__(self, *, per_host: int = DEFAULT_PER_HOST, keepalive_expiry: float = 30.0) -> None:
        if per_host < 1:
            raise ConfigurationError("must be at least 1", field="omnichannel.http_max_per_host")
        self.per_host = per_host
        self._limits = httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host,
                                    keepalive_expiry=keepalive_expiry)
        self._origins: dict[tuple[bytes, bytes, int | None], tuple[httpx.AsyncHTTPTransport,
                                                                  asyncio.Semaphore]] = {}

    def _origin(self, url: httpx.URL) -> tuple[httpx.AsyncHTTPTransport, asyncio.Semaphore]:
        key = (url.raw_scheme, url.raw_host, url.port)
        found = self._origins.get(key)
        if found is None:
            found = (httpx.AsyncHTTPTransport(limits=self._limits), asyncio.Semaphore(self.per_host))
            self._origins[key] = found
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through its origin's pool once a slot is free."""
        transport, gate = self._origin(request.url)
        await gate.acquire()
        try:
            response = await transport.handle_async_request(request)
        except BaseException:
            gate.release()
            raise
        if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
            gate.release()
            return response
        return httpx.Response(status_code=response.status_code, headers=response.headers,
                              stream=_ReleasingStream(response.stream, gate),
                              extensions=response.extensions, request=request)

    async def aclose(self) -> None:
        """Close every origin's pool."""
        origins, self._origins = self._origins, {}
        for transport, _ in origins.values():
            await transport.aclose()


def make_http_client(transport: str = "httpx", *, timeout: float = 20.0,
                     per_host: int = DEFAULT_PER_HOST, max_connections: int = 200,
                     event_hooks: dict[str, list[Any]] | None = None) -> httpx.AsyncClient:
    """A cookie-less client with sane timeouts, carried by ``transport``.

    ``"httpx"`` (default): :class:`PerHostTransport`, ``per_host`` requests in flight per
    vendor origin. ``"aiohttp"``: aiohttp's pool of ``max_connections`` (needs the
    ``[aiohttp]`` extra).
    """
    headers = {"user-agent": USER_AGENT}
    carrier: httpx.AsyncBaseTransport
    if transport == "aiohttp":
        try:
            from httpx_aiohttp import AiohttpTransport
        except ImportError as exc:
            raise missing_extra("aiohttp", 'http_transport = "aiohttp"', exc) from None
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        carrier = AiohttpTransport(limits=limits)
    else:
        carrier = PerHostTransport(per_host=per_host)
    client = httpx.AsyncClient(transport=carrier, timeout=timeout, headers=headers,
                               event_hooks=event_hooks)
    client._cookies = NoCookies()  # the public setter copies into a normal jar
    return client
