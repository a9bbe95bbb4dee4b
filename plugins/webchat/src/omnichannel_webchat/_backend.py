"""What the web chat's endpoints need of their adapter, and the helpers they share.

The endpoints (:mod:`._endpoints`, :mod:`._uploads`, :mod:`._socket`) are module-level
functions; each finds its adapter on the app (``app.state.backend``, set by
:func:`~._server.build_app`). They see it through :class:`ChatBackend`, a Protocol, so that the
adapter module (which builds the app) and the endpoint modules never import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from omnichannel_sdk import AdapterContext, AdapterServices, Message, Part, SignatureError, TokenBucket

from ._registry import Connection, Registry
from ._session import Session
from ._wire import wire_message

__all__ = ["ChatBackend", "ChatSettings", "ack", "allowed", "backend", "config", "error",
           "json_object", "prechat_missing", "session_of", "wire"]


class ChatSettings(Protocol):
    """The web chat settings the endpoints read."""

    @property
    def session_ttl(self) -> float:
        """Seconds a visitor session lasts after its last use."""

    @property
    def upload_max_bytes(self) -> int:
        """Largest upload."""

    @property
    def upload_types(self) -> list[str]:
        """MIME types a visitor may upload."""

    @property
    def max_visitor_text(self) -> int:
        """Longest visitor message."""

    @property
    def prechat(self) -> Literal["off", "optional", "required"]:
        """The pre-chat form."""

    @property
    def title(self) -> str | None:
        """Title of the chat panel."""

    @property
    def history_limit(self) -> int:
        """How many past messages a resumed session shows."""

    @property
    def allowed_origins(self) -> list[str]:
        """Pages that may embed the widget."""


class ChatBackend(Protocol):
    """The adapter as the endpoints use it (the :class:`~.WebchatAdapter` is one)."""

    @property
    def settings(self) -> ChatSettings:
        """The channel's settings."""

    @property
    def context(self) -> AdapterContext:
        """The adapter's context (its key, blobs)."""

    @property
    def services(self) -> AdapterServices:
        """The hub's services for this channel."""

    @property
    def base_url(self) -> str:
        """Where the gateway serves this channel's app."""

    @property
    def registry(self) -> Registry:
        """Open visitor connections of this process."""

    @property
    def limiter(self) -> TokenBucket:
        """Per-visitor (and per-address) rate limit."""

    def origin_allowed(self, origin: str | None, own_origin: str | None = None) -> bool:
        """Whether a page of ``origin`` may use the chat."""

    def issue(self, session: Session) -> str:
        """A signed token for ``session``."""

    def check_token(self, token: str | None) -> Session:
        """The session of a token (:class:`SignatureError` when invalid)."""

    async def history(self, visitor: str, after: str | None = None) -> list[Message]:
        """The visitor's recent messages."""

    async def conversation_of(self, visitor: str) -> str | None:
        """The visitor's latest conversation id."""

    async def receive(self, session: Session, client_id: Any, text: Any = None,
                      parts: Sequence[Part] = (), *, origin: Connection | None = None,
                      metadata: dict[str, Any] | None = None) -> Message | None:
        """Store a visitor message."""

    async def stored(self, session: Session, client_id: Any) -> Message | None:
        """The stored message of a visitor's client id."""

    async def visitor_typing(self, session: Session, on: bool) -> None:
        """Tell agent inboxes the visitor is (not) typing."""

    async def mark(self, session: Session, ids: Sequence[Any], status: str) -> int:
        """Apply the widget's receipts."""

    def signals_since(self, conversation_id: str, cursor: float | None) -> list[dict[str, Any]]:
        """Recent signal frames for a long-poll."""


def backend(conn: HTTPConnection) -> ChatBackend:
    """The adapter of the app serving ``conn``."""
    return cast(ChatBackend, conn.app.state.backend)


def _own_origin(conn: HTTPConnection) -> str:
    scheme = conn.url.scheme.replace("ws", "http")
    host = conn.headers.get("host", "")
    return f"{scheme}://{host}"


def allowed(conn: HTTPConnection) -> bool:
    """Whether the page ``conn`` comes from may use the chat."""
    return backend(conn).origin_allowed(conn.headers.get("origin"), _own_origin(conn))


def error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """A JSON error answer (``Retry-After`` when ``retry_after`` is given)."""
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


async def json_object(request: Request) -> dict[str, Any] | JSONResponse:
    """The request body as a JSON object (an empty body is ``{}``), or the 400 to answer."""
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return error(400, "json", "body is not JSON")
    if not isinstance(data, dict):
        return error(400, "json", "body is not an object")
    return data


async def session_of(request: Request) -> Session | JSONResponse:
    """The visitor session of an HTTP request, or the 403 / 401 to answer."""
    if not allowed(request):
        return error(403, "origin", "this page may not use the chat")
    try:
        return backend(request).check_token(request.headers.get("x-webchat-session"))
    except SignatureError:
        return error(401, "session", "no valid session: start a new one")


def config(chat: ChatBackend) -> dict[str, Any]:
    """The widget's configuration, sent with a new or resumed session."""
    settings = chat.settings
    return {"prechat": settings.prechat, "title": settings.title,
            "upload_max": settings.upload_max_bytes, "upload_types": settings.upload_types,
            "max_text": settings.max_visitor_text}


def prechat_missing(chat: ChatBackend, session: Session) -> bool:
    """Whether the required pre-chat form is still to be filled in."""
    return chat.settings.prechat == "required" and not (session.name and session.email)


def wire(chat: ChatBackend, message: Any) -> dict[str, Any]:
    """``message`` in the widget's wire format."""
    return wire_message(message, chat.base_url)


async def ack(chat: ChatBackend, session: Session, client_id: Any,
              message: Message | None) -> dict[str, Any]:
    """The ``ack`` frame of a visitor's message: its stored form; for a repeat of an id already
    stored (``message`` is ``None``), that one's, with ``"duplicate": true``."""
    if message is not None:
        return {"type": "ack", "ref": client_id, "message": wire(chat, message)}
    first = await chat.stored(session, client_id)
    return {"type": "ack", "ref": client_id, "duplicate": True,
            "message": wire(chat, first) if first is not None else None}
