"""The hub's one HTTP client for vendor calls.

httpx is the API adapters use. Under concurrency httpx's own async pool is CPU-bound on our
machines (see docs/performance.md), so by default requests are carried by aiohttp's pool through
``httpx-aiohttp``; ``http_transport = "httpx"`` keeps httpx's own (what respx patches in tests).

The client keeps no cookies: vendor APIs are server-to-server, one client serves every channel
and tenant, and a shared jar would carry one vendor session's cookies into another's requests
(parsing ``Set-Cookie`` on every answer was also a tenth of a send's CPU).
"""

from __future__ import annotations

import httpx

__all__ = ["NoCookies", "make_http_client"]

USER_AGENT = "omnichannel-sdk"


class NoCookies(httpx.Cookies):
    """A cookie jar that never stores anything."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore ``Set-Cookie``."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Refuse to store cookies."""


def make_http_client(transport: str = "aiohttp", *, timeout: float = 20.0,
                     max_connections: int = 200) -> httpx.AsyncClient:
    """A cookie-less client with sane timeouts and pool limits, carried by ``transport``."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    headers = {"user-agent": USER_AGENT}
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits),
                                   timeout=timeout, headers=headers)
    else:
        client = httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers)
    client._cookies = NoCookies()  # the public setter copies into a normal jar
    return client
