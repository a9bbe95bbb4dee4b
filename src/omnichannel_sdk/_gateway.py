"""The webhook gateway: a plain ASGI app that answers vendors (SPEC §5).

Routes: ``POST /webhooks/{key}`` receives, ``GET /webhooks/{key}`` answers handshakes,
``/channels/{key}/…`` is handed to the adapter's own ASGI app (web chat), ``GET /healthz``
(the store and the bus answer: 200, else 503) and ``GET /metrics`` (Prometheus).
Unknown key 404, failed signature 403, body over the limit 413, store trouble 503 (the vendor
retries; nothing was acknowledged). A body that ends early (shorter than its
``Content-Length``, or cut by ``http.disconnect``) is never parsed: 400, nothing stored.

Every route kind has one body limit, enforced while the body streams in: ``max_body_bytes`` for
``/webhooks``, and for ``/channels`` what the adapter's :meth:`~ChannelAdapter.body_limit` says
(``max_channel_body_bytes`` when it says nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ._errors import NotFoundError, OmnichannelError, RetryLaterError, SignatureError
from ._metrics import CONTENT_TYPE_LATEST
from ._webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from ._adapter import ChannelAdapter
    from ._bus import EventBus
    from ._config import HubSettings
    from ._metrics import HubMetrics
    from ._store import SqlStore

__all__ = ["Gateway", "GatewayHost"]

log = logging.getLogger("omnichannel_sdk.gateway")

Scope = dict[str, Any]


class _TooLarge(Exception):
    pass


class _Truncated(Exception):
    pass


class GatewayHost(Protocol):
    """What the gateway needs of the hub (the Hub is one; a Protocol, so that the gateway
    ``hub.asgi()`` builds never imports the hub)."""

    @property
    def settings(self) -> HubSettings:
        """Body limits."""

    @property
    def metrics(self) -> HubMetrics:
        """What ``/metrics`` serves."""

    @property
    def storage(self) -> SqlStore:
        """Checked by ``/healthz``."""

    @property
    def bus(self) -> EventBus:
        """Checked by ``/healthz``."""

    @property
    def adapters(self) -> Mapping[str, ChannelAdapter]:
        """Channel key → adapter."""

    @property
    def is_open(self) -> bool:
        """Whether the hub is open."""

    def request_url(self, channel_key: str, query_string: str = "") -> str:
        """The URL a vendor signs."""

    async def handle_webhook(self, channel_key: str, request: WebhookRequest, *,
                             trusted: bool = False) -> WebhookResponse:
        """The inbound pipeline."""

    async def open(self) -> None:
        """Open the hub (ASGI lifespan)."""

    async def close(self) -> None:
        """Close the hub (ASGI lifespan)."""


class Gateway:
    """ASGI application serving a hub's webhooks. Build it with ``hub.asgi()``."""

    def __init__(self, hub: GatewayHost, *, lifespan: bool = True) -> None:
        self.hub = hub
        self.lifespan = lifespan
        self.max_body = hub.settings.max_body_bytes
        self._opened_hub = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path.startswith("/channels/"):
            await self._channel_app(path, scope, receive, send)
            return
        if kind != "http":
            return
        if path.startswith("/webhooks/"):
            response = await self._webhook(path[len("/webhooks/"):], scope, receive)
        elif path == "/healthz":
            response = await self._health()
        elif path == "/metrics":
            body = await self.hub.metrics.exposition(self.hub.storage)
            response = WebhookResponse(200, body, CONTENT_TYPE_LATEST)
        else:
            response = _error(404, "not found")
        await _respond(send, response)

    async def _health(self) -> WebhookResponse:
        checks: dict[str, str] = {}
        if not self.hub.is_open:
            checks["hub"] = "not open"
        try:
            await self.hub.storage.schema_version()
            checks["store"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; type only (no DSN)
            checks["store"] = f"failed: {type(exc).__name__}"
        checks["bus"] = await self.hub.bus.check() or "ok"
        healthy = all(v == "ok" for k, v in checks.items() if k != "hub") and self.hub.is_open
        return WebhookResponse(200 if healthy else 503, orjson.dumps({"ok": healthy, **checks}),
                               "application/json")

    async def _webhook(self, key: str, scope: Scope, receive: Any) -> WebhookResponse:
        metrics = self.hub.metrics
        if not key or "/" in key or key not in self.hub.adapters:
            metrics.record_webhook(None, "unknown_channel")
            return _error(404, f"unknown channel {key!r}" if key and "/" not in key else "not found")
        method = scope["method"]
        if method not in ("POST", "GET", "HEAD"):
            metrics.record_webhook(key, "method_not_allowed")
            return _error(405, "method not allowed")
        # decoded and lower-cased once, into the dict the request keeps (the last value of a
        # repeated name wins, as WebhookRequest's own constructor has it)
        raw_headers = scope["headers"]
        if not isinstance(raw_headers, list | tuple):  # ASGI allows any iterable: read it once
            raw_headers = list(raw_headers)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        try:
            declared = _declared_length(headers, raw_headers, self.max_body)
            first = await receive()
            # a body in one message (nearly every webhook): no coroutine to read the rest
            body = (_whole_body(first, declared, self.max_body)
                    if first["type"] == "http.request" and not first.get("more_body", False)
                    else await _read_body(receive, declared, self.max_body, first))
        except _TooLarge:
            metrics.record_webhook(key, "too_large")
            return _error(413, f"body larger than {self.max_body} bytes")
        except _Truncated as exc:
            # the vendor's connection dropped mid-body: parsing the cut copy would store it and
            # then de-duplicate the vendor's full retry away
            log.warning("ignored an incomplete request on %s: %s", key, exc)
            return _error(400, "incomplete body")
        query = scope.get("query_string", b"").decode("latin-1")
        request = WebhookRequest._from_lowered(method, self.hub.request_url(key, query), headers,
                                               body)
        try:
            response = await self.hub.handle_webhook(key, request)
        except SignatureError as exc:
            log.warning("refused a request on %s: %s", key, exc.detail)
            metrics.record_webhook(key, "refused")
            return _error(403, "signature verification failed")
        except NotFoundError:
            metrics.record_webhook(None, "unknown_channel")
            return _error(404, f"unknown channel {key!r}")
        except RetryLaterError as exc:
            log.warning("asked the vendor to retry a request on %s: %s", key, exc)
            metrics.record_webhook(key, "retry_later")
            response = _error(503, "not ready: deliver again later")
            if exc.retry_after is not None:
                response.headers["retry-after"] = str(max(1, round(exc.retry_after)))
            return response
        except OmnichannelError as exc:
            log.error("could not store a request on %s: %s", key, exc)
            metrics.record_webhook(key, "error")
            return _error(503, "temporarily unable to store the request")
        except Exception:  # a bug before verification finished: the vendor retries, never a 500
            log.exception("could not handle a request on %s", key)
            metrics.record_webhook(key, "error")
            return _error(503, "temporarily unable to handle the request")
        outcome = ("method_not_allowed" if response.status == 405
                   else "handshake" if method != "POST" else "accepted")
        metrics.record_webhook(key, outcome)
        return response

    async def _channel_app(self, path: str, scope: Scope, receive: Any, send: Any) -> None:
        key, _, rest = path[len("/channels/"):].partition("/")
        adapter = self.hub.adapters.get(key)
        app = adapter.asgi_app() if adapter is not None else None
        if app is None:
            if scope["type"] == "http":
                await _respond(send, _error(404, "not found"))
            else:
                await send({"type": "websocket.close", "code": 4404})
            return
        prefix = scope.get("root_path", "") + f"/channels/{key}"
        child = dict(scope, root_path=prefix, path=prefix + "/" + rest)
        if scope["type"] != "http":
            await app(child, receive, send)
            return
        assert adapter is not None
        limit = adapter.body_limit("/" + rest) or self.hub.settings.max_channel_body_bytes
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                await _respond(send, _error(413, f"body larger than {limit} bytes"))
                return
        limited = _LimitedBody(receive, send, limit)
        try:
            await app(child, limited.receive, limited.send)
        except Exception:
            if not limited.exceeded:
                raise
            # the app saw its body cut off (Starlette raises ClientDisconnect): answered below
        if limited.exceeded and not limited.started:
            await _respond(send, _error(413, f"body larger than {limit} bytes"))

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.lifespan and not self.hub.is_open:
                        await self.hub.open()
                        self._opened_hub = True
                except Exception as exc:  # noqa: BLE001 - reported to the server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._opened_hub:
                    await self.hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


class _LimitedBody:
    """Streams a channel app's request body, cutting it off past ``limit``: the app then sees
    ``http.disconnect`` and its answer is dropped for the gateway's 413."""

    def __init__(self, receive: Any, send: Any, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.size = 0
        self.exceeded = False
        self.started = False

    async def receive(self) -> dict[str, Any]:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message: dict[str, Any] = await self._receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.limit:
                self.exceeded = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if self.exceeded and not self.started:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _declared_length(headers: dict[str, str], raw_headers: Any, limit: int) -> int | None:
    """The ``Content-Length`` a request declares (the last numeric one), raising
    :class:`_TooLarge` when any numeric one is over ``limit``."""
    if len(headers) == len(raw_headers):  # no name repeated: the dict holds the only one
        value = headers.get("content-length")
        if value is None or not value.isdigit():
            return None
        if int(value) > limit:
            raise _TooLarge
        return int(value)
    declared: int | None = None
    for name, raw in raw_headers:
        text = raw.decode("latin-1")
        if name.decode("latin-1").lower() == "content-length" and text.isdigit():
            declared = int(text)
            if declared > limit:
                raise _TooLarge
    return declared


def _whole_body(message: dict[str, Any], declared: int | None, limit: int) -> bytes:
    """The body of a request whose first ``http.request`` message is its last, checked as
    :func:`_read_body` checks it."""
    body = message.get("body", b"")
    if type(body) is not bytes:  # bytes, as joining the chunks makes them
        body = bytes(body)
    if len(body) > limit:
        raise _TooLarge
    if declared is not None and len(body) != declared:
        raise _Truncated(f"{len(body)} bytes of a declared {declared}")
    return body


async def _read_body(receive: Any, declared: int | None, limit: int,
                     message: dict[str, Any]) -> bytes:
    """The body, from the first ASGI ``message`` (already received) on."""
    chunks: list[bytes] = []
    size = 0
    more = True
    first = True
    while more:
        if not first:
            message = await receive()
        first = False
        if message["type"] == "http.disconnect":
            raise _Truncated(f"connection closed after {size} bytes")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    if declared is not None and size != declared:
        raise _Truncated(f"{size} bytes of a declared {declared}")
    return b"".join(chunks)


def _error(status: int, detail: str) -> WebhookResponse:
    return WebhookResponse(status, orjson.dumps({"error": detail}), "application/json")


async def _respond(send: Any, response: WebhookResponse) -> None:
    headers = [(b"content-type", response.content_type.encode("latin-1")),
               (b"content-length", str(len(response.body)).encode("latin-1"))]
    if response.headers:  # (nearly every answer has none: no generator to run)
        headers.extend((k.encode("latin-1"), v.encode("latin-1"))
                       for k, v in response.headers.items())
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
