"""Vendor HTTP: httpx's own transport by default (respx intercepts), bounded per vendor host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

from omnichannel_sdk import Hub
from omnichannel_sdk._config import HubSettings
from omnichannel_sdk._http import PerHostTransport, make_http_client


def test_the_default_transport_is_httpx() -> None:
    assert HubSettings().http_transport == "httpx"
    import sniffio  # httpcore retries a failed import of it on every request: a dependency

    assert sniffio.current_async_library


@pytest.mark.anyio
async def test_plain_respx_mock_intercepts_a_send_with_the_default_config(tmp_path: Path) -> None:
    # the config a user writes: no http_transport, a vendor host that does not exist
    config = {
        "omnichannel": {"store": f"sqlite:///{tmp_path}/app.db", "public_url": "https://app.test"},
        "channels": {"partner": {"adapter": "json-mapping", "secret": "k",
                                 "send_url": "https://api.vendor-that-does-not-exist.test/v1/send",
                                 "send_token": "tok-never-sent-for-real"}},
    }
    with respx.mock() as router:  # no using=, no transport argument: the plain form
        route = router.post("https://api.vendor-that-does-not-exist.test/v1/send").mock(
            return_value=httpx.Response(200, json={"id": "vendor-1"}))
        async with Hub.from_config(config) as hub:
            conversation = await hub.start_conversation("partner", "+14155550100")
            sent = await asyncio.wait_for(hub.send(conversation.id, text="Hello", wait=True), 20)
    assert route.call_count == 1
    assert sent.status != "failed" and sent.external_id == "vendor-1"


class _Stub:
    """A loopback HTTP/1.1 server that answers after ``delay`` and counts requests in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.served = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                self.served += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: 11\r\n\r\n{\"ok\":true}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def stub() -> AsyncIterator[tuple[_Stub, str]]:
    server = _Stub(delay=0.02)
    async with server as url:
        yield server, url


@pytest.mark.anyio
async def test_requests_in_flight_to_one_host_are_bounded(stub: tuple[_Stub, str]) -> None:
    server, url = stub
    async with make_http_client("httpx", per_host=8) as client:
        answers = await asyncio.gather(*[client.post(f"{url}/send", json={"i": i}) for i in range(100)])
    assert [a.status_code for a in answers] == [200] * 100
    assert server.served == 100
    assert 1 < server.peak <= 8  # concurrent, and never more than the bound


@pytest.mark.anyio
async def test_a_streamed_response_holds_its_slot_until_closed(stub: tuple[_Stub, str]) -> None:
    _, url = stub
    transport = PerHostTransport(per_host=1)
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", f"{url}/a") as first:
            second = asyncio.ensure_future(client.get(f"{url}/b"))
            await asyncio.sleep(0.1)
            assert not second.done()  # the only slot is held by the open stream
            await first.aread()
        assert (await asyncio.wait_for(second, 5)).status_code == 200


@pytest.mark.anyio
async def test_a_failed_request_gives_its_slot_back() -> None:
    transport = PerHostTransport(per_host=1)
    async with httpx.AsyncClient(transport=transport) as client:
        with respx.mock() as router:
            router.get("https://down.test/x").mock(side_effect=httpx.ConnectError("refused"))
            router.get("https://down.test/y").mock(return_value=httpx.Response(204))
            with pytest.raises(httpx.ConnectError):
                await client.get("https://down.test/x")
            assert (await asyncio.wait_for(client.get("https://down.test/y"), 5)).status_code == 204


@pytest.mark.anyio
async def test_the_aiohttp_opt_in_carries_requests(stub: tuple[_Stub, str]) -> None:
    server, url = stub
    async with make_http_client("aiohttp") as client:
        answers = await asyncio.gather(*[client.post(f"{url}/send", json={}) for _ in range(20)])
    assert {a.status_code for a in answers} == {200} and server.served == 20


def test_the_per_host_bound_is_validated() -> None:
    from omnichannel_sdk import ConfigurationError

    with pytest.raises(ConfigurationError, match="http_max_per_host"):
        Hub.from_config({"omnichannel": {"store": "sqlite:///:memory:", "http_max_per_host": 0}})



@pytest.mark.anyio
async def test_an_origin_is_carried_by_several_small_pools(stub: tuple[_Stub, str]) -> None:
    # httpcore's per-request work grows with the square of a pool's connections: many small
    # pools carry as much at once as one big one, each request paying for a small one only
    server, url = stub
    transport = PerHostTransport(per_host=8, pool_size=2)
    async with httpx.AsyncClient(transport=transport) as client:
        answers = await asyncio.gather(*[client.post(f"{url}/send", json={"i": i}) for i in range(40)])
        [origin] = transport._origins.values()
        assert len(origin.shards) == 4 and all(s.busy == 0 for s in origin.shards)
        for shard in origin.shards:
            assert len(shard.transport._pool.connections) <= 2
    assert [a.status_code for a in answers] == [200] * 40
    assert 2 < server.peak <= 8  # more at once than one pool of 2, never past the bound


@pytest.mark.parametrize(("method", "headers", "content"), [
    ("POST", httpx.Headers({"authorization": "Basic x", "content-type": "application/x-www-form-urlencoded"}),
     b"To=%2B1&Body=hi"),
    ("post", None, b"x" * 70_000),
    ("PUT", httpx.Headers({"User-Agent": "mine", "X-A": "1", "x-a": "2"}), b"{}"),
])
def test_the_vendor_client_builds_the_request_httpx_builds(
        method: str, headers: httpx.Headers | None, content: bytes) -> None:
    from omnichannel_sdk._http import VendorClient

    client = make_http_client()
    assert isinstance(client, VendorClient)
    url = httpx.URL("https://api.vendor.test:8443/2010-04-01/Messages.json?a=1")
    for _ in range(2):  # built, then from the cache
        ours = client.build_request(method, url, content=content, headers=headers)
        theirs = httpx.AsyncClient.build_request(client, method, url, content=content,
                                                 headers=headers)
        assert ours.headers.raw == theirs.headers.raw
        assert ours.headers._list == theirs.headers._list  # the lower-cased keys too
        assert type(ours.stream) is type(theirs.stream) and ours.read() == theirs.read()
        assert (ours.method, ours.url, ours.content, ours.extensions) == (
            theirs.method, theirs.url, theirs.content, theirs.extensions)


def test_the_vendor_client_takes_its_short_way_for_the_usual_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_http_client()
    url = httpx.URL("https://api.vendor.test/send")
    given = httpx.Headers({"b": "2"})
    assert "x-client" not in client.build_request("POST", url, content=b"a", headers=given).headers
    client.headers["x-client"] = "1"  # the client's or the given headers changing is seen
    given["c"] = "3"
    ours = client.build_request("POST", url, content=b"a", headers=given)
    assert (ours.headers["x-client"], ours.headers["c"]) == ("1", "3")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("httpx's build_request was used")

    monkeypatch.setattr(httpx.AsyncClient, "build_request", refuse)
    assert client.build_request("POST", url, content=b"ab").headers["content-length"] == "2"
    with pytest.raises(AssertionError):  # a header httpx adds itself: httpx's own way
        client.build_request("POST", url, content=b"a", headers=httpx.Headers({"Host": "h"}))
    with pytest.raises(AssertionError):  # a string URL, json, params: httpx's own way
        client.build_request("POST", "https://api.vendor.test/send", content=b"a")


def test_the_vendor_client_sees_every_change_between_two_calls() -> None:
    """The previous call's prefix is reused only for the same origin and unchanged headers."""
    client = make_http_client()
    url = httpx.URL("https://api.vendor.test/send")
    given = httpx.Headers({"b": "2"})

    def same() -> None:
        ours = client.build_request("POST", url, content=b"a", headers=given)
        theirs = httpx.AsyncClient.build_request(client, "POST", url, content=b"a", headers=given)
        assert ours.headers.raw == theirs.headers.raw
        assert ours.headers._list == theirs.headers._list  # the lower-cased keys too
        assert type(ours.stream) is type(theirs.stream) and ours.read() == theirs.read()

    same()
    given["b"] = "3"  # the same length, changed in place
    same()
    client.headers["user-agent"] = "other"
    same()
    client.headers = httpx.Headers({"x-new": "1"})  # a new object
    same()
    url = httpx.URL("https://other.vendor.test/send")  # another origin
    same()
    given = httpx.Headers({"b": "3"})  # equal contents, another object
    same()
    assert client.build_request("POST", url, content=b"a").headers.get("b") is None


def test_a_cookie_put_in_the_jar_still_goes_with_the_request() -> None:
    """The short build_request is for a client without cookies: one put straight into the
    jar (the client's own jar stores none from answers) is sent as httpx sends it, and once
    it is gone again the request is the plain one."""
    from http.cookiejar import Cookie

    client = make_http_client()
    url = httpx.URL("https://api.vendor.test/send")
    client.cookies.jar.set_cookie(Cookie(
        0, "k", "v", None, False, "api.vendor.test", True, False, "/", True, False, None,
        False, None, None, {}))
    ours = client.build_request("POST", url, content=b"a")
    theirs = httpx.AsyncClient.build_request(client, "POST", url, content=b"a")
    assert ours.headers["cookie"] == "k=v" and ours.headers.raw == theirs.headers.raw
    client.cookies.jar.clear("api.vendor.test", "/", "k")  # leaves the jar's empty dicts
    assert "cookie" not in client.build_request("POST", url, content=b"a").headers
