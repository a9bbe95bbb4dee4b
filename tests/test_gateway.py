"""The webhook gateway through ASGI: statuses, storage, dead letters, limits, mounting."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from omnichannel_sdk import Hub, MessageReceived
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


async def test_inbound_message_is_stored_and_published(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    events = hub.events()
    waiter = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)
    body, headers = signed([{"id": "m1", "from": "alice", "text": "hello"}])
    response = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 200
    [conversation] = await hub.store.list_conversations()
    [message] = await hub.store.list_messages(conversation.id)
    assert message.text == "hello" and message.direction == "inbound" and message.status == "received"
    assert message.sender.handle == "alice" and message.external_id == "m1"
    assert message.adapter == "fake" and message.channel_key == "fake"
    seen = [await asyncio.wait_for(waiter, 2)]
    while not isinstance(seen[-1], MessageReceived):
        seen.append(await asyncio.wait_for(events.__anext__(), 2))
    assert seen[-1].message.id == message.id
    await events.aclose()


async def test_retry_stores_nothing_new(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    body, headers = signed([{"id": "dup", "from": "bob", "text": "x"}])
    first = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    again = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    assert first.status_code == again.status_code == 200 and first.content == again.content
    [conversation] = await hub.store.list_conversations()
    assert len(await hub.store.list_messages(conversation.id)) == 1


async def test_concurrent_retries_store_once(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    body, headers = signed([{"id": "race", "from": "bob", "text": "x"}])
    answers = await asyncio.gather(*[webhook_client.post("/webhooks/fake", content=body, headers=headers)
                                     for _ in range(25)])
    assert {a.status_code for a in answers} == {200}
    [conversation] = await hub.store.list_conversations()
    assert len(await hub.store.list_messages(conversation.id)) == 1


async def test_unknown_channel_is_404(webhook_client: httpx.AsyncClient) -> None:
    assert (await webhook_client.post("/webhooks/nope", content=b"{}")).status_code == 404
    assert (await webhook_client.get("/elsewhere")).status_code == 404


async def test_bad_signature_is_403_and_nothing_stored(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    body, headers = signed([{"id": "m", "from": "x", "text": "y"}], secret="wrong")
    assert (await webhook_client.post("/webhooks/fake", content=body, headers=headers)).status_code == 403
    assert (await webhook_client.post("/webhooks/fake", content=body)).status_code == 403
    assert await hub.store.list_conversations() == []
    assert await hub.store.list_dead_letters() == []


async def test_unparseable_is_dead_lettered_and_replayable(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    body, headers = signed(b'{"events": "not a list"}')
    response = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 200
    [letter] = await hub.store.list_dead_letters()
    assert letter.adapter == "fake" and "events" in letter.error and letter.raw_id
    raw = await hub.store.get_raw(letter.raw_id)
    assert raw and raw.body == body
    report = await hub.replay()
    assert report.failed and not report.replayed  # still broken: stays dead-lettered
    assert len(await hub.store.list_dead_letters()) == 1


async def test_batch_item_failure_dead_letters_only_that_item(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    body, headers = signed([{"id": "ok1", "from": "a", "text": "fine"}, {"from": "no id"},
                            {"id": "ok2", "from": "a", "text": "also fine"}])
    assert (await webhook_client.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
    [conversation] = await hub.store.list_conversations()
    assert [m.external_id for m in await hub.store.list_messages(conversation.id)] == ["ok1", "ok2"]
    [letter] = await hub.store.list_dead_letters()
    assert await hub.store.dead_letter_fragment(letter.id) == {"from": "no id"}


async def test_body_limit_is_413(omni_config: dict, register_plugin: list) -> None:
    omni_config["omnichannel"]["max_body_bytes"] = 100
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            body, headers = signed([{"id": "big", "from": "a", "text": "x" * 200}])
            assert (await client.post("/webhooks/fake", content=body, headers=headers)).status_code == 413
            assert await hub.store.list_conversations() == []


async def test_signatures_use_public_url_wherever_mounted(hub: Hub) -> None:
    # mounted under /integrations, the vendor still signs public_url + /webhooks/{key}
    outer = Starlette(routes=[Mount("/integrations", app=hub.asgi(lifespan=False))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:9000") as client:
        body, headers = signed([{"id": "mnt", "from": "a", "text": "x"}])
        response = await client.post("/integrations/webhooks/fake", content=body, headers=headers)
        assert response.status_code == 200
        assert (await client.get("/integrations/healthz")).json() == {"ok": True, "store": "ok", "bus": "ok"}
    assert hub.request_url("fake", "a=1") == f"{PUBLIC_URL}/webhooks/fake?a=1"


async def test_get_without_handshake_is_405(webhook_client: httpx.AsyncClient) -> None:
    assert (await webhook_client.get("/webhooks/fake")).status_code == 405
    assert (await webhook_client.put("/webhooks/fake", content=b"")).status_code == 405


async def test_store_failure_is_503_so_the_vendor_retries(hub: Hub, webhook_client: httpx.AsyncClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from omnichannel_sdk import StoreUnavailableError

    async def broken(*args, **kwargs):
        raise StoreUnavailableError("disk full")

    monkeypatch.setattr(hub.store, "ingest", broken)
    body, headers = signed([{"id": "m", "from": "a", "text": "x"}])
    answer = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
    assert await hub.store.list_dead_letters() == []


async def test_lifespan_opens_and_closes_the_hub(omni_config: dict, register_plugin: list) -> None:
    hub = Hub.from_config(omni_config, plugins=register_plugin)
    app = hub.asgi()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict] = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            assert hub.is_open

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert not hub.is_open


async def test_retry_later_is_503_with_retry_after(hub: Hub, webhook_client: httpx.AsyncClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from omnichannel_sdk import RetryLaterError

    def not_yet(request):
        raise RetryLaterError("certificate on its way", retry_after=20)

    monkeypatch.setattr(hub.adapter("fake"), "verify", not_yet)
    body, headers = signed([{"id": "m", "from": "a", "text": "x"}])
    response = await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 503 and response.headers["retry-after"] == "20"
    assert await hub.store.list_conversations() == []


async def test_hub_dead_letter_keeps_the_request(hub: Hub) -> None:
    from omnichannel_sdk import WebhookRequest

    request = WebhookRequest("POST", hub.request_url("fake"), {"authorization": "Basic c2VjcmV0"}, b"payload")
    letter = await hub.dead_letter("fake", request, "lookup failed")
    raw = await hub.store.get_raw(letter.raw_id or "")
    assert raw and raw.body == b"payload" and raw.headers["authorization"] == "<redacted>"


def test_alternate_port_url() -> None:
    from omnichannel_sdk import alternate_port_url

    assert alternate_port_url("https://a.test/webhooks/k?x=1") == "https://a.test:443/webhooks/k?x=1"
    assert alternate_port_url("https://a.test:443/webhooks/k") == "https://a.test/webhooks/k"
    assert alternate_port_url("http://u:p@a.test/h") == "http://u:p@a.test:80/h"
    assert alternate_port_url("https://a.test:8443/h") is None
    assert alternate_port_url("ftp://a.test/h") is None


async def _asgi_post(app: Any, headers: Any, body: bytes) -> int:
    return await _asgi_messages(app, headers, [{"type": "http.request", "body": body,
                                                 "more_body": False}])


async def _asgi_messages(app: Any, headers: Any, messages: list[dict[str, Any]]) -> int:
    """POST to the fake channel with ``messages`` as the ASGI body (then a disconnect)."""
    queue = list(messages)
    status = 0

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({"type": "http", "method": "POST", "path": "/webhooks/fake", "root_path": "",
               "query_string": b"", "headers": headers}, receive, send)
    return status


async def test_every_declared_content_length_is_checked_whatever_its_case(
        omni_config: dict, register_plugin: list) -> None:
    omni_config["omnichannel"]["max_body_bytes"] = 100
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        app = hub.asgi(lifespan=False)
        body, signed_headers = signed([{"id": "cl", "from": "a", "text": "x"}])
        raw = [(k.encode(), v.encode()) for k, v in signed_headers.items()]
        # the same name twice, in two cases: the larger one over the limit is refused
        assert await _asgi_post(app, [*raw, (b"Content-Length", b"999"),
                                      (b"content-length", str(len(body)).encode())], body) == 413
        # the last numeric one is the declared length: a body of another size is cut, 400
        assert await _asgi_post(app, [*raw, (b"content-length", str(len(body)).encode()),
                                      (b"Content-Length", b"3")], body) == 400
        # headers as any iterable (ASGI allows it), read once
        assert await _asgi_post(app, iter([*raw, (b"Content-Length", str(len(body)).encode())]),
                                body) == 200
        assert len(await hub.store.list_conversations()) == 1


@pytest.mark.parametrize(("url", "items"), [
    ("https://hub.example.com/webhooks/sms", []),
    ("https://hub.example.com/webhooks/sms?", []),
    ("https://hub.example.com/webhooks/sms?a=1&b=&a=2", [("a", "1"), ("b", ""), ("a", "2")]),
    ("https://hub.example.com/webhooks/sms#frag?x=1", []),
    ("https://hub.example.com/webhooks/sms?bodySHA256=ab#f", [("bodySHA256", "ab")]),
])
def test_request_query_is_the_urls_query(url: str, items: list[tuple[str, str]]) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from omnichannel_sdk import WebhookRequest

    request = WebhookRequest("POST", url)
    assert request.query_items == items == parse_qsl(urlsplit(url).query, keep_blank_values=True)
    assert request.query == dict(reversed(items))


async def test_a_body_in_one_message_is_checked_as_one_in_chunks(
        omni_config: dict, register_plugin: list) -> None:
    # the gateway reads a one-message body without its streaming loop: every answer must be
    # the one the loop gives for the same bytes in several messages
    omni_config["omnichannel"]["max_body_bytes"] = 200
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        app = hub.asgi(lifespan=False)

        async def post(headers: Any, messages: list[dict[str, Any]]) -> int:
            return await _asgi_messages(app, headers, messages)

        def split(body: bytes) -> list[dict[str, Any]]:
            half = len(body) // 2
            return [{"type": "http.request", "body": body[:half], "more_body": True},
                    {"type": "http.request", "body": body[half:], "more_body": False}]

        results = []
        for n, (declared, extra) in enumerate([(None, b""), ("exact", b""), ("3", b""),
                                               (None, b" " * 300), ("exact", b" " * 300)]):
            body, signed_headers = signed([{"id": f"one-{n}", "from": "a", "text": "x"}])
            body += extra
            raw = [(k.encode(), v.encode()) for k, v in signed_headers.items()
                   if k.lower() != "content-length"]
            if declared is not None:
                raw.append((b"content-length",
                            str(len(body)).encode() if declared == "exact" else declared.encode()))
            one = await post(raw, [{"type": "http.request", "body": bytearray(body),
                                    "more_body": False}])
            body2, signed2 = signed([{"id": f"two-{n}", "from": "a", "text": "x"}])
            body2 += extra
            raw2 = [(k.encode(), v.encode()) for k, v in signed2.items()
                    if k.lower() != "content-length"]
            if declared is not None:
                raw2.append((b"content-length",
                             str(len(body2)).encode() if declared == "exact" else declared.encode()))
            results.append((one, await post(raw2, split(body2))))
        assert results == [(200, 200), (200, 200), (400, 400), (413, 413), (413, 413)]
        stored = [m for c in await hub.store.list_conversations()
                  for m in await hub.store.list_messages(c.id)]
        assert sorted(m.external_id for m in stored) == ["one-0", "one-1", "two-0", "two-1"]
