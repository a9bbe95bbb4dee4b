"""``VendorClient.send``'s short way for an answer the aiohttp transport read whole: the response
it hands over is the one httpx's own ``aread`` leaves (content, bytes downloaded, closed,
``elapsed``), and anything the short way does not cover goes through httpx."""

from __future__ import annotations

import asyncio
import datetime
import gzip
from typing import Any

import httpx
import pytest

pytest.importorskip("aiohttp")

from omnichannel_sdk._http import make_http_client

from .loopback_server import LoopbackServer, answer, read_request

_ANSWERS = {
    "/json": answer(b'{"sid": "SM1"}', b"content-type: application/json"),
    "/empty": answer(b"", status=b"204 No Content"),
    "/text": answer("h\u00e9".encode(), b"content-type: text/plain; charset=utf-8"),
    "/gzip": answer(gzip.compress(b"packed"), b"content-encoding: gzip"),
}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head, _ = await read_request(reader)
        path = head.split(b" ")[1].decode()
        writer.write(_ANSWERS[path])
        await writer.drain()


def _seen(response: httpx.Response) -> dict[str, Any]:
    """What a caller can see of a read response."""
    return {"status": response.status_code, "headers": response.headers.multi_items(),
            "content": response.content, "text": response.text, "closed": response.is_closed,
            "consumed": response.is_stream_consumed,
            "downloaded": response.num_bytes_downloaded,
            "elapsed": type(response.elapsed), "reason": response.reason_phrase,
            "request": response.request.url}


@pytest.mark.anyio
async def test_an_answer_read_whole_is_the_response_httpx_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with LoopbackServer(_serve) as port, make_http_client("aiohttp") as client:
        for path in _ANSWERS:
            url = httpx.URL(f"http://127.0.0.1:{port}{path}")
            ours = await client.send(client.build_request("POST", url, content=b"x"))
            theirs = await httpx.AsyncClient.send(
                client, client.build_request("POST", url, content=b"x"))
            assert _seen(ours) == _seen(theirs), path
            assert isinstance(ours.elapsed, datetime.timedelta)
        assert (await client.post(f"http://127.0.0.1:{port}/gzip")).content == b"packed"

        # the short way is taken for the plain answers: httpx's aread is not called
        read = httpx.Response.aread

        async def counted(self: httpx.Response) -> bytes:
            calls.append(str(self.url.path))
            return await read(self)

        calls: list[str] = []
        monkeypatch.setattr(httpx.Response, "aread", counted)
        for path in _ANSWERS:
            await client.post(f"http://127.0.0.1:{port}{path}", content=b"x")
        assert calls == ["/gzip"]  # decoded by httpx


@pytest.mark.anyio
async def test_a_response_hook_that_reads_and_a_stream_still_work() -> None:
    seen: list[bytes] = []

    async def hook(response: httpx.Response) -> None:
        seen.append(await response.aread())

    async with LoopbackServer(_serve) as port, make_http_client(
            "aiohttp", event_hooks={"response": [hook]}) as client:
        response = await client.post(f"http://127.0.0.1:{port}/json", content=b"x")
        assert response.json() == {"sid": "SM1"} and seen == [b'{"sid": "SM1"}']
        assert response.num_bytes_downloaded == 14 and response.is_closed
        async with client.stream("POST", f"http://127.0.0.1:{port}/text") as streamed:
            assert await streamed.aread() == "h\u00e9".encode()  # the hook read it already
    async with LoopbackServer(_serve) as port, make_http_client("aiohttp") as client:
        async with client.stream("POST", f"http://127.0.0.1:{port}/text") as streamed:
            assert not streamed.is_closed and not streamed.is_stream_consumed
            assert b"".join([c async for c in streamed.aiter_bytes()]) == "h\u00e9".encode()


@pytest.mark.anyio
async def test_an_answer_read_whole_is_freed_without_the_garbage_collector() -> None:
    """httpx's response and its bound stream refer to each other; the short way leaves no such
    cycle, so the response goes when its last reference does (a backlog of sends otherwise
    pays for collections), and reading it again still gives its body."""
    import gc
    import weakref

    async with LoopbackServer(_serve) as port, make_http_client("aiohttp") as client:
        url = httpx.URL(f"http://127.0.0.1:{port}/json")
        ours = await client.send(client.build_request("POST", url, content=b"x"))
        theirs = await httpx.AsyncClient.send(client, client.build_request("POST", url,
                                                                           content=b"x"))
        assert [c async for c in ours.aiter_bytes()] == [b'{"sid": "SM1"}']
        assert await ours.aread() == b'{"sid": "SM1"}'
        gc.disable()
        try:
            gone, kept = weakref.ref(ours), weakref.ref(theirs)
            del ours, theirs
            assert gone() is None  # freed by its reference count
            assert kept() is not None  # httpx's own: only the collector frees it
        finally:
            gc.enable()
