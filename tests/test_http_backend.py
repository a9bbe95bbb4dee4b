"""The default transport's asyncio network backend under httpcore's pools: what anyio's did."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
import pytest
import respx

from omnichannel_sdk._http import PerHostTransport, make_http_client
from omnichannel_sdk._netbackend import AsyncioBackend
from omnichannel_sdk.testing import LocalCA

from . import loopback_server as loopback
from .loopback_server import LoopbackServer as _Server
from .loopback_server import answer as _answer
from .loopback_server import read_request as _read_request


async def _keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        _, body = await _read_request(reader)
        writer.write(_answer(b"got %d" % len(body)))
        await writer.drain()


def _pool(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=PerHostTransport(**kwargs))


@pytest.mark.anyio
async def test_the_default_pools_run_on_the_asyncio_backend() -> None:
    async with _Server(_keep_alive) as port, make_http_client() as client:
        answer = await client.post(f"http://127.0.0.1:{port}/x", content=b"hello")
        assert answer.status_code == 200 and answer.content == b"got 5"
        transport = client._transport
        assert isinstance(transport, PerHostTransport)
        [origin] = transport._origins.values()
        pool = origin.shards[0].transport._pool
        assert isinstance(pool, httpcore.AsyncConnectionPool)
        assert isinstance(pool._network_backend, AsyncioBackend)


@pytest.mark.anyio
async def test_a_plain_respx_mock_still_intercepts_and_no_socket_is_opened(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("respx let a request reach the network")

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", refuse)
    async with make_http_client() as client:
        with respx.mock() as router:
            route = router.post("https://api.vendor.test/send").mock(
                return_value=httpx.Response(201, json={"id": "v1"}))
            answers = await asyncio.gather(*[client.post("https://api.vendor.test/send", json={})
                                             for _ in range(20)])
    assert route.call_count == 20 and {a.status_code for a in answers} == {201}


@pytest.mark.anyio
async def test_connections_are_reused() -> None:
    server = _Server(_keep_alive)
    async with server as port, _pool(per_host=1) as client:
        for i in range(5):
            assert (await client.post(f"http://127.0.0.1:{port}/", content=b"x" * i)).content == b"got %d" % i
    assert server.connections == 1


@pytest.mark.anyio
async def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)  # answers as keep-alive, then hangs up
        writer.write(_answer(b"ok"))
        await writer.drain()

    server = _Server(once)
    async with server as port, _pool(per_host=1) as client:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{port}/")).content == b"ok"
            await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
    assert server.connections == 3


@pytest.mark.anyio
async def test_a_close_the_loop_has_not_seen_yet_is_found_in_the_kernel() -> None:
    # a plain socket as the server, so the test closes it without giving the loop a turn:
    # only the kernel knows, and an idle connection must still count as not reusable
    with socket.create_server(("127.0.0.1", 0)) as listener:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=5)
        server, _ = listener.accept()
        assert not stream.get_extra_info("is_readable")
        server.close()
        deadline = time.monotonic() + 5
        while not stream.get_extra_info("is_readable"):  # no await: the loop does not run
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert await stream.read(65536, timeout=5) == b""
        await stream.aclose()
        assert stream.get_extra_info("is_readable")


@pytest.mark.anyio
async def test_large_bodies_both_ways() -> None:
    # past the read buffer's high-water mark (reading paused and resumed) and past what the
    # kernel takes in one write (the write waits for it to drain)
    upload = bytes(range(256)) * 16384  # 4 MiB
    download = b"z" * (3 * 1024 * 1024 + 7)

    async with _Server(loopback.echo_big(upload, download)) as port, _pool(per_host=2) as client:
        for _ in range(2):
            answer = await client.post(f"http://127.0.0.1:{port}/", content=upload)
            assert answer.content == download
        async with client.stream("POST", f"http://127.0.0.1:{port}/", content=upload) as streamed:
            await asyncio.sleep(0.1)  # let the body pile up unread
            got = b"".join([chunk async for chunk in streamed.aiter_bytes()])
        assert got == download


@pytest.mark.anyio
async def test_a_vendor_that_does_not_answer_is_a_read_timeout() -> None:
    async with _Server(loopback.silent) as port, make_http_client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{port}/")


@pytest.mark.anyio
async def test_a_refused_connection_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with make_http_client() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


@pytest.mark.anyio
async def test_a_slow_connect_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def hang(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(5)

    monkeypatch.setattr(loop, "create_connection", hang)
    async with make_http_client(timeout=0.2) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("http://127.0.0.1:9/")


@pytest.mark.anyio
async def test_a_reset_mid_answer_is_an_error_not_a_short_body() -> None:
    async with _Server(loopback.reset_mid_answer) as port, make_http_client() as client:
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"http://127.0.0.1:{port}/")


@pytest.mark.anyio
async def test_cancelling_a_request_leaves_the_pool_usable() -> None:
    async with _Server(loopback.slow_then_fast) as port, _pool(per_host=1) as client:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.post(url, content=b"slow"), 0.2)
        assert (await asyncio.wait_for(client.post(url, content=b"fast"), 5)).content == b"ok"


# ------------------------------------------------------------------------------------------ TLS

@pytest.fixture
async def tls_pool(local_ca: LocalCA) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(ssl_context=local_ca.client_context(),
                                                   network_backend=AsyncioBackend())
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.mark.anyio
async def test_https_through_the_backend(local_ca: LocalCA, tls_pool: httpx.AsyncClient) -> None:
    server = _Server(_keep_alive, local_ca.server_context())
    upload = b"u" * (1024 * 1024)
    async with server as port:
        for _ in range(3):
            answer = await tls_pool.post(f"https://localhost:{port}/", content=upload)
            assert answer.content == b"got %d" % len(upload)
        stream = answer.extensions["network_stream"]
        assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("server_addr")[1] == port
    assert server.connections == 1


@pytest.mark.anyio
async def test_a_certificate_for_another_name_is_refused(local_ca: LocalCA,
                                                         tls_pool: httpx.AsyncClient) -> None:
    async with _Server(_keep_alive, local_ca.server_context()) as port:
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname"):
            await tls_pool.get(f"https://127.0.0.1:{port}/", extensions={"sni_hostname": "other.test"})


@pytest.mark.anyio
async def test_the_default_client_verifies_certificates(local_ca: LocalCA) -> None:
    async with _Server(_keep_alive, local_ca.server_context()) as port, make_http_client() as client:
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate"):
            await client.get(f"https://localhost:{port}/")


def test_the_backend_runs_on_uvloop(local_ca: LocalCA) -> None:
    # `omnichannel serve` runs on uvloop, whose create_connection has no happy-eyeballs option
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        async with _Server(_keep_alive) as port, make_http_client() as client:
            answer = await client.post(f"http://127.0.0.1:{port}/", content=b"x" * 300_000)
            assert answer.content == b"got 300000"
        transport = httpx.AsyncHTTPTransport()
        transport._pool = httpcore.AsyncConnectionPool(ssl_context=local_ca.client_context(),
                                                       network_backend=AsyncioBackend())
        async with (_Server(_keep_alive, local_ca.server_context()) as port,
                    httpx.AsyncClient(transport=transport) as tls):
            for _ in range(2):
                answer = await tls.post(f"https://localhost:{port}/", content=b"u" * 1_000_000)
                assert answer.content == b"got 1000000"

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
