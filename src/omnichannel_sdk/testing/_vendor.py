"""What the contract kit's checks share: the send case, respx on demand, posting a request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import httpx
import pytest

from .._models import Address
from .._webhook import WebhookRequest
from ._fixtures import PUBLIC_URL

__all__ = ["SendCase", "post_request", "respx_module"]


@dataclass
class SendCase:
    """How the vendor's send endpoint looks, for the send tests."""

    method: str
    """HTTP method of the send call."""
    url: str
    """URL (or a regular expression, when ``regex``) of the send call."""
    success: Callable[[], httpx.Response]
    """A vendor answer that means "accepted"."""
    recipient: Address
    """A customer address to send to."""
    regex: bool = False
    """Whether ``url`` is a regular expression."""
    extra_routes: list[tuple[str, str, Callable[[], httpx.Response]]] = field(default_factory=list)
    """Other calls a send makes first (token fetch, media upload): (method, url regex, answer)."""
    sender: Address | None = None
    """Our address (defaults to the adapter's own address)."""


def respx_module() -> ModuleType:
    """respx, which the send and gateway checks mock vendors with (the ``[testing]`` extra):
    imported when a check needs it, so installing the SDK never breaks a test run."""
    try:
        import respx as module
    except ImportError:
        pytest.fail("the contract kit's send and gateway checks need respx: "
                    "pip install 'omnichannel-sdk[testing]'", pytrace=False)
    return module


async def post_request(client: httpx.AsyncClient, request: WebhookRequest) -> httpx.Response:
    """Send a :class:`WebhookRequest` through ``client`` (a client of the gateway)."""
    path = request.url[len(PUBLIC_URL):] if request.url.startswith(PUBLIC_URL) else request.url
    headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
    return await client.request(request.method, path, headers=headers, content=request.body)
