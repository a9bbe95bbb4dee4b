"""The hub's one HTTP client for vendor calls.

httpx is the API adapters use, and by default httpx's own transport carries the requests, so a
plain ``respx.mock()`` intercepts every vendor call in an embedder's tests (SPEC §4). httpcore's
pool does not scale with its size (its bookkeeping grows with the square of the connections it
holds, see docs/performance.md), so the default transport carries each vendor origin's
requests over several small pools and bounds the requests in flight to each: a request waits
on a semaphore (cheap) instead of in httpcore's queue (expensive). The pools move their bytes
with :class:`~omnichannel_sdk._netbackend.AsyncioBackend` instead of httpcore's anyio one and
share one TLS context.
``http_transport = "aiohttp"`` (the ``[aiohttp]`` extra) carries requests over aiohttp's pool
instead (:mod:`~omnichannel_sdk._aiohttp_transport`): faster under high outbound
concurrency, but invisible to a plain ``respx.mock()``.

The client keeps no cookies: vendor APIs are server-to-server, one client serves every channel
and tenant, and a shared jar would carry one vendor session's cookies into another's requests
(parsing ``Set-Cookie`` on every answer was also a tenth of a send's CPU).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx

try:  # read by VendorClient's short path (httpx's own send is used without it)
    from httpx._client import ClientState
except ImportError:  # pragma: no cover - an httpx that moved its private names
    ClientState = None  # type: ignore[assignment,misc]

from ._errors import ConfigurationError
from ._extras import missing_extra
from ._netbackend import AsyncioBackend

_EAGER_BODY = "_omnichannel_eager_body"
"""See :data:`omnichannel_sdk._aiohttp_transport.EAGER_BODY` (the same name; that module
needs aiohttp, this one must not)."""

__all__ = ["NoCookies", "PerHostTransport", "VendorClient", "make_http_client"]

USER_AGENT = "omnichannel-sdk"

_log = logging.getLogger("httpx")  # httpx's own logger: the same "HTTP Request" lines

DEFAULT_PER_HOST = 100
"""Requests in flight to one vendor origin with httpx's transport."""

DEFAULT_POOL_SIZE = 4
"""Connections per httpcore pool with httpx's transport (an origin gets as many pools as its
requests in flight need; see :class:`PerHostTransport`). 4 measured best at 100 in flight once
the pools shared one TLS context: 0.85x the aiohttp opt-in's rate against 0.61x for pools of 8
and 0.71x for pools of 2 (docs/performance.md)."""


class NoCookies(httpx.Cookies):
    """A cookie jar that never stores anything."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore ``Set-Cookie``."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Refuse to store cookies."""


class _Shard:
    """One small httpcore pool of an origin and how many requests it carries now."""

    __slots__ = ("busy", "transport")

    def __init__(self, transport: httpx.AsyncHTTPTransport) -> None:
        self.transport = transport
        self.busy = 0


