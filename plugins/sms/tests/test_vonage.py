"""vonage-sms: signatures, GET/POST webhooks, receipts, concatenated SMS, sends and errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from omnichannel_sms import VonageSmsAdapter, signed_params, vonage_signature

from omnichannel_sdk import (
    AdapterContext,
    Address,
    AuthenticationError,
    EventPart,
    Hub,
    Message,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

SECRET = "vonage-signature-secret-abc"
API_SECRET = "vonage-api-secret-xyz"
URL = f"{PUBLIC_URL}/webhooks/vonage"
SEND = "https://rest.nexmo.com/sms/json"


def make(http: httpx.AsyncClient | None = None, **extra: Any) -> VonageSmsAdapter:
    settings = VonageSmsAdapter.Settings.model_validate(
        {"api_key": "abcd1234", "api_secret": API_SECRET, "signature_secret": SECRET,
         "from_number": "447700900000", **extra})
    return VonageSmsAdapter(settings, AdapterContext(key="vonage", public_url=PUBLIC_URL,
                                                     http=http or httpx.AsyncClient(), kv=MemoryKV()))


def outbound(text: str, to: str = "+447700900001") -> Message:
    from omnichannel_sdk._models import utcnow

    now = utcnow()
    return Message(id="msg_test_1", channel="sms", channel_key="vonage", adapter="vonage-sms",
                   direction="outbound", conversation_id="conv_1",
                   sender=Address(channel="sms", handle="+447700900000"),
                   recipients=[Address(channel="sms", handle=to)], parts=[TextPart(text=text)],
                   created_at=now, received_at=now, status="queued")


def text_of(msg: Any) -> str:
    return "".join(p.text for p in msg.parts if isinstance(p, TextPart))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def all_messages(hub: Hub) -> list[Message]:
    found: list[Message] = []
    for conversation in await hub.store.list_conversations():
        found.extend(await hub.store.list_messages(conversation.id))
    return found


# -- signatures -------------------------------------------------------------------------------

def _reference_sig(secret: str, params: dict[str, str], method: str) -> str:
    """Written from the vendor's description, independently of the adapter."""
    text = ""
    for key in sorted(params):
        value = params[key]
        for bad in "&=":
            value = value.replace(bad, "_")
        text += "&" + key + "=" + value
    if method == "md5hash":
        return hashlib.md5((text + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), text.encode(), getattr(hashlib, method)).hexdigest().upper()


@pytest.mark.parametrize("method", ["md5hash", "md5", "sha1", "sha256", "sha512"])
def test_signature_methods(samples: Any, method: str) -> None:
    params = {**samples.json("vonage_inbound"), "text": "a=b & c", "timestamp": str(int(time.time())),
              "nonce": "2f3c-11"}
    assert vonage_signature(SECRET, params, method).lower() == _reference_sig(SECRET, params, method).lower()
    adapter = make(signature_method=method)
    for kind in ("json", "form", "get"):
        adapter.verify(samples.vonage(params, kind=kind, method=method))
    other = make(signature_method="sha512" if method != "sha512" else "md5")
    with pytest.raises(SignatureError):
        other.verify(samples.vonage(params, method=method))


def test_timestamp_tolerance(samples: Any) -> None:
    adapter = make(signature_tolerance=60)
    params = samples.json("vonage_inbound")
    adapter.verify(samples.vonage(params, timestamp=int(time.time()) - 50))
    for stale in (int(time.time()) - 120, int(time.time()) + 120, "nan", "inf"):
        with pytest.raises(SignatureError, match="tolerance"):
            adapter.verify(samples.vonage(params, timestamp=stale))
    unsigned = WebhookRequest("POST", URL, {"content-type": "application/json"},
                              b'{"msisdn": "447700900001", "sig": "abc"}')
    with pytest.raises(SignatureError, match="timestamp"):
        adapter.verify(unsigned)


