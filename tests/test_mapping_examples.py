"""The shipped mappings (examples/mapping/line.toml, sunshine.toml) both ways, through the
gateway and the outbox, with the vendors faked by plain respx from their documented shapes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx

from omnichannel_sdk import ConfigurationError, Hub, Message
from omnichannel_sdk.testing import PUBLIC_URL

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "mapping"
ENV = {
    "LINE_CHANNEL_SECRET": "line-channel-secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "line-access-token",
    "SUNSHINE_WEBHOOK_SECRET": "sunshine-webhook-secret",
    "SUNSHINE_APP_ID": "5698edbf2a43bd081be982f1",
    "SUNSHINE_KEY_ID": "app_5e554e",
    "SUNSHINE_KEY_SECRET": "sunshine-key-secret",
}
LINE_USER = "U91eeaf62d901234567890123456789ab"
SUNSHINE_CONVERSATION = "c51c1c5f9f3b4e5d8e0a0b1c"


def payload(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def line_signature(body: bytes, secret: str = ENV["LINE_CHANNEL_SECRET"]) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def hub(omni_config: dict[str, Any], register_plugin: list[object],
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for example in ("line.toml", "sunshine.toml"):
        omni_config["channels"].update(tomllib.loads((EXAMPLES / example).read_text())["channels"])
    instance = Hub.from_config(omni_config, plugins=register_plugin)
    async with instance:
        yield instance


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http


async def post_line(client: httpx.AsyncClient, body: bytes, signature: str | None = None) -> httpx.Response:
    return await client.post("/webhooks/line", content=body, headers={
        "content-type": "application/json", "x-line-signature": signature or line_signature(body)})


async def post_sunshine(client: httpx.AsyncClient, body: bytes,
                        key: str = ENV["SUNSHINE_WEBHOOK_SECRET"]) -> httpx.Response:
    return await client.post("/webhooks/sunshine", content=body, headers={
        "content-type": "application/json", "x-api-key": key})


async def messages_of(hub: Hub, channel_key: str) -> list[Message]:
    found = []
    for conversation in await hub.store.list_conversations():
        if conversation.channel_key == channel_key:
            found.extend(await hub.store.list_messages(conversation.id))
    return found


# -- LINE ---------------------------------------------------------------------------------------

async def test_line_text_in_and_push_reply_out(hub: Hub, client: httpx.AsyncClient) -> None:
    assert (await post_line(client, payload("line/text.json"))).status_code == 200
    [message] = await messages_of(hub, "line")
    assert message.sender.handle == LINE_USER and message.channel == "line"
    assert message.parts[0].text == "Hello, where is my order 1042?"  # type: ignore[union-attr]
    assert message.created_at.year == 2023
    assert message.metadata["reply_token"] == "38ef843bde154d9b91c21320ffd17a0f"
    # LINE redelivers with the same webhookEventId: stored once
    assert (await post_line(client, payload("line/text.json"))).status_code == 200
    assert len(await messages_of(hub, "line")) == 1

    with respx.mock(assert_all_called=True) as vendor:
        push = vendor.post("https://api.line.me/v2/bot/message/push").mock(
            return_value=httpx.Response(200, content=payload("line/push-response.json")))
        sent = await hub.send(message.conversation_id, text="It ships **today**.")

        async def accepted() -> Message | None:
            stored = await hub.store.get_message(sent.id)
            return stored if stored is not None and stored.external_id else None

        stored = await eventually(accepted)
    request = push.calls.last.request
    assert request.headers["authorization"] == "Bearer line-access-token"
    uuid.UUID(request.headers["x-line-retry-key"])  # LINE wants a UUID here
    body = orjson.loads(request.content)
    assert body["to"] == LINE_USER
    assert [m["type"] for m in body["messages"]] == ["text"]
    assert "ships" in body["messages"][0]["text"]
    assert stored.external_id == "461230966842064897"


async def test_line_media_fetched_with_the_channel_token(hub: Hub, client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=True) as vendor:
        image = vendor.get("https://api-data.line.me/v2/bot/message/354718705033693859/content").mock(
            return_value=httpx.Response(200, content=b"\x89PNG fake", headers={"content-type": "image/png"}))
        vendor.get("https://api-data.line.me/v2/bot/message/325708/content").mock(
            return_value=httpx.Response(200, content=b"%PDF-1.4", headers={"content-type": "application/pdf"}))
        assert (await post_line(client, payload("line/media.json"))).status_code == 200

        async def downloaded() -> list[Message] | None:
            found = await messages_of(hub, "line")
            ok = len(found) == 2 and all(getattr(m.parts[0], "blob_key", None) for m in found)
            return found if ok else None

        found = await eventually(downloaded)
    assert image.calls.last.request.headers["authorization"] == "Bearer line-access-token"
    by_kind = {m.parts[0].kind: m.parts[0] for m in found}  # type: ignore[union-attr]
    assert by_kind["image"].content_type == "image/png" and by_kind["image"].size == 9
    assert by_kind["file"].filename == "invoice-1042.pdf"


async def test_line_stickers_follow_unfollow_and_groups(hub: Hub, client: httpx.AsyncClient) -> None:
    assert (await post_line(client, payload("line/events.json"))).status_code == 200
    found = await messages_of(hub, "line")
    parts = sorted((m.parts[0].name, m.sender.handle) for m in found)  # type: ignore[union-attr]
    # the group message is left out by the filter; nothing is stored empty
    assert parts == [("sticker", LINE_USER), ("subscribe", "U0bb1234567890abcdef1234567890abc"),
                     ("unsubscribe", "U0bb1234567890abcdef1234567890abc")]
    sticker = next(m for m in found if m.parts[0].name == "sticker")  # type: ignore[union-attr]
    assert sticker.parts[0].data["sticker_id"] == "52002738"  # type: ignore[union-attr]
    contact = await hub.store.find_contact(found[0].sender.model_copy(
        update={"handle": "U0bb1234567890abcdef1234567890abc"}))
    assert contact is not None and "line" in contact.opted_out  # unfollow = blocked the bot


async def test_line_refuses_a_forged_or_missing_signature(hub: Hub, client: httpx.AsyncClient) -> None:
    body = payload("line/text.json")
    assert (await post_line(client, body, line_signature(body, "wrong"))).status_code == 403
    assert (await post_line(client, body, "not base64 at all!")).status_code == 403
    response = await client.post("/webhooks/line", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 403
    assert await messages_of(hub, "line") == []


# -- Sunshine Conversations --------------------------------------------------------------------

async def test_sunshine_text_reply_and_receipt(hub: Hub, client: httpx.AsyncClient) -> None:
    assert (await post_sunshine(client, payload("sunshine/text.json"))).status_code == 200
    [message] = await messages_of(hub, "sunshine")
    assert message.sender.display_name == "Steve Wozniak"
    assert message.metadata["app_id"] == ENV["SUNSHINE_APP_ID"]
    conversation = await hub.store.get_conversation(message.conversation_id)
    assert conversation is not None and conversation.thread_key == SUNSHINE_CONVERSATION

    url = (f"https://api.smooch.io/v2/apps/{ENV['SUNSHINE_APP_ID']}/conversations/"
           f"{SUNSHINE_CONVERSATION}/messages")
    with respx.mock(assert_all_called=True) as vendor:
        route = vendor.post(url).mock(return_value=httpx.Response(
            201, content=payload("sunshine/send-response.json")))
        sent = await hub.send(message.conversation_id, text="Sorry about that, looking now.")

        async def accepted() -> Message | None:
            stored = await hub.store.get_message(sent.id)
            return stored if stored is not None and stored.external_id else None

        stored = await eventually(accepted)
    request = route.calls.last.request
    expected = base64.b64encode(f"{ENV['SUNSHINE_KEY_ID']}:{ENV['SUNSHINE_KEY_SECRET']}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert orjson.loads(request.content) == {
        "author": {"type": "business"},
        "content": {"type": "text", "text": "Sorry about that, looking now."}}
    assert stored.external_id == "5f74a0d52b5315fc007e7b00"

    receipt = payload("sunshine/receipts.json").replace(b"OUTBOUND_ID", stored.external_id.encode())
    assert (await post_sunshine(client, receipt)).status_code == 200

    async def delivered() -> bool:
        current = await hub.store.get_message(sent.id)
        return current is not None and current.status == "delivered"

    await eventually(delivered)


async def test_sunshine_media_location_and_echoes(hub: Hub, client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=True) as vendor:
        vendor.get(url__startswith="https://media.smooch.io/").mock(
            return_value=httpx.Response(200, content=b"\xff\xd8jpeg", headers={"content-type": "image/jpeg"}))
        assert (await post_sunshine(client, payload("sunshine/media.json"))).status_code == 200

        async def downloaded() -> list[Message] | None:
            found = await messages_of(hub, "sunshine")
            media = [p for m in found for p in m.parts if p.type == "media"]
            return found if media and all(getattr(p, "blob_key", None) for p in media) else None

        found = await eventually(downloaded)
    kinds = sorted(p.type for m in found for p in m.parts)
    assert kinds == ["event", "media"]  # the business echo is filtered out
    image = next(p for m in found for p in m.parts if p.type == "media")
    assert image.caption == "the parcel label"  # type: ignore[union-attr]
    location = next(p for m in found for p in m.parts if p.type == "event")
    assert location.data == {"lat": 37.3318, "long": -122.0312}  # type: ignore[union-attr]


async def test_sunshine_refuses_a_wrong_key(hub: Hub, client: httpx.AsyncClient) -> None:
    assert (await post_sunshine(client, payload("sunshine/text.json"), key="guess")).status_code == 403
    assert await messages_of(hub, "sunshine") == []


# -- bad mappings and payloads -----------------------------------------------------------------

def test_a_mapping_that_cannot_compile_names_key_field_and_expression(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    omni_config["channels"]["broken"] = {"adapter": "json-mapping", "secret": "s",
                                         "sender": "source.[userId"}
    with pytest.raises(ConfigurationError) as caught:
        Hub.from_config(omni_config, plugins=register_plugin)
    text = str(caught.value)
    assert "broken" in text and "sender" in text and "source.[userId" in text


async def test_a_required_path_matching_nothing_is_dead_lettered_naming_it(
        hub: Hub, client: httpx.AsyncClient) -> None:
    event = orjson.loads(payload("line/text.json"))
    del event["events"][0]["source"]["userId"]
    event["events"][0]["source"]["type"] = "user"
    body = orjson.dumps(event)
    assert (await post_line(client, body)).status_code == 200
    assert await messages_of(hub, "line") == []
    [letter] = await hub.store.list_dead_letters()
    assert "'source.userId' (sender) matched nothing" in letter.error


async def test_media_hosts_setting_makes_mapped_media_download(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    """0.1.0 never fetched mapped media unless api_base pointed at the media host."""
    omni_config["channels"]["partner"] = {
        "adapter": "json-mapping", "secret": "s", "items": "events", "sender": "user",
        "media_url": "file", "media_hosts": ["files.partner.test"]}
    body = orjson.dumps({"events": [{"id": "e1", "user": "u1", "file": "https://files.partner.test/a.pdf"}]})
    sig = hmac.new(b"s", body, hashlib.sha256).hexdigest()
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client, \
                respx.mock(assert_all_called=True) as vendor:
            vendor.get("https://files.partner.test/a.pdf").mock(return_value=httpx.Response(200, content=b"%PDF"))
            response = await client.post("/webhooks/partner", content=body, headers={
                "content-type": "application/json", "x-signature": sig})
            assert response.status_code == 200

            async def fetched() -> bool:
                found = await messages_of(hub, "partner")
                return bool(found) and bool(getattr(found[0].parts[0], "blob_key", None))

            await eventually(fetched)


# -- signature schemes -------------------------------------------------------------------------

def _verify(signature: dict[str, Any], headers: dict[str, str], body: bytes = b'{"a":1}',
            now: float | None = None) -> None:
    from omnichannel_sdk import WebhookRequest
    from omnichannel_sdk._mapping._settings import SignatureSettings
    from omnichannel_sdk._mapping._signature import verify_signature

    verify_signature("json-mapping", SignatureSettings.model_validate(signature),
                     WebhookRequest("POST", "https://x/webhooks/k", headers, body), now=now)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_schemes(algorithm: str, encoding: str) -> None:
    from omnichannel_sdk import SignatureError

    digest = hmac.new(b"key", b'{"a":1}', getattr(hashlib, algorithm)).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    config = {"algorithm": algorithm, "encoding": encoding, "header": "x-sig", "prefix": "v1=", "secret": "key"}
    _verify(config, {"x-sig": "v1=" + value})
    with pytest.raises(SignatureError, match=f"expected a {encoding} HMAC-{algorithm.upper()}"):
        _verify(config, {"x-sig": "v1=" + value}, body=b'{"a":2}')
    with pytest.raises(SignatureError, match="prefix"):
        _verify(config, {"x-sig": value})


def test_timestamped_hmac_and_its_tolerance() -> None:
    from omnichannel_sdk import SignatureError

    config = {"header": "x-sig", "secret": "key", "timestamp_header": "x-ts", "signed": "v0:{timestamp}:{body}",
              "tolerance": 300}
    stamp = "1700000000"
    value = hmac.new(b"key", b'v0:1700000000:{"a":1}', hashlib.sha256).hexdigest()
    _verify(config, {"x-sig": value, "x-ts": stamp}, now=1700000100)
    with pytest.raises(SignatureError, match="tolerance"):
        _verify(config, {"x-sig": value, "x-ts": stamp}, now=1700000400)
    with pytest.raises(SignatureError, match="x-ts"):
        _verify(config, {"x-sig": value}, now=1700000100)


def test_token_and_basic_schemes() -> None:
    from omnichannel_sdk import SignatureError

    _verify({"scheme": "token", "header": "x-api-key", "secret": "tok"}, {"x-api-key": "tok"})
    with pytest.raises(SignatureError, match="shared token"):
        _verify({"scheme": "token", "header": "x-api-key", "secret": "tok"}, {"x-api-key": "tok2"})
    basic = {"scheme": "basic", "username": "u", "password": "p"}
    _verify(basic, {"authorization": "Basic " + base64.b64encode(b"u:p").decode()})
    for bad in ("Basic " + base64.b64encode(b"u:q").decode(), "Basic !!!", "Bearer x", ""):
        with pytest.raises(SignatureError):
            _verify(basic, {"authorization": bad})


def test_signature_settings_that_cannot_work_are_refused(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    omni_config["channels"]["bad"] = {"adapter": "json-mapping",
                                      "signature": {"scheme": "hmac", "signed": "{timestamp}{body}"}}
    with pytest.raises(ConfigurationError, match="bad"):
        Hub.from_config(omni_config, plugins=register_plugin)