class _Origin:
    """The shards of one origin and the bound on its requests in flight."""

    __slots__ = ("gate", "shards")

    def __init__(self, per_host: int) -> None:
        self.gate = asyncio.Semaphore(per_host)
        self.shards: list[_Shard] = []


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its origin's slot back when it is closed (the connection is
    busy until then)."""

    def __init__(self, inner: httpx.AsyncByteStream, origin: _Origin, shard: _Shard) -> None:
        self._inner = inner
        self._slot: tuple[_Origin, _Shard] | None = (origin, shard)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            slot, self._slot = self._slot, None
            if slot is not None:
                _release(*slot)


def _release(origin: _Origin, shard: _Shard) -> None:
    shard.busy -= 1
    origin.gate.release()


class PerHostTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, at most ``per_host`` requests in flight to each origin (the rest
    wait their turn in order), carried by small connection pools of ``pool_size`` each.

    httpcore's pool does work on every request and every response that grows with the square
    of its connections (it rescans them all for each one, polling each idle socket), so one
    pool of 32 costs ≈ 5 ms of CPU per request and one of 100 ≈ 15 ms. Several pools of 4
    cost as little per request as one of 4 and together carry as many requests at once as a
    big one. A request goes to the first pool with a free connection, so a quiet origin uses
    the first pool only and the others' connections expire.

    respx patches the pools underneath, so ``respx.mock()`` still intercepts every request.
    """

    def __init__(self, *, per_host: int = DEFAULT_PER_HOST, pool_size: int = DEFAULT_POOL_SIZE,
                 keepalive_expiry: float = 30.0) -> None:
        if per_host < 1:
            raise ConfigurationError("must be at least 1", field="omnichannel.http_max_per_host")
        if pool_size < 1:
            raise ConfigurationError("must be at least 1", field="omnichannel.http_pool_size")
        self.per_host = per_host
        self.pool_size = min(pool_size, per_host)
        self._limits = httpx.Limits(max_connections=self.pool_size,
                                    max_keepalive_connections=self.pool_size,
                                    keepalive_expiry=keepalive_expiry)
        self._origins: dict[tuple[bytes, bytes, int | None], _Origin] = {}
        self._ssl_context: ssl.SSLContext | None = None
        self._backend = AsyncioBackend()

    def _pool(self) -> httpx.AsyncHTTPTransport:
        """A new small pool: httpx's transport over an httpcore pool on the asyncio backend.

        Every pool shares one TLS context: httpx would make one per transport, loading the CA
        bundle again each time (≈ 30 ms of CPU a pool). httpx's own (``verify=True``, the
        environment's ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured) made once.
        """
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        limits = self._limits
        transport = httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=limits)
        # httpx builds its pool without a way to choose the network backend: the same pool,
        # built the same way, on ours (respx patches this class, so it still intercepts)
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl_context, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=self._backend)
        return transport

    def _origin(self, url: httpx.URL) -> _Origin:
        key = (url.raw_scheme, url.raw_host, url.port)
        found = self._origins.get(key)
        if found is None:
            found = self._origins[key] = _Origin(self.per_host)
        return found

    def _shard(self, origin: _Origin) -> _Shard:
        """The first shard with a free connection (one exists: the gate admits no more
        requests than the shards together hold), a new one when all are full."""
        for shard in origin.shards:
            if shard.busy < self.pool_size:
                break
        else:
            shard = _Shard(self._pool())
            origin.shards.append(shard)
        shard.busy += 1
        return shard

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through one of its origin's pools once a slot is free."""
        origin = self._origin(request.url)
        await origin.gate.acquire()
        shard = self._shard(origin)
        try:
            response = await shard.transport.handle_async_request(request)
        except BaseException:
            _release(origin, shard)
            raise
        if not isinstance(response.stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
            _release(origin, shard)
            return response
        # the same response, its body wrapped (a second httpx.Response would copy the headers)
        response.stream = _ReleasingStream(response.stream, origin, shard)
        return response

    async def aclose(self) -> None:
        """Close every origin's pools."""
        origins, self._origins = self._origins, {}
        for origin in origins.values():
            for shard in origin.shards:
                await shard.transport.aclose()


class VendorClient(httpx.AsyncClient):
    """httpx's client; the usual vendor call (an :class:`httpx.URL`, a bytes body, headers as
    an :class:`httpx.Headers` or none) is built with fewer objects.

    httpx merges the client's headers into each request's, then copies and rescans them to add
    ``Host`` and ``Content-Length`` (≈ a tenth of a send's CPU). Here the merged headers with
    ``Host`` are kept per origin and headers given, and only ``Content-Length`` is added: the
    same :class:`httpx.Request`, header for header and in the same order, as
    :meth:`httpx.AsyncClient.build_request` makes. Anything else goes through httpx's own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain = _has_httpx_internals(self)
        """Whether :meth:`send`'s short path can run: it reads and sets httpx's private
        client state (written against httpx 0.29); an httpx without those names gets
        httpx's own send, never an AttributeError in the middle of a vendor call."""
        self._prefixes: dict[tuple[Any, ...], httpx.Headers | None] = {}
        self._last: tuple[Any, ...] | None = None
        """The previous call's origin, client and call headers (objects and contents) and
        prefix."""

    def build_request(self, method: str, url: httpx.URL | str, *, content: Any = None,
                      data: Any = None, files: Any = None, json: Any = None,
                      params: Any = None, headers: Any = None, cookies: Any = None,
                      timeout: Any = httpx.USE_CLIENT_DEFAULT,
                      extensions: Any = None) -> httpx.Request:
        """See :meth:`httpx.AsyncClient.build_request`."""
        if (type(url) is httpx.URL and type(content) is bytes and content and data is None
                and files is None and json is None and params is None and cookies is None
                and extensions is None and timeout is httpx.USE_CLIENT_DEFAULT
                and (headers is None or type(headers) is httpx.Headers)
                and url.is_absolute_url and not self.params
                # an empty jar's dict of domains says "no cookies" without iterating the jar
                # (what Cookies.__bool__ does); a jar emptied cookie by cookie asks it
                and (not getattr(self._cookies.jar, "_cookies", True) or not self.cookies)):
            prefix = self._prefix(url, headers)
            if prefix is not None:
                # httpx copies a Headers as it is (no per-header normalising): only
                # Content-Length is added, last, as httpx's own build_request adds it (the
                # entry Headers.__setitem__ makes), and the body is there to read
                # (request.content) as after httpx's read(); set here rather than by
                # Request's own copies of the headers and extensions
                request = httpx.Request(method, url, stream=httpx.ByteStream(content))
                request.headers._list = [*prefix._list, (b"Content-Length", b"content-length",
                                                         b"%d" % len(content))]
                request.extensions = {"timeout": self.timeout.as_dict()}
                request._content = content
                return request
        return super().build_request(
            method, url, content=content, data=data, files=files, json=json, params=params,
            headers=headers, cookies=cookies, timeout=timeout, extensions=extensions)

    async def send(self, request: httpx.Request, *, stream: bool = False,
                   auth: Any = httpx.USE_CLIENT_DEFAULT,
                   follow_redirects: Any = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
        """See :meth:`httpx.AsyncClient.send`.

        The usual vendor call (read whole, no auth, no redirect to follow, no event hooks)
        goes to the transport directly (:meth:`_send_plain`): httpx's auth flow (an async
        generator per request), its redirect loop and its stream wrapper only pass it
        through. Anything else goes through httpx's own."""
        if (self._plain and not stream and auth is httpx.USE_CLIENT_DEFAULT
                and self._auth is None
                and (follow_redirects is False or (follow_redirects is httpx.USE_CLIENT_DEFAULT
                                                   and not self.follow_redirects))
                and not self._event_hooks["request"] and not self._event_hooks["response"]
                and not request.url.userinfo and self._state is not ClientState.CLOSED):
            return await self._send_plain(request)
        response = await super().send(request, stream=True, auth=auth,
                                      follow_redirects=follow_redirects)
        body = response.__dict__.pop(_EAGER_BODY, None)
        if stream:
            return response
        try:
            if (type(body) is not bytes or response.is_stream_consumed or response.is_closed
                    or "content-encoding" in response.headers):  # httpx decodes those
                await response.aread()
            else:
                _read_eagerly(response, body)
                await response.aclose()  # as aread's end: closed, elapsed set
                # httpx's BoundAsyncStream and the response refer to each other: a cycle
                # only the garbage collector frees (11 objects a send, and with them the
                # collections a backlog of sends pays for). A consumed, closed response never
                # reads its stream again; a plain one over the same bytes breaks the cycle
                response.stream = httpx.ByteStream(body)
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _send_plain(self, request: httpx.Request) -> httpx.Response:
        """What :meth:`httpx.AsyncClient.send` does for a request without auth, redirects to
        follow or event hooks, read whole: the same response (request, history, a redirect's
        ``next_request``, default encoding, content, bytes downloaded, closed, ``elapsed``),
        the same ``HTTP Request`` log line, transport errors carrying the request."""
        self._state = ClientState.OPENED
        self._set_timeout(request)
        transport = self._transport_for_url(request.url)
        start = time.perf_counter()
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise RuntimeError("Attempted to send a sync request with an AsyncClient instance.")
        try:
            response = await transport.handle_async_request(request)
        except httpx.RequestError as exc:  # as httpx's request_context
            exc.request = request
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)  # as httpx's
        response.request = request
        self._cookies.extract_cookies(response)
        response.default_encoding = self._default_encoding
        if _log.isEnabledFor(logging.INFO):  # (httpx works out the arguments regardless)
            _log.info('HTTP Request: %s %s "%s %d %s"', request.method, request.url,
                      response.http_version, response.status_code, response.reason_phrase)
        body = response.__dict__.pop(_EAGER_BODY, None)
        try:
            response.history = []
            if 300 <= response.status_code < 400 and response.has_redirect_location:
                # not followed: the next request is said
                response.next_request = self._build_redirect_request(request, response)
            if (type(body) is bytes and type(response.stream) is httpx.ByteStream
                    and not response.is_stream_consumed and not response.is_closed
                    and "content-encoding" not in response.headers):
                # the transport read it whole into a plain stream (closing it does nothing):
                # no stream wrapper, so no cycle between it and the response either
                _read_eagerly(response, body)
                response.is_closed = True
                response.elapsed = datetime.timedelta(seconds=time.perf_counter() - start)
            else:
                response.stream = _Timed(response.stream, response, start)
                await response.aread()
                # read and closed: as above, no cycle left behind (the body is its content)
                response.stream = httpx.ByteStream(response.content)
        except BaseException:
            await response.aclose()
            raise
        return response

    def _prefix(self, url: httpx.URL, headers: httpx.Headers | None) -> httpx.Headers | None:
        """``Host`` and the merged headers (``None``: they set what httpx would add itself)."""
        last = self._last
        # the usual vendor call repeats the previous one's origin and header objects: their
        # contents compared as they are (a C-level list comparison, so a change is seen)
        # spares building the key
        if (last is not None and last[0] == url.netloc and last[1] is self._headers
                and last[2] == self._headers._list and last[3] is headers
                and (headers is None or last[4] == headers._list)):
            kept: httpx.Headers | None = last[5]
            return kept
        prefix = self._prefix_for(url, headers)
        self._last = (url.netloc, self._headers, list(self._headers._list), headers,
                      list(headers._list) if headers is not None else None, prefix)
        return prefix

    def _prefix_for(self, url: httpx.URL, headers: httpx.Headers | None) -> httpx.Headers | None:
        """See :meth:`_prefix` (kept per origin and headers)."""
        own = tuple(self.headers.raw)
        given = tuple(headers.raw) if headers is not None else ()
        key = (url.netloc, own, given)
        cache = self._prefixes
        if key in cache:
            return cache[key]
        merged = self._merge_headers(headers)
        assert isinstance(merged, httpx.Headers)
        prefix: httpx.Headers | None = None
        if not any(k in merged for k in ("host", "content-length", "transfer-encoding")):
            prefix = httpx.Headers([(b"Host", url.netloc), *merged.raw])
        if len(cache) >= 256:  # callers making up headers per call: no unbounded cache
            cache.clear()
        cache[key] = prefix
        return prefix


_CLIENT_INTERNALS = ("_auth", "_event_hooks", "_state", "_default_encoding", "_cookies",
                     "_set_timeout", "_transport_for_url", "_build_redirect_request")
_RESPONSE_INTERNALS = ("_content", "_num_bytes_downloaded", "is_stream_consumed", "is_closed")


def _has_httpx_internals(client: httpx.AsyncClient) -> bool:
    """Whether ``client`` (a new one) and httpx's Response have the private names
    :meth:`VendorClient._send_plain` uses: checked once per client, so that an httpx release
    that renames them falls back to httpx's own send instead of breaking sends."""
    if ClientState is None or not hasattr(ClientState, "OPENED"):
        return False
    if not all(hasattr(client, name) for name in _CLIENT_INTERNALS):
        return False
    probe = httpx.Response(200, content=b"")
    return all(hasattr(probe, name) for name in _RESPONSE_INTERNALS)


def _read_eagerly(response: httpx.Response, body: bytes) -> None:
    """Leave ``response`` as :meth:`httpx.Response.aread` would for a body already read."""
    response.is_stream_consumed = True
    response._num_bytes_downloaded = len(body)
    response._content = body


class _Timed(httpx.AsyncByteStream):
    """A response body that sets the response's ``elapsed`` when closed (httpx's own
    ``BoundAsyncStream``)."""

    def __init__(self, inner: httpx.AsyncByteStream, response: httpx.Response,
                 start: float) -> None:
        self._inner = inner
        self._response = response
        self._start = start

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)
        await self._inner.aclose()