def test_signed_params_uppercase_hmac_accepted() -> None:
    signed = signed_params(SECRET, {"a": "1"}, "sha256")
    assert signed["sig"] == signed["sig"].upper()


# -- parsing ----------------------------------------------------------------------------------

def test_parse_inbound(samples: Any) -> None:
    (msg,) = make().parse(samples.vonage(samples.json("vonage_inbound"))).items
    assert msg.external_id == "0A0000000123ABCD1"
    assert msg.sender.handle == "+447700900001" and msg.recipients[0].handle == "+447700900000"
    assert text_of(msg) == "Hello, is the shop open on Sunday?"
    assert msg.created_at.isoformat() == "2026-01-15T12:30:00+00:00"
    assert msg.metadata["vonage"]["keyword"] == "HELLO,"
    assert "sig" not in msg.metadata["vonage"] and "api-key" not in msg.metadata["vonage"]
    assert make().thread_key_for(msg.sender, msg) == "+447700900001|+447700900000"


def test_parse_unicode_form_and_get(samples: Any) -> None:
    for kind in ("form", "get"):
        (msg,) = make().parse(samples.vonage(samples.json("vonage_inbound_unicode"), kind=kind)).items
        assert msg.sender.handle == "+8613800138000"
        assert text_of(msg) == "你好，我的订单到了吗？"  # noqa: RUF001


def test_default_region_does_not_touch_international_msisdn(samples: Any) -> None:
    adapter = make(default_region="US", from_number="(415) 555-0199")
    assert adapter.own_address().handle == "+14155550199"
    (msg,) = adapter.parse(samples.vonage(samples.json("vonage_inbound"))).items
    assert msg.sender.handle == "+447700900001"


@pytest.mark.parametrize(("word", "event"), [("STOP", "opt_out"), ("退订", "opt_out"), ("td", "opt_out"),
                                             ("Start", "opt_in"), ("help", "help")])
