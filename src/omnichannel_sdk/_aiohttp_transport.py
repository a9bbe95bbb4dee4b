"""The ``http_transport = "aiohttp"`` opt-in: an httpx transport over aiohttp's pool.

Adapters keep httpx's API (SPEC §4); only the bytes move through aiohttp. This maps an
:class:`httpx.Request` to one aiohttp call with as few objects as it can (the headers as
aiohttp's own pairs, the URL taken as already encoded, one timeout object per set of timeouts),
and a small answer (a declared length up to :data:`EAGER_LIMIT`) is read at once into a plain
:class:`httpx.Response`, so the connection goes back to the pool before the caller reads it.
Larger or unsized answers stream, so a media download's size cap still stops a huge body.

aiohttp's errors become the httpx errors the outbox classifies (:func:`map_error`): a request
that cannot have reached the vendor (refused, DNS, TLS handshake, connect or pool timeout) is
an :class:`httpx.ConnectError` / :class:`httpx.ConnectTimeout`; one that may have (the server
hung up or reset after we wrote, a read timeout, a short body) is a read or protocol error, so
the send is reconciled rather than assumed unsent. (``httpx-aiohttp``, used before, called a
server that hung up mid-request a connect timeout.)
"""

from __future__ import annotations

import io
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import aiohttp
import httpx
from yarl import URL

__all__ = ["EAGER_BODY", "EAGER_LIMIT", "AiohttpTransport", "map_error"]

EAGER_LIMIT = 256 * 1024
"""Answers declaring at most this many bytes are read whole before the response is returned."""

EAGER_BODY = "_omnichannel_eager_body"
"""Where an answer read at once keeps its body on the :class:`httpx.Response` (in its
``__dict__``), for :meth:`~omnichannel_sdk._http.VendorClient.send` to hand over without
httpx's chain of async generators."""

_CHUNK = 64 * 1024
_LARGE = 1024 * 1024  # aiohttp warns about bytes bodies larger than this: a file-like instead
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


def map_error(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one (``None``: not aiohttp's network trouble)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # connect, or waiting for the pool
        return httpx.ConnectTimeout(str(exc) or "connect timeout")
    if isinstance(exc, aiohttp.ServerTimeoutError):  # sock_read: the request went out
        return httpx.ReadTimeout(str(exc) or "read timeout")
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(str(exc))
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch)):
        return httpx.ConnectError(str(exc))  # refused, DNS, TLS: nothing was sent
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError,
                        aiohttp.ClientResponseError)):
        return httpx.RemoteProtocolError(str(exc) or type(exc).__name__)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(str(exc))
    if isinstance(exc, aiohttp.ClientConnectionError):  # reset, broken pipe: after connecting
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return None


def _raise_mapped(exc: aiohttp.ClientError) -> NoReturn:
    """Raise the httpx error for ``exc`` (``exc`` itself if none maps)."""
    mapped = map_error(exc)
    if mapped is None:  # pragma: no cover - every ClientError maps
        raise exc
    raise mapped from exc


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        _raise_mapped(exc)


class _Streamed(httpx.AsyncByteStream):
    """A large or unsized answer's body, read as the caller asks; closing it frees the
    connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over one aiohttp session (made on first use, inside the
    running loop): ``max_connections`` in its pool, idle ones kept ``keepalive_expiry``
    seconds, certificates checked with httpx's default context. No cookies are kept."""

    def __init__(self, *, max_connections: int = 200, keepalive_expiry: float = 5.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.ssl_context = ssl_context or httpx.create_ssl_context()
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}
        self._header_lists: dict[tuple[tuple[bytes, bytes, bytes], ...], list[tuple[str, str]]] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.max_connections,
                                         keepalive_timeout=self.keepalive_expiry,
                                         ssl=self.ssl_context)
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
            # the headers are httpx's (the client's defaults included): aiohttp adds none
            skip_auto_headers=_NO_AUTO_HEADERS)
        return self._session

    def _timeout(self, given: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (given.get("connect"), given.get("read"), given.get("pool"))
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) > 64:  # callers making up new timeouts: no unbounded cache
                self._timeouts.clear()
            # httpx's pool timeout bounds the wait for a connection too: aiohttp's "connect"
            found = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, sock_connect=key[0], sock_read=key[1], connect=key[2])
        return found

    def _headers(self, given: httpx.Headers) -> list[tuple[str, str]]:
        """``given`` as aiohttp's pairs (never changed: aiohttp copies them), kept per set of
        headers (a vendor's calls repeat theirs, but for Content-Length)."""
        key = tuple(given._list)
        found = self._header_lists.get(key)
        if found is None:
            if len(self._header_lists) >= 256:  # headers made up per call: no unbounded cache
                self._header_lists.clear()
            found = self._header_lists[key] = [(k.decode("latin-1"), v.decode("latin-1"))
                                               for k, _, v in key]
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over aiohttp; the answer as an :class:`httpx.Response`."""
        session = self._session or self._open()
        headers = self._headers(request.headers)
        data: Any
        try:
            data = request.content or None
            if data is not None and len(data) > _LARGE:
                data = io.BytesIO(data)
        except httpx.RequestNotRead:  # a streamed upload: aiohttp frames it itself
            data = request.stream
            headers = [h for h in headers if h[0].lower() != "transfer-encoding"]
        extensions = request.extensions
        text = str(request.url)
        url = self._urls.get(text)
        if url is None:
            if len(self._urls) >= 256:  # many URLs (media downloads): no unbounded cache
                self._urls.clear()
            url = URL(text, encoded=True)  # httpx encoded it already
            if url.raw_user is not None:  # httpx made them the Authorization header (aiohttp
                url = url.with_user(None)  # refuses both at once)
            self._urls[text] = url
        body: bytes | None = None
        try:  # (a plain try rather than a context manager: this runs on every vendor call)
            response = await session.request(
                request.method, url, headers=headers, data=data, allow_redirects=False,
                compress=None, timeout=self._timeout(extensions.get("timeout", {})),
                server_hostname=extensions.get("sni_hostname"))
            try:
                length = response.content_length
                if length is not None and length <= EAGER_LIMIT:
                    body = await response.read()
                    stream: httpx.AsyncByteStream = httpx.ByteStream(body)
                    response.release()
                else:
                    stream = _Streamed(response)
            except BaseException:
                response.release()
                raise
        except aiohttp.ClientError as exc:
            _raise_mapped(exc)
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1")
        answer = httpx.Response(response.status, stream=stream, extensions=extensions)
        # the entries httpx.Headers(raw_headers) makes of aiohttp's bytes pairs, without its
        # per-header normalising (bytes are kept as they are)
        answer.headers._list = [(k, k.lower(), v) for k, v in response.raw_headers]
        if body is not None:
            answer.__dict__[EAGER_BODY] = body
        return answer

    async def aclose(self) -> None:
        """Close the session and its connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
