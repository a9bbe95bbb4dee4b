"""The web chat's own ASGI app, mounted by the gateway at ``/channels/{key}/``.

Routes (relative to the mount):

- ``GET  widget.js``  the widget (one ``<script>`` tag embeds it)
- ``GET  /``          a page with nothing but the chat (a link customers can open)
- ``POST session``    create or resume a visitor session: token, history, widget config
- ``WS   ws``         the live link: first frame ``{"type": "auth", "token", "after"}``
- ``POST send``, ``GET poll``, ``POST typing``, ``POST receipts``  the HTTP fallback
  (``poll?after=<message id>&sig=<t>&wait=<s>``: missed messages, then the typing / seen signals
  published after ``t`` in the last few seconds, else waits; answers ``{"frames", "sig"}``)
- ``POST upload``     a file (raw body, ``Content-Type``, ``?name=``), into the blob store
- ``GET  media/{key}`` a file of the visitor's conversation (``?t=`` session token)

HTTP requests carry the token in ``X-Webchat-Session``. Every request from a page whose origin
is not allowed is refused (403), WebSocket handshakes included.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from ._backend import ChatBackend
from ._endpoints import media, page, poll, receipts, send, session, typing, widget_js
from ._socket import ws
from ._uploads import sniff_matches, upload

__all__ = ["build_app", "sniff_matches"]


def _widget_source() -> bytes:
    return resources.files("omnichannel_webchat").joinpath("static/widget.js").read_bytes()


def build_app(adapter: ChatBackend) -> Starlette:
    """The Starlette app of one web chat channel; its endpoints find ``adapter`` on
    ``app.state.backend``."""
    origins = adapter.settings.allowed_origins
    middleware = [Middleware(
        CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
        allow_headers=["content-type", "x-webchat-session"], max_age=600)] if origins else []
    routes = [
        Route("/", page),
        Route("/widget.js", widget_js),
        Route("/session", session, methods=["POST"]),
        Route("/send", send, methods=["POST"]),
        Route("/poll", poll),
        Route("/typing", typing, methods=["POST"]),
        Route("/receipts", receipts, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/media/{key}", media),
        WebSocketRoute("/ws", ws),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    widget = _widget_source()
    state: Any = app.state
    state.backend = adapter
    state.widget = widget
    state.widget_etag = '"' + hashlib.sha256(widget).hexdigest()[:16] + '"'
    return app
