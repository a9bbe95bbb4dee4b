"""``VendorClient.send``'s plain way (no auth, no redirect to follow, no event hooks, read
whole) goes to the transport without httpx's auth flow and redirect loop: the response it
hands over is the one httpx's own ``send`` gives, over either transport, and so are its
errors and its log line; anything else still goes through httpx."""

from __future__ import annotations

import asyncio
import datetime
import gc
import gzip
import logging
import weakref
from typing import Any

import httpx
import pytest

from omnichannel_sdk._http import make_http_client

from .loopback_server import LoopbackServer, answer, read_request

pytestmark = pytest.mark.anyio

_ANSWERS = {
    "/json": answer(b'{"sid": "SM1"}', b"content-type: application/json"),
    "/empty": answer(b"", status=b"204 No Content"),
    "/gzip": answer(gzip.compress(b"packed"), b"content-encoding: gzip"),
    "/moved": answer(b"", b"location: /json", status=b"302 Found"),
    "/huge": answer(b"x" * 300_000),  # past the aiohttp transport's eager limit: streamed
}
_TRANSPORTS = ["httpx", pytest.param("aiohttp", marks=pytest.mark.skipif(
    not __import__("importlib").util.find_spec("aiohttp"), reason="no aiohttp"))]


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head, _ = await read_request(reader)
        writer.write(_ANSWERS[head.split(b" ")[1].decode()])
        await writer.drain()


def _seen(response: httpx.Response) -> dict[str, Any]:
    """What a caller can see of a read response."""
    return {"status": response.status_code, "headers": response.headers.multi_items(),
            "raw headers": response.headers._list,
            "content": response.content, "closed": response.is_closed,
            "consumed": response.is_stream_consumed,
            "downloaded": response.num_bytes_downloaded, "history": response.history,
            "elapsed": type(response.elapsed), "reason": response.reason_phrase,
            "http_version": response.http_version, "encoding": response.encoding,
            "request": response.request.url,
            "next": response.next_request.url if response.next_request else None,
            "bytes": [c for c in response.iter_bytes()]}


@pytest.fixture
def through_httpx(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests httpx's own auth handling saw."""
    calls: list[str] = []
    handling = httpx.AsyncClient._send_handling_auth

    async def counted(self: httpx.AsyncClient, request: httpx.Request, *args: Any,
                      **kwargs: Any) -> httpx.Response:
        calls.append(request.url.path)
        return await handling(self, request, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "_send_handling_auth", counted)
    return calls


@pytest.mark.parametrize("transport", _TRANSPORTS)
async def test_the_plain_way_gives_the_response_httpx_gives(
        transport: str, through_httpx: list[str], caplog: pytest.LogCaptureFixture) -> None:
    async with LoopbackServer(_serve) as port, make_http_client(transport) as client:
        for path in _ANSWERS:
            url = httpx.URL(f"http://127.0.0.1:{port}{path}")
            with caplog.at_level(logging.INFO, logger="httpx"):
                caplog.clear()
                ours = await client.send(client.build_request("POST", url, content=b"x"))
                mine = [r.getMessage() for r in caplog.records]
                caplog.clear()
                theirs = await httpx.AsyncClient.send(
                    client, client.build_request("POST", url, content=b"x"))
                assert mine == [r.getMessage() for r in caplog.records] and len(mine) == 1
            assert _seen(ours) == _seen(theirs), path
            assert isinstance(ours.elapsed, datetime.timedelta)
        assert (await client.post(f"http://127.0.0.1:{port}/gzip")).content == b"packed"
    assert through_httpx == list(_ANSWERS)  # only httpx's own sends went through its layers


@pytest.mark.parametrize("transport", _TRANSPORTS)
async def test_auth_redirects_and_hooks_still_go_through_httpx(
        transport: str, through_httpx: list[str]) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    async with LoopbackServer(_serve) as port:
        base = f"http://127.0.0.1:{port}"
        async with make_http_client(transport) as client:
            followed = await client.post(f"{base}/moved", follow_redirects=True)
            assert followed.json() == {"sid": "SM1"} and len(followed.history) == 1
            await client.post(f"{base}/json", auth=("user", "secret"))
            await client.post(f"http://user:secret@127.0.0.1:{port}/json")
            async with client.stream("POST", f"{base}/json") as streamed:
                assert await streamed.aread() == b'{"sid": "SM1"}'
        async with make_http_client(transport, event_hooks={"request": [hook]}) as client:
            await client.post(f"{base}/json")
    assert through_httpx == ["/moved", "/json", "/json", "/json", "/json"]
    assert seen == ["/json"]


@pytest.mark.parametrize("transport", _TRANSPORTS)
async def test_a_transport_error_carries_its_request(transport: str) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens there now
    async with make_http_client(transport) as client:
        request = client.build_request("POST", httpx.URL(f"http://127.0.0.1:{port}/x"),
                                       content=b"x")
        with pytest.raises(httpx.ConnectError) as caught:
            await client.send(request)
        assert caught.value.request is request
    with pytest.raises(RuntimeError, match="closed"):
        await client.send(request)  # a closed client refuses, as httpx's does


@pytest.mark.parametrize("transport", _TRANSPORTS)
async def test_a_plain_response_is_freed_without_the_garbage_collector(transport: str) -> None:
    """No cycle between the response and a stream wrapper, over either transport."""
    async with LoopbackServer(_serve) as port, make_http_client(transport) as client:
        for path in ("/json", "/huge"):
            url = httpx.URL(f"http://127.0.0.1:{port}{path}")
            response = await client.send(client.build_request("POST", url, content=b"x"))
            assert response.content.startswith(b'{"sid"' if path == "/json" else b"xxx")
            gc.disable()
            try:
                gone = weakref.ref(response)
                del response
                assert gone() is None, path
            finally:
                gc.enable()


def test_the_aiohttp_transport_sends_each_requests_own_headers() -> None:
    """Its pairs are kept per set of headers: a call with other headers (or only another
    Content-Length) gets its own, as aiohttp's pairs of what httpx holds."""
    pytest.importorskip("aiohttp")
    from omnichannel_sdk._aiohttp_transport import AiohttpTransport

    transport = AiohttpTransport()
    client = make_http_client()
    url = httpx.URL("https://api.vendor.test/send")
    given = httpx.Headers({"authorization": "Basic x", "X-Tag": "\u00e9t\u00e9"}, encoding="utf-8")
    for body in (b"a", b"a", b"abc"):
        headers = client.build_request("POST", url, content=body, headers=given).headers
        assert transport._headers(headers) == [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]
    other = client.build_request("POST", url, content=b"a").headers
    assert ("authorization", "Basic x") not in transport._headers(other)


async def test_an_httpx_without_the_private_names_gets_httpx_own_send(
        monkeypatch: pytest.MonkeyPatch, through_httpx: list[str]) -> None:
    """The short path reads httpx's private client state: a release that renamed it makes
    every client send the long way, with the same answer, instead of failing mid-send."""
    from omnichannel_sdk import _http

    assert make_http_client()._plain  # this httpx has them
    monkeypatch.setattr(_http, "_CLIENT_INTERNALS", (*_http._CLIENT_INTERNALS, "_renamed"))
    async with LoopbackServer(_serve) as port, make_http_client() as client:
        assert not client._plain
        response = await client.post(f"http://127.0.0.1:{port}/json")
        assert response.json() == {"sid": "SM1"} and response.is_closed
    monkeypatch.setattr(_http, "ClientState", None)
    assert not make_http_client()._plain
    assert through_httpx == ["/json"]
