"""A raw HTTP/1.1 loopback server for the transport tests: each test writes the bytes its
case needs (keep-alive, hang-ups, resets, slow or huge answers), which a real framework would
not let it do."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and its ``Content-Length`` body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, (await reader.readexactly(length) if length else b"")


def answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    """An HTTP/1.1 answer with ``body``, its length and the ``extra`` header lines."""
    return b"\r\n".join([b"HTTP/1.1 " + status, b"content-length: %d" % len(body), *extra,
                         b"", body])


class LoopbackServer:
    """A loopback server running ``handler`` for each connection; counts connections.
    ``async with`` gives its port."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.context = context
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            return  # the client went away or refused the certificate: what those tests want
        finally:
            writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


# ------------------------------------------------------------------ the cases both transports meet

async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request, never answer."""
    await read_request(reader)
    await asyncio.sleep(5)


async def reset_mid_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer part of a declared body, then reset the connection."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    await writer.drain()
    writer.transport.abort()


async def slow_then_fast(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Keep-alive ``ok`` answers; a request whose body is ``slow`` waits 5 s first."""
    while True:
        _, body = await read_request(reader)
        if body == b"slow":
            await asyncio.sleep(5)
        writer.write(answer(b"ok"))
        await writer.drain()


def echo_big(upload: bytes, download: bytes) -> Handler:
    """Keep-alive: each request's body must be ``upload``; each answer is ``download``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            assert body == upload
            writer.write(answer(download))
            await writer.drain()

    return handle