def test_keywords(samples: Any, word: str, event: str) -> None:
    adapter = make(opt_out_words=["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "退订", "TD"])
    (msg,) = adapter.parse(samples.vonage({**samples.json("vonage_inbound"), "text": word})).items
    assert [p.name for p in msg.parts if isinstance(p, EventPart)] == [event]


def test_binary_sms(samples: Any) -> None:
    params = {**samples.json("vonage_inbound"), "type": "binary", "data": "0102", "udh": "050003"}
    params.pop("text")
    (msg,) = make().parse(samples.vonage(params)).items
    assert msg.parts == [EventPart(name="binary_sms", data={"data": "0102", "udh": "050003"})]


def test_receipts(samples: Any) -> None:
    (ok,) = make().parse(samples.vonage(samples.json("vonage_dlr_delivered"))).items
    assert isinstance(ok, StatusUpdate) and ok.status == "delivered" and ok.external_id == "0C000000217B7F02"
    assert ok.metadata["client-ref"] == "msg_01"
    (bad,) = make().parse(samples.vonage(samples.json("vonage_dlr_failed"))).items
    assert bad.status == "failed" and bad.error.vendor_code == "6"
    assert "anti-spam" in bad.error.message
    for vendor, ours in (("accepted", "sent"), ("buffered", "sent"), ("expired", "failed"),
                         ("rejected", "failed")):
        (update,) = make().parse(samples.vonage({**samples.json("vonage_dlr_failed"),
                                                 "status": vendor})).items
        assert update.status == ours
    unknown = make().parse(samples.vonage({**samples.json("vonage_dlr_failed"), "status": "unknown"}))
    assert unknown.items == []


def test_unparseable(samples: Any) -> None:
    adapter = make()
    for params in ({"hello": "world"}, {"messageId": "1", "msisdn": "+99912345678", "text": "x"},
                   {**samples.json("vonage_inbound"), "concat": "true", "concat-ref": "1",
                    "concat-part": "3", "concat-total": "2"}):
        with pytest.raises(UnparseablePayloadError):
            adapter.parse(samples.vonage(params))
    with pytest.raises(UnparseablePayloadError):
        adapter.parse(WebhookRequest("POST", URL, {"content-type": "application/json"}, b"[1]"))


def test_concat_part_without_hub_is_flagged(samples: Any) -> None:
    (msg,) = make().parse(samples.vonage(samples.json("vonage_concat")[1])).items
    assert msg.metadata["concat"]["assembled"] is False
    assert msg.metadata["concat"]["parts"] == [2]
    assert text_of(msg) == "part two continues the story,"


# -- through the hub --------------------------------------------------------------------------

@pytest.mark.anyio
async def test_get_webhook_through_gateway(hub: Hub, webhook_client: httpx.AsyncClient,
                                           samples: Any) -> None:
    request = samples.vonage(samples.json("vonage_inbound"), kind="get")
    response = await webhook_client.get(request.url[len(PUBLIC_URL):])
    assert response.status_code == 204

    async def stored() -> bool:
        return len(await all_messages(hub)) == 1

    await eventually(stored)
    (msg,) = await all_messages(hub)
    assert msg.text == "Hello, is the shop open on Sunday?"
    bad = await webhook_client.get(request.url[len(PUBLIC_URL):].replace("sig=", "sig=0"))
    assert bad.status_code == 403
    assert (await webhook_client.get("/webhooks/vonage")).status_code == 403  # unsigned GET


@pytest.mark.anyio
@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
async def test_concat_reassembled_in_any_order(hub: Hub, samples: Any, order: list[int]) -> None:
    parts = samples.json("vonage_concat")
    for index in order:
        response = await hub.handle_webhook("vonage", samples.vonage(parts[index]))
        assert response.status == 204
    await hub.handle_webhook("vonage", samples.vonage(parts[order[0]]))  # a vendor retry

    async def one_message() -> bool:
        return len(await all_messages(hub)) == 1

    await eventually(one_message)
    await asyncio.sleep(0.6)  # longer than concat_timeout: no partial flush may follow
    (msg,) = await all_messages(hub)
    assert msg.text == ("Part one of a long message that the handset split into three SMS, "
                        "part two continues the story, and part three ends it.")
    assert msg.external_id == "1000000012345671"
    concat = msg.metadata["concat"]
    assert concat["complete"] is True and concat["parts"] == [1, 2, 3] and concat["missing"] == []
    assert concat["message_ids"] == ["1000000012345671", "1000000012345672", "1000000012345673"]
    assert await hub.store.kv_scan("sms-concat:vonage:") == [
        (k, v) for k, v in await hub.store.kv_scan("sms-concat:vonage:") if k.endswith(":done")]


@pytest.mark.anyio
async def test_concat_missing_part_flushed_and_late_part_kept(hub: Hub, samples: Any) -> None:
    parts = samples.json("vonage_concat")
    await hub.handle_webhook("vonage", samples.vonage(parts[0]))
    await hub.handle_webhook("vonage", samples.vonage(parts[2]))

    async def flushed() -> bool:
        return len(await all_messages(hub)) == 1

    await eventually(flushed)
    (msg,) = await all_messages(hub)
    assert msg.metadata["concat"]["complete"] is False
    assert msg.metadata["concat"]["missing"] == [2]
    assert "[…]" in msg.text and msg.text.endswith("and part three ends it.")
    await hub.handle_webhook("vonage", samples.vonage(parts[2]))  # retry of a stored part: dropped
    await hub.handle_webhook("vonage", samples.vonage(parts[1]))  # the late part

    async def late() -> bool:
        return len(await all_messages(hub)) == 2

    await eventually(late)
    await asyncio.sleep(0.2)
    messages = await all_messages(hub)
    assert len(messages) == 2
    late_msg = next(m for m in messages if m.id != msg.id)
    assert late_msg.metadata["concat"]["late"] is True and late_msg.text == "part two continues the story,"


@pytest.mark.anyio
async def test_concat_across_two_gateway_processes(omni_config: dict[str, Any],
                                                   register_plugin: list[object], samples: Any) -> None:
    parts = samples.json("vonage_concat")
    omni_config["channels"]["vonage"]["concat_timeout"] = 30
    first = Hub.from_config(omni_config, plugins=register_plugin)
    second = Hub.from_config(omni_config, plugins=register_plugin)
    async with first, second:
        await asyncio.gather(first.handle_webhook("vonage", samples.vonage(parts[2])),
                             second.handle_webhook("vonage", samples.vonage(parts[0])))
        await first.adapters["vonage"].assembler.drain()
        await second.adapters["vonage"].assembler.drain()
        await second.handle_webhook("vonage", samples.vonage(parts[1]))

        async def one() -> bool:
            return len(await all_messages(first)) == 1

        await eventually(one)
        await first.adapters["vonage"].assembler.drain()
        await second.adapters["vonage"].assembler.drain()
        (msg,) = await all_messages(first)
        assert msg.metadata["concat"]["complete"] is True
        assert len(await all_messages(second)) == 1


# -- sending ----------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_send_fields(samples: Any) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            ok = httpx.Response(200, json=samples.json("vonage_send_ok"))
            route = router.post(SEND).mock(return_value=ok)
            result = await adapter.send(outbound("Привет!"), [TextPart(text="Привет!")])
    form = dict(parse_qsl(route.calls.last.request.content.decode()))
    assert form == {"api_key": "abcd1234", "api_secret": API_SECRET, "from": "447700900000",
                    "to": "447700900001", "text": "Привет!", "type": "unicode", "status-report-req": "1",
                    "callback": URL, "client-ref": "msg_test_1"}
    assert result.external_ids == ["0B00000001A2B3C4D"]
    assert result.metadata == {"encoding": "UCS-2", "segments": 1}


@pytest.mark.anyio
async def test_alphanumeric_sender(samples: Any) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http, from_number="AcmeShop")
        with respx.mock() as router:
            ok = httpx.Response(200, json=samples.json("vonage_send_ok"))
            route = router.post(SEND).mock(return_value=ok)
            await adapter.send(outbound("hi"), [TextPart(text="hi")])
    assert dict(parse_qsl(route.calls.last.request.content.decode()))["from"] == "AcmeShop"


@pytest.mark.anyio
@pytest.mark.parametrize(("sample", "error"), [
    ("vonage_send_barred", OptedOutError),
    ("vonage_send_throttled", RateLimitedError),
    ("vonage_send_bad_credentials", AuthenticationError),
])
async def test_send_status_codes(samples: Any, sample: str, error: type) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(SEND).mock(return_value=httpx.Response(200, json=samples.json(sample)))
            with pytest.raises(error) as info:
                await adapter.send(outbound("hi"), [TextPart(text="hi")])
    assert API_SECRET not in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "error", "retryable"), [
    ("3", RejectedError, False), ("5", ProviderError, True), ("15", RejectedError, False),
    ("29", RejectedError, False), ("9", RejectedError, False)])
async def test_other_status_codes(status: str, error: type, retryable: bool) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(SEND).mock(return_value=httpx.Response(200, json={
                "message-count": "1", "messages": [{"status": status, "error-text": "nope"}]}))
            with pytest.raises(error) as info:
                await adapter.send(outbound("hi"), [TextPart(text="hi")])
    assert info.value.retryable is retryable and info.value.vendor_code == status


@pytest.mark.anyio
async def test_multipart_answer_keeps_every_id() -> None:
    answer = {"message-count": "2", "messages": [
        {"to": "447700900001", "message-id": "A1", "status": "0"},
        {"to": "447700900001", "message-id": "A2", "status": "0"}]}
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(SEND).mock(return_value=httpx.Response(200, json=answer))
            result = await adapter.send(outbound("x" * 200), [TextPart(text="x" * 200)])
    assert result.external_ids == ["A1", "A2"]
    assert result.metadata == {"encoding": "GSM-7", "segments": 2}
