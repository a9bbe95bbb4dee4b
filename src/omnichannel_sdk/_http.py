"""The hub's one HTTP client for vendor calls.

httpx is the API adapters use. Under concurrency httpx's own async pool is CPU-bound on our
machines (see docs/performance.md), so by default requests are carried by aiohttp's pool through
``httpx-aiohttp``; ``http_transport = "httpx"`` keeps httpx's own (what respx patches in tests).
"""

from __future__ import annotations

import httpx

__all__ = ["make_http_client"]

USER_AGENT = "omnichannel-sdk"


def make_http_client(transport: str = "aiohttp", *, timeout: float = 20.0,
                     max_connections: int = 200) -> httpx.AsyncClient:
    """A client with sane timeouts and pool limits, carried by ``transport``."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    headers = {"user-agent": USER_AGENT}
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits),
                                 timeout=timeout, headers=headers)
    return httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers)
