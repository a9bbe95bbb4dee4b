"""twilio-sms: signature, parsing, TwiML answers, sends and Twilio's error codes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from omnichannel_sms import TwilioSmsAdapter, parse_form, twilio_signature

from omnichannel_sdk import (
    AdapterContext,
    Address,
    AuthenticationError,
    EventPart,
    InboundMessage,
    MediaPart,
    Message,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TOKEN = "twilio-test-auth-token-0123456789"
URL = f"{PUBLIC_URL}/webhooks/twilio"
API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


def make(http: httpx.AsyncClient | None = None, **extra: Any) -> TwilioSmsAdapter:
    settings = TwilioSmsAdapter.Settings.model_validate(
        {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006", **extra})
    return TwilioSmsAdapter(settings, AdapterContext(key="twilio", public_url=PUBLIC_URL,
                                                     http=http or httpx.AsyncClient(), kv=MemoryKV()))


def outbound(*parts: Any, to: str = "+14155550100") -> Message:
    from omnichannel_sdk._models import utcnow

    now = utcnow()
    return Message(id="msg_test_1", channel="sms", channel_key="twilio", adapter="twilio-sms",
                   direction="outbound", conversation_id="conv_1",
                   sender=Address(channel="sms", handle="+15005550006"),
                   recipients=[Address(channel="sms", handle=to)], parts=list(parts),
                   created_at=now, received_at=now, status="queued")


# -- signature --------------------------------------------------------------------------------

def test_signature_matches_twilio_docs_example() -> None:
    # the parameters of Twilio's security documentation example; the value is what the
    # ``twilio`` package's RequestValidator.compute_signature gives for them
    params = [("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
              ("From", "+12349013030"), ("To", "+18005551212")]
    assert twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == \
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_signature_cross_checked_with_twilio_package(samples: Any, twilio_validator: Any) -> None:
    validator = twilio_validator(TOKEN)
    for name in ("twilio_inbound_sms", "twilio_inbound_mms", "twilio_status_undelivered"):
        request = samples.twilio(name)
        params = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        assert validator.validate(URL, params, request.headers["x-twilio-signature"])
        make().verify(request)


def test_repeated_params_and_port_variants() -> None:
    pairs = [("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]
    adapter = make()
    for signed_url in (URL, URL.replace("hooks.example.test", "hooks.example.test:443")):
        body = "&".join(f"{k}={v}" for k, v in pairs).encode()
        signature = twilio_signature(TOKEN, signed_url, pairs)
        request = WebhookRequest("POST", URL, {"x-twilio-signature": signature}, body)
        adapter.verify(request)


def test_an_identical_pair_twice_is_signed_once() -> None:
    # Twilio counts an identical name and value once: the adapter's short way for forms whose
    # names are all distinct must not be taken when a name repeats
    pairs = [("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "a")]
    body = "&".join(f"{k}={v}" for k, v in pairs).encode()
    once = twilio_signature(TOKEN, URL, pairs)
    assert once == twilio_signature(TOKEN, URL, pairs[:2], distinct=True)
    make().verify(WebhookRequest("POST", URL, {"x-twilio-signature": once}, body))
    twice = twilio_signature(TOKEN, URL, pairs, distinct=True)  # what a wrong short way signs
    with pytest.raises(SignatureError):
        make().verify(WebhookRequest("POST", URL, {"x-twilio-signature": twice}, body))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=12))
def test_distinct_pairs_sign_as_the_set_does(form: dict[str, str]) -> None:
    pairs = list(form.items())
    assert twilio_signature(TOKEN, URL, pairs, distinct=True) == twilio_signature(TOKEN, URL, pairs)


def test_json_body_sha256() -> None:
    body = b'{"hello": "world"}'
    url = f"{URL}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    adapter = make()
    headers = {"x-twilio-signature": twilio_signature(TOKEN, url, [])}
    adapter.verify(WebhookRequest("POST", url, headers, body))
    with pytest.raises(SignatureError):
        adapter.verify(WebhookRequest("POST", url, headers, body + b" "))


def test_wrong_token_url_or_junk_refused(samples: Any) -> None:
    adapter = make()
    request = samples.twilio("twilio_inbound_sms")
    for bad in (
        WebhookRequest("POST", URL.replace("twilio", "other"), request.headers, request.body),
        WebhookRequest("POST", URL, {"x-twilio-signature": "Zm9v"}, request.body),
        WebhookRequest("POST", URL, request.headers, b"\xff\xfe"),
    ):
        with pytest.raises(SignatureError):
            adapter.verify(bad)


# -- parsing ----------------------------------------------------------------------------------

def test_parse_inbound_sms(samples: Any) -> None:
    result = make().parse(samples.twilio("twilio_inbound_sms"))
    (msg,) = result.items
    assert msg.external_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert msg.sender.handle == "+14155550100" and msg.recipients[0].handle == "+15005550006"
    assert msg.parts == [TextPart(text="Hi! My order #1234 hasn't arrived 😟")]
    assert msg.metadata["segments"] == 1
    assert msg.metadata["twilio"]["FromCity"] == "SAN FRANCISCO"
    assert msg.metadata["twilio"]["AccountSid"] == SID
    assert msg.profile == {"country": "US"}
    assert make().thread_key_for(msg.sender, msg) == "+14155550100|+15005550006"


def test_parse_mms(samples: Any) -> None:
    (msg,) = make().parse(samples.twilio("twilio_inbound_mms")).items
    media = [p for p in msg.parts if isinstance(p, MediaPart)]
    assert [(m.kind, m.content_type) for m in media] == [("image", "image/jpeg"), ("file", "application/pdf")]
    assert all(m.url and m.url.startswith("https://api.twilio.com/") for m in media)
    assert not any(k.startswith("MediaUrl") for k in msg.metadata["twilio"])


@pytest.mark.anyio
async def test_media_request_uses_basic_auth() -> None:
    async with httpx.AsyncClient() as http:
        request = await make(http).media_request(MediaPart(kind="image", url="https://api.twilio.com/x/ME1"))
    assert request is not None
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


def test_parse_status_callbacks(samples: Any) -> None:
    (ok,) = make().parse(samples.twilio("twilio_status_delivered")).items
    assert isinstance(ok, StatusUpdate) and ok.status == "delivered" and ok.error is None
    (bad,) = make().parse(samples.twilio("twilio_status_undelivered")).items
    assert isinstance(bad, StatusUpdate) and bad.status == "failed"
    assert bad.error is not None and bad.error.vendor_code == "30003"
    assert "unreachable destination handset" in bad.error.message
    for vendor, ours in (("queued", "sent"), ("sending", "sent"), ("sent", "sent"), ("read", "read"),
                         ("failed", "failed")):
        (update,) = make().parse(samples.twilio("twilio_status_delivered", MessageStatus=vendor)).items
        assert update.status == ours


@pytest.mark.parametrize("code", ["30004", "30005", "30006", "30007", "30008"])
def test_undelivered_reasons(samples: Any, code: str) -> None:
    (update,) = make().parse(samples.twilio("twilio_status_undelivered", ErrorCode=code)).items
    assert update.status == "failed" and update.error.vendor_code == code
    assert "Twilio undelivered:" in update.error.message


@pytest.mark.parametrize(("body", "hint", "event"), [
    ("STOP", None, "opt_out"), ("stop", None, "opt_out"), (" Unsubscribe. ", None, "opt_out"),
    ("STOPALL", None, "opt_out"), ("cancel", None, "opt_out"), ("End", None, "opt_out"),
    ("quit!", None, "opt_out"), ("START", None, "opt_in"), ("unstop", None, "opt_in"),
    ("HELP", None, "help"), ("please stop calling", None, None), ("Stop", "STOP", "opt_out"),
    ("Yes", "START", "opt_in"), ("Info", "HELP", "help"),
])
def test_keywords(samples: Any, body: str, hint: str | None, event: str | None) -> None:
    changes = {"Body": body}
    if hint:
        changes["OptOutType"] = hint
    form = [(k, v) for k, v in samples.form("twilio_inbound_sms")]
    from omnichannel_sms._twilio import signed_request

    request = signed_request(TOKEN, URL, [(k, changes.get(k, v)) for k, v in form] +
                             ([("OptOutType", hint)] if hint else []))
    (msg,) = make().parse(request).items
    events = [p.name for p in msg.parts if isinstance(p, EventPart)]
    assert events == ([event] if event else [])


def test_configurable_keywords(samples: Any) -> None:
    adapter = make(opt_out_words=["STOP", "退订", "TD"], opt_in_words=["START", "订阅"])
    for body, event in (("退订", "opt_out"), ("td", "opt_out"), ("退订。", "opt_out"), ("订阅", "opt_in"),
                        ("CANCEL", None)):
        (msg,) = adapter.parse(samples.twilio("twilio_inbound_sms", Body=body)).items
        assert [p.name for p in msg.parts if isinstance(p, EventPart)] == ([event] if event else [])


def test_local_numbers_with_default_region(samples: Any) -> None:
    adapter = make(default_region="GB", from_number="07700 900000")
    assert adapter.own_address().handle == "+447700900000"
    (msg,) = adapter.parse(samples.twilio("twilio_inbound_sms", From="07700 900123",
                                          To="07700 900000")).items
    assert msg.sender.handle == "+447700900123" and msg.recipients[0].handle == "+447700900000"
    assert adapter.customer_address("020 7946 0018").handle == "+442079460018"
    with pytest.warns(DeprecationWarning, match="customer_address"):  # the 0.1 name still works
        assert adapter.address("020 7946 0018").handle == "+442079460018"


def test_unparseable(samples: Any) -> None:
    adapter = make()
    for form in ([("Hello", "x")], [("MessageSid", "SM1"), ("From", "+99912345678")],
                 [("MessageSid", "SM1"), ("From", "+14155550100"), ("NumMedia", "x")],
                 [("MessageSid", "SM1"), ("MessageStatus", "exploded")]):
        from omnichannel_sms._twilio import signed_request

        with pytest.raises(UnparseablePayloadError):
            adapter.parse(signed_request(TOKEN, URL, form))


def test_acknowledge_is_empty_twiml() -> None:
    response = make().acknowledge(WebhookRequest("POST", URL), None)
    assert response.status == 200 and response.content_type.startswith("text/xml")
    assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def test_parse_form_matches_stdlib() -> None:
    body = b"a=1&b=%F0%9F%98%80+x&c=&d&e=a%26b%3Dc&&f=%2B1"
    assert parse_form(body) == parse_qsl(body.decode(), keep_blank_values=True)


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(st.text(alphabet="ab=&+%2BF0e9 \u00e9", max_size=40)
       | st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=5).map(urlencode))
def test_parse_form_matches_stdlib_on_any_form(text: str) -> None:
    # parse_form's shortcuts (no unquoting without "%" or "+") answer as the stdlib does
    assert parse_form(text.encode()) == parse_qsl(text, keep_blank_values=True)


@settings(max_examples=3000, derandomize=True, deadline=None)
@given(st.text(alphabet="a=&+%236dDCcEeF089AB", max_size=48))
def test_parse_form_matches_stdlib_on_escapes(text: str) -> None:
    # the whole-body decoding (no escaped "&" or "="): truncated, invalid and lower-case
    # escapes, invalid UTF-8 sequences next to separators, all answered as the stdlib does
    assert parse_form(text.encode()) == parse_qsl(text, keep_blank_values=True)


def test_parse_form_decodes_a_body_of_escaped_fields_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import omnichannel_sms._forms as forms

    calls: list[str] = []
    real = forms.unquote_to_bytes

    def counting(value: str) -> bytes:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(forms, "unquote_to_bytes", counting)
    body = urlencode({"Body": "Hello, where is my order? Thanks!" * 2, "ToCity": "SAN FRANCISCO",
                      "ErrorMessage": "a long value, escaped: it is never cached here!"}).encode()
    assert parse_form(body) == parse_qsl(body.decode(), keep_blank_values=True)
    assert len(calls) == 1  # the body, not one call per escaped value


def test_parse_takes_the_first_value_of_a_repeated_name_and_keeps_the_vendor_fields_in_order() -> None:
    from omnichannel_sms._twilio import signed_request

    form = [("MessageSid", "SM1"), ("ToCity", "PARIS"), ("From", "+14155550100"), ("Body", "first"),
            ("MediaUrl0", "https://api.twilio.com/m"), ("ToCity", "LYON"), ("Body", "second"),
            ("MediaUrlX", "kept"), ("AccountSid", "AC1")]
    message = make().parse(signed_request(TOKEN, URL, form)).items[0]
    assert isinstance(message, InboundMessage)
    assert [p.text for p in message.parts if isinstance(p, TextPart)] == ["first"]
    # the media pattern takes MediaUrl0 out; a name that only starts with "Media" stays
    assert list(message.metadata["twilio"].items()) == [
        ("ToCity", "PARIS"), ("MediaUrlX", "kept"), ("AccountSid", "AC1")]


def test_twilio_signature_is_twilios_hmac_sha1_of_url_and_sorted_pairs() -> None:
    pairs = [("b", "2"), ("a", "1"), ("a", "1"), ("a", "0")]
    data = (URL + "a0" + "a1" + "b2").encode()
    expected = base64.b64encode(hmac.new(TOKEN.encode(), data, hashlib.sha1).digest()).decode()
    assert twilio_signature(TOKEN, URL, pairs) == expected == twilio_signature(TOKEN.encode(), URL, pairs)


# -- sending ----------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_send_form_fields_and_metadata(samples: Any) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            route = router.post(API).mock(return_value=httpx.Response(201, json=samples.json(
                "twilio_send_created")))
            result = await adapter.send(outbound(TextPart(text="Your order ships today €5")),
                                        [TextPart(text="Your order ships today €5")])
    sent = route.calls.last.request
    form = dict(parse_qsl(sent.content.decode()))
    assert form == {"To": "+14155550100", "From": "+15005550006", "Body": "Your order ships today €5",
                    "StatusCallback": URL}
    assert sent.headers["authorization"].startswith("Basic ")
    assert result.external_ids == ["SM0123456789abcdef0123456789abcdef"]
    assert result.status == "sent"  # Twilio has it: "queued" at Twilio is sent to us
    assert result.metadata == {"encoding": "GSM-7", "segments": 1}


@pytest.mark.anyio
async def test_send_with_messaging_service_and_api_key(samples: Any) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http, from_number=None, messaging_service_sid="MG123",
                       api_key_sid="SKabc", api_key_secret="key-secret")
        with respx.mock() as router:
            route = router.post(API).mock(return_value=httpx.Response(201, json=samples.json(
                "twilio_send_created")))
            await adapter.send(outbound(TextPart(text="hi")), [TextPart(text="hi")])
    sent = route.calls.last.request
    form = dict(parse_qsl(sent.content.decode()))
    assert form["MessagingServiceSid"] == "MG123" and "From" not in form
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"SKabc:key-secret").decode()
    assert adapter.thread_key_for(Address(channel="sms", handle="+14155550100")) == "+14155550100|MG123"


def test_settings_need_a_sender() -> None:
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioSmsAdapter.Settings.model_validate({"account_sid": SID, "auth_token": TOKEN})


@pytest.mark.anyio
async def test_mms_and_links(samples: Any) -> None:
    image = MediaPart(kind="image", url="https://cdn.example.test/box.jpg", caption="box")
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            route = router.post(API).mock(return_value=httpx.Response(201, json=samples.json(
                "twilio_send_created")))
            result = await adapter.send(outbound(image), [TextPart(text="see"), image])
            us = parse_qs(route.calls.last.request.content.decode())
            await adapter.send(outbound(image, to="+447700900001"), [TextPart(text="see"), image])
            uk = parse_qs(route.calls.last.request.content.decode())
            with pytest.raises(UnsupportedFeatureError):
                await adapter.send(outbound(image), [MediaPart(kind="image", blob_key="b1")])
    assert us["MediaUrl"] == ["https://cdn.example.test/box.jpg"] and result.metadata["mms"]
    assert "MediaUrl" not in uk and uk["Body"] == ["see\n\nbox: https://cdn.example.test/box.jpg"]


@pytest.mark.anyio
async def test_send_splits_past_max_segments(samples: Any) -> None:
    text = "Lorem ipsum dolor sit amet. " * 40  # 1,120 GSM-7 characters: 8 parts
    async with httpx.AsyncClient() as http:
        adapter = make(http, max_segments=3)
        with respx.mock() as router:
            answers = iter(range(100))
            route = router.post(API).mock(side_effect=lambda _r: httpx.Response(
                201, json={**samples.json("twilio_send_created"), "sid": f"SM{next(answers)}"}))
            result = await adapter.send(outbound(TextPart(text=text)), [TextPart(text=text)])
    bodies = [dict(parse_qsl(c.request.content.decode()))["Body"] for c in route.calls]
    assert len(bodies) == 3 and result.external_ids == ["SM0", "SM1", "SM2"]
    assert result.metadata["segments"] == 8 and len(result.metadata["sms"]) == 3
    refusing = make(max_segments=3, max_segments_action="refuse")
    with pytest.raises(RejectedError):
        await refusing.send(outbound(TextPart(text=text)), [TextPart(text=text)])


@pytest.mark.anyio
@pytest.mark.parametrize(("sample", "status", "error", "code"), [
    ("twilio_error_21610", 400, OptedOutError, None),
    ("twilio_error_21211", 400, RejectedError, "21211"),
    ("twilio_error_20429", 429, RateLimitedError, "20429"),
    ("twilio_error_20003", 401, AuthenticationError, "20003"),
])
async def test_error_codes(samples: Any, sample: str, status: int, error: type, code: str | None) -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(API).mock(return_value=httpx.Response(status, json=samples.json(sample),
                                                              headers={"Retry-After": "3"}))
            with pytest.raises(error) as info:
                await adapter.send(outbound(TextPart(text="hi")), [TextPart(text="hi")])
    if code is not None:
        assert info.value.vendor_code == code
    if error is RateLimitedError:
        assert info.value.retry_after == 3.0 and info.value.retryable
    assert TOKEN not in str(info.value)


@pytest.mark.anyio
async def test_rate_limited_code_without_http_429() -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(API).mock(return_value=httpx.Response(400, json={"code": 20429, "message": "slow"}))
            with pytest.raises(RateLimitedError) as info:
                await adapter.send(outbound(TextPart(text="hi")), [TextPart(text="hi")])
    assert info.value.retry_after is None


@pytest.mark.anyio
async def test_server_error_is_retryable() -> None:
    async with httpx.AsyncClient() as http:
        adapter = make(http)
        with respx.mock() as router:
            router.post(API).mock(return_value=httpx.Response(503, text="down"))
            with pytest.raises(ProviderError) as info:
                await adapter.send(outbound(TextPart(text="hi")), [TextPart(text="hi")])
    assert info.value.retryable and info.value.status_code == 503


def test_passive_twiml(samples: Any) -> None:
    adapter = make()
    reply = outbound(TextPart(text="Thanks <3 & see you"))
    inbound = outbound(TextPart(text="x"))
    response = adapter.passive_response(WebhookRequest("POST", URL), inbound, reply,
                                        [TextPart(text="Thanks <3 & see you\x01")])
    assert response is not None
    assert response.body == (b'<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>'
                             b"Thanks &lt;3 &amp; see you</Body></Message></Response>")
    assert reply.metadata == {"encoding": "GSM-7", "segments": 1}


@pytest.mark.anyio
async def test_get_webhooks(hub: Any, webhook_client: httpx.AsyncClient, samples: Any) -> None:
    from urllib.parse import urlencode

    url = f"{URL}?{urlencode(samples.form('twilio_inbound_sms'))}"
    signature = twilio_signature(TOKEN, url, [])
    response = await webhook_client.get(url[len(PUBLIC_URL):], headers={"x-twilio-signature": signature})
    assert response.status_code == 200 and b"<Response>" in response.content
    await make().stop()
    for _ in range(200):
        conversations = await hub.store.list_conversations()
        if conversations and await hub.store.list_messages(conversations[0].id):
            break
        await asyncio.sleep(0.02)
    (conversation,) = await hub.store.list_conversations()
    (msg,) = await hub.store.list_messages(conversation.id)
    assert msg.text.startswith("Hi! My order")
    bad = await webhook_client.get(url[len(PUBLIC_URL):], headers={"x-twilio-signature": "x" + signature})
    assert bad.status_code == 403


@pytest.mark.anyio
async def test_retry_of_a_split_message_skips_accepted_parts(samples: Any) -> None:
    text = "Lorem ipsum dolor sit amet. " * 40
    async with httpx.AsyncClient() as http:
        adapter = make(http, max_segments=3)
        answers = iter([httpx.Response(201, json={"sid": "SM-a", "status": "queued"}),
                        httpx.Response(503, text="down"),
                        httpx.Response(201, json={"sid": "SM-b", "status": "queued"}),
                        httpx.Response(201, json={"sid": "SM-c", "status": "queued"})])
        with respx.mock() as router:
            route = router.post(API).mock(side_effect=lambda _r: next(answers))
            with pytest.raises(ProviderError) as info:
                await adapter.send(outbound(TextPart(text=text)), [TextPart(text=text)])
            assert info.value.retryable
            result = await adapter.send(outbound(TextPart(text=text)), [TextPart(text=text)])
    bodies = [dict(parse_qsl(c.request.content.decode()))["Body"] for c in route.calls]
    assert result.external_ids == ["SM-a", "SM-b", "SM-c"]
    assert len(bodies) == 4 and bodies[1] == bodies[2] and bodies[0] != bodies[2]
