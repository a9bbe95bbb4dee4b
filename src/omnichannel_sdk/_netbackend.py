"""An asyncio-native network backend for httpcore's pools.

httpcore reaches the network through an ``AsyncNetworkBackend``; its default goes through
anyio, which wraps every read and write in a cancel scope (``anyio.fail_after``), asks sniffio
which event loop runs several times per call, yields to the loop on every write, switches the
socket's reading on and off around every read (two ``epoll_ctl`` calls) and builds a dict of
every socket attribute each time httpcore asks whether an idle connection was closed. On the
hub's outbound path that was about a third of a request's CPU (docs/performance.md).

:class:`AsyncioBackend` does the same work on asyncio directly: a ``Protocol`` buffers what
arrives, a read that finds data returns it without waiting, a wait is one future with one
``call_later`` timer for its timeout, and a write only waits when the kernel did not take all
the bytes (the write buffer limit is 0, as anyio sets it, so a write timeout still means the
bytes did not leave). It only changes how bytes move: httpcore's pool, connection and HTTP/1.1
state machine above it are the same objects, so ``respx.mock()`` (which patches the pool)
intercepts exactly as before. The hub runs on asyncio only, so there is no trio branch.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import httpcore

__all__ = ["AsyncioBackend"]

_HIGH_WATER = 256 * 1024
"""Bytes buffered from a connection before its reading is paused (until they are read)."""

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Protocol(asyncio.Protocol):
    """What a connection received, and whether it may write (asyncio's callbacks)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.tls = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's: no isinstance check
        self.transport = transport = cast(asyncio.Transport, transport)
        # writes wait until the kernel has every byte (anyio's setting): a write timeout
        # then means what it says
        transport.set_write_buffer_limits(0)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        # keep the write side open, as anyio does (httpcore closes the stream); TLS cannot
        return not self.tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until the next callback, or ``TimeoutError`` after ``timeout`` seconds."""
        waiter = self.waiter = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()


class _Stream(httpcore.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._closed = False
        self._poller: Any = None  # select.poll on the socket, made when first asked

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        while not protocol.chunks:
            if self._closed:
                raise httpcore.ReadError("the connection is closed")
            if protocol.error is not None:
                raise httpcore.ReadError(str(protocol.error)) from protocol.error
            if protocol.eof or protocol.lost:
                return b""
            try:
                await protocol.wait(timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading from the vendor") from None
        chunks = protocol.chunks
        data = chunks.popleft()
        if len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            chunks.appendleft(rest)
        else:
            while chunks and len(data) + len(chunks[0]) <= max_bytes:
                data += chunks.popleft()
        protocol.buffered -= len(data)
        if protocol.reading_paused and protocol.buffered <= _HIGH_WATER // 2:
            protocol.reading_paused = False
            self._transport.resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        self._check_writable()
        self._transport.write(buffer)
        while protocol.writing_paused:
            try:
                await protocol.wait(timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing to the vendor") from None
            self._check_writable()

    def _check_writable(self) -> None:
        if self._closed:
            raise httpcore.WriteError("the connection is closed")
        error = self._protocol.error
        if error is not None:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        # as anyio: no TLS close_notify, the socket is dropped (httpcore closes a connection
        # only when it will not use it again)
        self._closed = True
        self._transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        protocol = self._protocol
        try:
            async with asyncio.timeout(timeout):
                transport = await protocol.loop.start_tls(
                    self._transport, protocol, ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            await self.aclose()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # pragma: no cover - only for a transport closed meanwhile
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        # asyncio's TLS layer pauses writing at ``size >= high``, so a limit of 0 would pause
        # it for good: 1 and 0 make a write wait until every byte is encrypted and handed on
        transport.set_write_buffer_limits(high=1, low=0)
        protocol.transport = transport
        protocol.tls = True
        protocol.writing_paused = False  # the raw transport's flow control is TLS's now
        return _Stream(transport, protocol)

    def _kernel_readable(self) -> bool:
        """Whether the kernel holds bytes (or the end) asyncio has not read yet: they arrived
        after the loop last polled. One ``poll`` object per connection, registered once (the
        socket stays open until ``connection_lost`` has set ``lost``, checked first)."""
        poller = self._poller
        if poller is None:
            sock = self._transport.get_extra_info("socket")
            fd = -1 if sock is None else sock.fileno()
            if fd < 0:
                return True
            if not hasattr(select, "poll"):  # Windows: no poll, select takes sockets
                return bool(select.select([fd], [], [], 0)[0])
            poller = self._poller = select.poll()
            poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "is_readable":
            # httpcore asks this of an idle connection before it reuses one: anything received
            # (an early answer, the end, an error) means it must not be reused
            protocol = self._protocol
            if protocol.chunks or protocol.eof or protocol.lost or self._closed:
                return True
            return self._kernel_readable()
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's transports, without anyio in between."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[_SocketOption] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        # 250 ms between address families, RFC 8305's delay (anyio's connect_tcp too); uvloop
        # (`omnichannel serve`) has no such option and tries the addresses in turn
        eyeballs: dict[str, Any] = (
            {"happy_eyeballs_delay": 0.25} if isinstance(loop, asyncio.BaseEventLoop) else {})
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    lambda: _Protocol(loop), host, port, local_addr=local, **eyeballs)
        except TimeoutError:  # before OSError: TimeoutError is one
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self._stream(transport, protocol, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[_SocketOption] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_unix_connection(lambda: _Protocol(loop), path)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {path}") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self._stream(transport, protocol, socket_options)

    @staticmethod
    def _stream(transport: asyncio.BaseTransport, protocol: _Protocol,
                socket_options: Iterable[_SocketOption] | None) -> _Stream:
        transport = cast(asyncio.Transport, transport)
        if socket_options:
            sock = transport.get_extra_info("socket")
            for option in socket_options:
                sock.setsockopt(*option)
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
