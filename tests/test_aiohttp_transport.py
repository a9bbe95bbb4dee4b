"""The aiohttp opt-in's transport against real loopback servers: what httpx's own does, and the
errors the outbox classifies (a call that cannot have reached the vendor against one that may)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytest.importorskip("aiohttp")

from omnichannel_sdk._aiohttp_transport import EAGER_LIMIT, AiohttpTransport
from omnichannel_sdk._attempts import may_have_arrived
from omnichannel_sdk._error_mapping import transport_error
from omnichannel_sdk._http import make_http_client
from omnichannel_sdk.testing import LocalCA

from . import loopback_server as loopback
from .loopback_server import LoopbackServer as _Server
from .loopback_server import answer
from .loopback_server import read_request as _read_request


def _answer(body: bytes, *extra: bytes) -> bytes:
    return answer(body, *extra, status=b"201 Created")


heads: list[bytes] = []


async def _keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head, body = await _read_request(reader)
        heads.append(head)
        writer.write(_answer(b"got %d" % len(body), b"x-vendor: yes", b"set-cookie: s=1"))
        await writer.drain()


def _client(timeout: float = 20.0) -> httpx.AsyncClient:
    client = make_http_client("aiohttp", timeout=timeout)
    assert isinstance(client._transport, AiohttpTransport)
    return client


@pytest.mark.anyio
async def test_a_request_and_its_answer_go_through_unchanged() -> None:
    heads.clear()
    server = _Server(_keep_alive)
    async with server as port, _client() as client:
        for i in range(3):
            answer = await client.post(f"http://127.0.0.1:{port}/a%2Fb?q=1%202",
                                       content=b"x" * i, headers={"X-Mine": "v"})
            assert answer.status_code == 201 and answer.reason_phrase == "Created"
            assert answer.content == b"got %d" % i and answer.headers["x-vendor"] == "yes"
            assert answer.http_version == "HTTP/1.1"
        assert not client.cookies  # a vendor's cookie is never kept
    assert server.connections == 1  # kept alive
    first = heads[0].lower()
    # the URL as httpx encoded it (not re-quoted), httpx's headers, the body's length
    assert first.startswith(b"post /a%2fb?q=1%202 http/1.1")
    assert b"x-mine: v" in first and b"user-agent: omnichannel-sdk" in first
    assert b"content-length: 0" in first and b"cookie" not in first


@pytest.mark.anyio
async def test_large_bodies_both_ways_and_a_large_answer_streams() -> None:
    upload = bytes(range(256)) * 16384  # 4 MiB
    download = b"z" * (3 * 1024 * 1024 + 7)

    async with _Server(loopback.echo_big(upload, download)) as port, _client() as client:
        answer = await client.post(f"http://127.0.0.1:{port}/", content=upload)
        assert answer.content == download
        async with client.stream("POST", f"http://127.0.0.1:{port}/", content=upload) as streamed:
            assert len(download) > EAGER_LIMIT
            assert not isinstance(streamed.stream, httpx.ByteStream)  # not read up front
            got = b"".join([chunk async for chunk in streamed.aiter_bytes()])
        assert got == download


@pytest.mark.anyio
async def test_a_streamed_upload_and_a_chunked_answer() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:size]
            if size == 0:
                break
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        await writer.drain()

    async def parts() -> object:
        for piece in (b"one,", b"two"):
            yield piece

    async with _Server(chunked) as port, _client() as client:
        answer = await client.post(f"http://127.0.0.1:{port}/", content=parts())
        assert answer.status_code == 200 and answer.content == b"one,two"


def _classified(exc: httpx.HTTPError) -> tuple[type[httpx.HTTPError], bool]:
    return type(exc), may_have_arrived(_cause(transport_error("x", exc, "calling"), exc))


def _cause(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.anyio
async def test_a_refused_connection_cannot_have_arrived() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with _client() as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get(f"http://127.0.0.1:{port}/")
    assert _classified(caught.value) == (httpx.ConnectError, False)


@pytest.mark.anyio
async def test_a_vendor_that_does_not_answer_is_a_read_timeout_that_may_have_arrived() -> None:
    async with _Server(loopback.silent) as port, _client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.post(f"http://127.0.0.1:{port}/", content=b"send")
    assert _classified(caught.value) == (httpx.ReadTimeout, True)


@pytest.mark.anyio
async def test_a_slow_connect_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohappyeyeballs

    async def hang(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(5)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", hang)  # aiohttp connects so
    async with _client(timeout=0.2) as client:
        with pytest.raises(httpx.ConnectTimeout) as caught:
            await client.get("http://127.0.0.1:9/")
    assert _classified(caught.value) == (httpx.ConnectTimeout, False)


@pytest.mark.anyio
async def test_a_server_that_hangs_up_after_the_request_may_have_got_it() -> None:
    # httpx-aiohttp called this a connect timeout, so the outbox took it as never sent
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    async with _Server(hang_up) as port, _client() as client:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await client.post(f"http://127.0.0.1:{port}/", content=b"send")
    assert _classified(caught.value) == (httpx.RemoteProtocolError, True)


@pytest.mark.anyio
async def test_a_reset_mid_answer_is_an_error_not_a_short_body() -> None:
    async with _Server(loopback.reset_mid_answer) as port, _client() as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)) as caught:
            await client.get(f"http://127.0.0.1:{port}/")
    assert _classified(caught.value)[1] is True


@pytest.mark.anyio
async def test_cancelling_a_request_leaves_the_pool_usable() -> None:
    async with _Server(loopback.slow_then_fast) as port, _client() as client:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.post(url, content=b"slow"), 0.2)
        assert (await asyncio.wait_for(client.post(url, content=b"fast"), 5)).content == b"ok"


@pytest.mark.anyio
async def test_https_with_a_trusted_ca(local_ca: LocalCA) -> None:
    server = _Server(_keep_alive, local_ca.server_context())
    transport = AiohttpTransport(ssl_context=local_ca.client_context())
    async with server as port, httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            answer = await client.post(f"https://localhost:{port}/", content=b"u" * 1_000_000)
            assert answer.content == b"got 1000000"
    assert server.connections == 1


@pytest.mark.anyio
async def test_the_opt_in_verifies_certificates(local_ca: LocalCA) -> None:
    async with _Server(_keep_alive, local_ca.server_context()) as port, _client() as client:
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate") as caught:
            await client.get(f"https://localhost:{port}/")
    assert _classified(caught.value) == (httpx.ConnectError, False)
