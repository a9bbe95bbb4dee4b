"""What the demo's endpoints share: the hub, the agent identity and the same-site token."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from .._hub import Hub
from .._models import Author

__all__ = ["AGENT", "DemoState", "demo_state", "refused", "same_origin"]

AGENT = Author(kind="human", id="demo-agent", name="Agent")


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether a browser's ``Origin`` is this server."""
    return bool(origin and host) and urlsplit(origin or "").netloc.lower() == (host or "").lower()


@dataclass
class DemoState:
    """The demo app's state (``app.state.demo``).

    The inbox acts as the agent: a page on another site must not drive it. Every POST needs
    ``token`` (only pages served here carry it) and, when the browser says, our own Origin; the
    live WebSocket needs our Origin."""

    hub: Hub
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def allowed(self, request: Request, form: dict[str, list[str]] | None = None) -> bool:
        """Whether a POST comes from one of our pages."""
        origin = request.headers.get("origin")
        if origin is not None and not same_origin(origin, request.headers.get("host")):
            return False
        given = request.headers.get("x-demo-token") or ((form or {}).get("csrf") or [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())


def demo_state(connection: HTTPConnection) -> DemoState:
    """The state of the demo app serving this request."""
    state: DemoState = connection.app.state.demo
    return state


def refused() -> JSONResponse:
    """The answer to a cross-site POST."""
    return JSONResponse({"error": "cross-site request refused (no demo token)"}, 403)