def make_http_client(transport: str = "httpx", *, timeout: float = 20.0,
                     per_host: int = DEFAULT_PER_HOST, pool_size: int = DEFAULT_POOL_SIZE,
                     max_connections: int = 200,
                     event_hooks: dict[str, list[Any]] | None = None) -> httpx.AsyncClient:
    """A cookie-less client with sane timeouts, carried by ``transport``.

    ``"httpx"`` (default): :class:`PerHostTransport`, ``per_host`` requests in flight per
    vendor origin over pools of ``pool_size`` connections. ``"aiohttp"``: aiohttp's pool of
    ``max_connections`` (needs the ``[aiohttp]`` extra).
    """
    headers = {"user-agent": USER_AGENT}
    carrier: httpx.AsyncBaseTransport
    if transport == "aiohttp":
        try:
            from ._aiohttp_transport import AiohttpTransport
        except ImportError as exc:
            raise missing_extra("aiohttp", 'http_transport = "aiohttp"', exc) from None
        carrier = AiohttpTransport(max_connections=max_connections)
    else:
        carrier = PerHostTransport(per_host=per_host, pool_size=pool_size)
    client = VendorClient(transport=carrier, timeout=timeout, headers=headers,
                          event_hooks=event_hooks)
    client._cookies = NoCookies()  # the public setter copies into a normal jar
    return client
