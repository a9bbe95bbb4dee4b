"""Issue 11 with the built-in adapters, through the gateway on SQLite and PostgreSQL: vendor ids
with U+0000, replays inside a signature window, Amazon Transcribe over SNS, media origins,
media URLs with control characters, secrets in logs and raw storage, channel body limits."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import respx

from omnichannel_sdk import ConfigurationError, Hub, MediaPart, OmnichannelError, WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]

ROOT = Path(__file__).resolve().parents[1]
SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-guarantees"
VONAGE_SECRET = "vonage-signature-secret-guarantees"
META_SECRET = "meta-app-secret-guarantees"
META_VERIFY = "meta-verify-token-guarantees"
META_PAGE = "meta-page-token-guarantees"
MAP_SECRET = "mapping-secret-guarantees"
DG_SECRET = "deepgram-callback-secret-guarantees"
AAI_KEY = "assemblyai-key-guarantees"
AAI_SECRET = "assemblyai-webhook-secret-guarantees"
AWS_TOKEN = "transcribe-token-guarantees"
WECHAT_TOKEN = "wechat-token-guarantees"
SECRETS = (TWILIO_TOKEN, VONAGE_SECRET, META_SECRET, META_VERIFY, META_PAGE, MAP_SECRET, DG_SECRET,
           AAI_KEY, AAI_SECRET, AWS_TOKEN, WECHAT_TOKEN)


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    channels = omni_config["channels"]
    channels["twilio"] = {"adapter": "twilio-sms", "account_sid": SID, "auth_token": TWILIO_TOKEN,
                          "from_number": "+15005550006"}
    channels["vonage"] = {"adapter": "vonage-sms", "api_key": "vk", "api_secret": "vs",
                          "signature_secret": VONAGE_SECRET, "from_number": "+447700900000"}
    channels["messenger"] = {"adapter": "messenger", "app_secret": META_SECRET,
                             "verify_token": META_VERIFY, "page_access_token": META_PAGE,
                             "fetch_profiles": False}
    channels["mapped"] = {"adapter": "json-mapping", "secret": MAP_SECRET,
                          "signature_prefix": "sha256=", "items": "events", "sender": "user.id",
                          "text": "message.text"}
    channels["dg"] = {"adapter": "deepgram", "callback_secret": DG_SECRET}
    channels["aai"] = {"adapter": "assemblyai", "api_key": AAI_KEY, "webhook_secret": AAI_SECRET}
    channels["aws"] = {"adapter": "amazon-transcribe", "shared_secret": AWS_TOKEN}
    channels["wechat"] = {"adapter": "wechat-mp", "app_id": "wx0123456789abcdef",
                          "app_secret": "wechat-app-secret", "token": WECHAT_TOKEN}
    channels["web"] = {"adapter": "webchat", "secret": "webchat-secret-guarantees-0123456789",
                       "allowed_origins": ["https://shop.example.test"]}
    return omni_config


def url(key: str, **query: str) -> str:
    return f"{PUBLIC_URL}/webhooks/{key}" + (f"?{urlencode(query)}" if query else "")


# -- requests as each vendor signs them ---------------------------------------------------------


def twilio(message_sid: str, **extra: str) -> WebhookRequest:
    from omnichannel_sms._twilio import signed_request

    form = [("MessageSid", message_sid), ("AccountSid", SID), ("From", "+14155550100"),
            ("To", "+15005550006"), ("Body", "hello"), ("NumMedia", "1" if extra else "0"),
            *extra.items()]
    return signed_request(TWILIO_TOKEN, url("twilio"), form)


def vonage(message_id: str) -> WebhookRequest:
    from omnichannel_sms import signed_params

    params = signed_params(VONAGE_SECRET, {"msisdn": "447700900001", "to": "447700900000",
                                           "messageId": message_id, "text": "hello", "type": "text"})
    return WebhookRequest("POST", url("vonage"), {"content-type": "application/x-www-form-urlencoded"},
                          urlencode(params).encode())


def messenger(mid: str) -> WebhookRequest:
    from omnichannel_messenger import sign_body

    body = orjson.dumps({"object": "page", "entry": [{"id": "104417652291850", "time": 1732300000123,
                         "messaging": [{"sender": {"id": "6543210987654321"},
                                        "recipient": {"id": "104417652291850"},
                                        "timestamp": int(time.time() * 1000),
                                        "message": {"mid": mid, "text": "hello"}}]}]})
    return WebhookRequest("POST", url("messenger"), {"content-type": "application/json",
                          "x-hub-signature-256": sign_body(META_SECRET, body)}, body)


def mapped(event_id: str) -> WebhookRequest:
    import hashlib
    import hmac

    body = orjson.dumps({"events": [{"id": event_id, "user": {"id": "u1"}, "message": {"text": "hi"}}]})
    sig = "sha256=" + hmac.new(MAP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", url("mapped"), {"content-type": "application/json",
                                                  "x-signature": sig}, body)


def deepgram(request_id: str, *, in_body: bool = False) -> WebhookRequest:
    document = orjson.loads((ROOT / "plugins/voice/tests/samples/deepgram_words.json").read_bytes())
    document["metadata"]["request_id"] = request_id
    headers = {"content-type": "application/json"}
    if in_body:
        document["metadata"]["extra"] = {"callback_secret": DG_SECRET}
    else:
        token = base64.b64encode(f"omnichannel:{DG_SECRET}".encode()).decode()
        headers["authorization"] = f"Basic {token}"
    return WebhookRequest("POST", url("dg"), headers, orjson.dumps(document))


IDS_WITH_NUL = {"messenger": messenger, "twilio": twilio, "mapped": mapped, "vonage": vonage,
                "dg": deepgram}


async def post(client: httpx.AsyncClient, request: WebhookRequest) -> httpx.Response:
    return await client.request(request.method, request.url.replace(PUBLIC_URL, ""),
                                content=request.body, headers=request.headers)


async def stored_ids(hub: Hub, key: str) -> list[str]:
    found = []
    for conversation in await hub.store.list_conversations():
        found += [m.external_id or "" for m in await hub.store.list_messages(conversation.id)
                  if m.channel_key == key]
    return found


async def raw_rows(hub: Hub) -> list[str]:
    rows = await hub.store._read(lambda tx: tx.fetchall(
        "SELECT url, headers, body FROM raw_payloads"))
    return [f"{r[0]} {r[1]} {bytes(r[2]).decode('utf-8', 'replace')}" for r in rows]


def is_pg(hub: Hub) -> bool:
    return type(hub.store).__name__ == "PostgresStore"


# -- U+0000 in vendor ids ------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(IDS_WITH_NUL))
async def test_nul_in_a_vendor_id_is_kept_never_a_500(hub: Hub, webhook_client: httpx.AsyncClient,
                                                      key: str) -> None:
    request = IDS_WITH_NUL[key]("id\x00with-nul")
    with respx.mock(assert_all_called=False) as vendor:
        vendor.route(host="hooks.example.test").pass_through()
        vendor.route().respond(404)
        first = await post(webhook_client, request)
        again = await post(webhook_client, request)  # the vendor's retry
    assert first.status_code == again.status_code and first.status_code in (200, 204)
    await asyncio.sleep(0.05)
    letters = [d for d in await hub.store.list_dead_letters() if d.channel_key == key]
    stored = await stored_ids(hub, key)
    if is_pg(hub):  # PostgreSQL cannot hold U+0000 in text: the request is dead-lettered whole
        assert stored == [] and letters
        raw = await hub.store.get_raw(letters[0].raw_id or "")
        assert raw is not None and raw.body == request.body
        assert "\x00" not in letters[0].error
    else:
        assert letters or stored  # SQLite holds it: stored (once), or dead-lettered
        assert len(stored) <= 1


async def test_a_nul_item_does_not_fail_the_other_requests(hub: Hub,
                                                           webhook_client: httpx.AsyncClient) -> None:
    requests = [twilio(f"SMok{n:02d}") for n in range(10)]
    requests.insert(4, twilio("SMbad\x00"))
    answers = await asyncio.gather(*[post(webhook_client, r) for r in requests])
    assert {a.status_code for a in answers} == {200}
    assert sorted(await stored_ids(hub, "twilio")) == sorted(
        [f"SMok{n:02d}" for n in range(10)] + ([] if is_pg(hub) else ["SMbad\x00"]))


# -- replays inside a signature window -----------------------------------------------------------


def wechat(body_text: str, *, timestamp: str | None = None, nonce: str = "4242") -> WebhookRequest:
    from omnichannel_wechat._simulate import signed_webhook

    xml = (f"<xml><ToUserName>gh_x</ToUserName><FromUserName>oOPENID</FromUserName>"
           f"<CreateTime>{int(time.time())}</CreateTime><MsgType>text</MsgType>"
           f"<Content>{body_text}</Content><MsgId>{abs(hash(body_text)) % 10**12}</MsgId></xml>").encode()
    return signed_webhook(url("wechat"), WECHAT_TOKEN, xml, timestamp=timestamp, nonce=nonce)


async def test_wechat_plaintext_signed_query_carries_one_body_only(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    stamp = str(int(time.time()))
    genuine = wechat("refund please", timestamp=stamp)
    assert (await post(webhook_client, genuine)).status_code == 200
    assert (await post(webhook_client, genuine)).status_code == 200  # WeChat's own retry
    forged = WebhookRequest("POST", genuine.url, genuine.headers, wechat("send it to me").body)
    assert (await post(webhook_client, forged)).status_code == 403
    texts = []
    for conversation in await hub.store.list_conversations():
        texts += [m.text for m in await hub.store.list_messages(conversation.id)]
    assert texts == ["refund please"]


async def test_vonage_retry_passes_and_its_nonce_is_remembered(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    request = vonage("0A0000001234567B")
    assert (await post(webhook_client, request)).status_code == 204
    assert (await post(webhook_client, request)).status_code == 204
    assert await stored_ids(hub, "vonage") == ["0A0000001234567B"]
    assert await hub.store.kv_scan("replay:vonage:vonage")


# -- Amazon Transcribe: only signed data steers a transcript ------------------------------------


async def _sms_message(hub: Hub, client: httpx.AsyncClient) -> Any:
    assert (await post(client, twilio("SMtarget"))).status_code == 200
    [conversation] = [c for c in await hub.store.list_conversations() if c.channel_key == "twilio"]
    [message] = await hub.store.list_messages(conversation.id)
    return message


def aws(query: dict[str, str], *, job: str = "voicemail-1", mode: str = "signature") -> WebhookRequest:
    from omnichannel_voice import transcribe_signature

    document = orjson.loads((ROOT / "plugins/voice/tests/samples/amazon_output.json").read_bytes())
    document["jobName"] = job
    body = orjson.dumps(document)
    headers = {"content-type": "application/json"}
    if mode == "signature":
        headers["x-transcribe-signature"] = transcribe_signature(AWS_TOKEN, body)
    else:
        headers["x-transcribe-token"] = AWS_TOKEN
    return WebhookRequest("POST", url("aws", **query), headers, body)


async def test_unsigned_query_never_puts_a_transcript_on_a_message(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    target = await _sms_message(hub, webhook_client)
    # the body is signed, the query is not: a replay to ?message=<an SMS> must not attach
    forged = aws({"message": target.id, "from": "+14155550100"}, job="voicemail-2")
    assert (await post(webhook_client, forged)).status_code == 200
    await asyncio.sleep(0.1)
    again = await hub.store.get_message(target.id)
    assert again is not None and [p.type for p in again.parts] == ["text"]
    [standalone] = [m for c in await hub.store.list_conversations() if c.channel_key == "aws"
                    for m in await hub.store.list_messages(c.id)]
    assert standalone.sender.handle == "unknown-caller"  # ?from= was not trusted either
    # even an authenticated hint never lands a transcript on a text-only SMS
    token = aws({"message": target.id}, job="voicemail-3", mode="token")
    assert (await post(webhook_client, token)).status_code == 200
    await asyncio.sleep(0.1)
    again = await hub.store.get_message(target.id)
    assert again is not None and [p.type for p in again.parts] == ["text"]


# -- media origins and URLs ----------------------------------------------------------------------


async def _media_outcome(hub: Hub, client: httpx.AsyncClient, sid: str, media: str) -> Any:
    with respx.mock(assert_all_called=False) as vendor:
        vendor.route(host="hooks.example.test").pass_through()
        route = vendor.route().respond(200, content=b"\x89PNG....", headers={"content-type": "image/png"})
        answer = await post(client, twilio(sid, MediaUrl0=media, MediaContentType0="image/png"))
        assert answer.status_code == 200
        for _ in range(200):
            if await hub.store.pending_jobs() == 0:
                break
            await asyncio.sleep(0.02)
        return route


@pytest.mark.parametrize("media", [
    "http://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
    "https://api.twilio.com:8443/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
    "ftp://api.twilio.com/x",
])
async def test_twilio_credentials_only_to_the_exact_https_origin(
        hub: Hub, webhook_client: httpx.AsyncClient, media: str) -> None:
    route = await _media_outcome(hub, webhook_client, "SMmedia1", media)
    assert not route.called  # never fetched: no Basic auth went to another port or over http
    assert await hub.store.pending_jobs() == 0
    assert any("not declared" in d.error or "nothing to download" in d.error
               for d in await hub.store.list_dead_letters())


async def test_twilio_media_from_its_api_origin_is_fetched_with_credentials(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    media = "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1"
    route = await _media_outcome(hub, webhook_client, "SMmedia2", media)
    assert route.called and route.calls.last.request.headers["authorization"].startswith("Basic ")


async def test_media_url_with_control_characters_ends_in_a_dead_letter(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    route = await _media_outcome(hub, webhook_client, "SMctrl",
                                 "https://api.twilio.com/2010-04-01/x\x01y\r\nHost: evil")
    assert not route.called and await hub.store.pending_jobs() == 0
    assert any("control characters" in d.error for d in await hub.store.list_dead_letters())
    [message] = [m for c in await hub.store.list_conversations() if c.channel_key == "twilio"
                 for m in await hub.store.list_messages(c.id)]
    assert any(isinstance(p, MediaPart) for p in message.parts)  # the message itself is kept


async def test_plain_http_media_on_loopback_needs_the_test_setting(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    stub = "http://127.0.0.1:9"
    omni_config["channels"]["twilio"]["api_base"] = stub
    for allowed in (False, True):
        omni_config["omnichannel"]["media_allow_http_loopback"] = allowed
        async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
            transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                route = await _media_outcome(hub, client, f"SMloop{allowed}", f"{stub}/media/1")
                assert route.called is allowed


# -- secrets: never in a log line or a stored raw request ----------------------------------------


async def test_no_configured_secret_in_logs_or_raw_storage(
        hub: Hub, webhook_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with respx.mock(assert_all_called=False) as vendor:
        vendor.route(host="hooks.example.test").pass_through()
        vendor.route().respond(500)
        handshake = await webhook_client.get("/webhooks/messenger", params={
            "hub.mode": "subscribe", "hub.verify_token": META_VERIFY, "hub.challenge": "42"})
        assert handshake.status_code == 200 and handshake.text == "42"
        wrong = await webhook_client.get("/webhooks/messenger", params={
            "hub.mode": "subscribe", "hub.verify_token": META_VERIFY + "x", "hub.challenge": "1"})
        assert wrong.status_code == 403
        requests = [twilio("SMsecret"), vonage("0B00000000000001"), messenger("m_secret"),
                    mapped("e-secret"), deepgram("dg-basic"), deepgram("dg-body", in_body=True),
                    aws({"token": AWS_TOKEN}, job="voicemail-4", mode="token"),
                    WebhookRequest("POST", url("aai"), {"content-type": "application/json",
                                   "x-omnichannel-webhook-secret": AAI_SECRET},
                                   b'{"transcript_id": "t-1", "status": "completed"}'),
                    WebhookRequest("POST", url("dg"), {"authorization": "Basic " + base64.b64encode(
                        f"omnichannel:{DG_SECRET}".encode()).decode()}, b"not json")]
        for request in requests:
            assert (await post(webhook_client, request)).status_code in (200, 204), request
        await asyncio.sleep(0.2)
    rows = await raw_rows(hub)
    assert len(rows) >= len(requests) - 1
    # the SDK's own log lines (httpx's request lines are the client's: helper `defaults` owns them)
    ours = [f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
            if r.name.startswith("omnichannel")]
    assert ours
    everything = "\n".join([*rows, *ours, *(d.error for d in await hub.store.list_dead_letters())])
    leaked = [s for s in SECRETS if s in everything]
    assert not leaked, leaked
    assert "<redacted>" in "\n".join(rows)


def test_a_mistyped_bus_url_never_echoes_its_password(omni_config: dict[str, Any],
                                                      register_plugin: list[object]) -> None:
    omni_config["omnichannel"]["bus"] = "nast://omni:s3cret-bus-pw@127.0.0.1:4222"
    with pytest.raises(ConfigurationError) as caught:
        Hub.from_config(omni_config, plugins=register_plugin)
    assert "s3cret-bus-pw" not in str(caught.value) and "omni" in str(caught.value)


async def test_an_unreachable_bus_never_echoes_its_password(omni_config: dict[str, Any],
                                                            register_plugin: list[object]) -> None:
    from omnichannel_sdk.testing import free_port

    omni_config["omnichannel"]["bus"] = f"nats://omni:s3cret-bus-pw@127.0.0.1:{free_port()}"
    hub = Hub.from_config(omni_config, plugins=register_plugin)
    with pytest.raises(OmnichannelError) as caught:
        await hub.bus.open()
    assert "s3cret-bus-pw" not in str(caught.value)


# -- one body limit per route kind ---------------------------------------------------------------


async def test_channel_routes_have_a_streamed_body_limit(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = await webhook_client.post("/channels/web/session", content=big,
                                         headers={"content-type": "application/json"})
    assert declared.status_code == 413

    async def chunks() -> Any:  # no Content-Length: the limit applies while it streams
        for _ in range(64):
            yield b"x" * 65536

    streamed = await webhook_client.post("/channels/web/session", content=chunks(),
                                         headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    small = await webhook_client.post("/channels/web/session", json={"name": "Ana"},
                                      headers={"origin": "https://shop.example.test"})
    assert small.status_code == 200
    assert (await webhook_client.post("/webhooks/mapped", content=b"x" * (5 * 1024 * 1024))).status_code == 413


def test_sns_timestamps_are_checked() -> None:
    """A validly signed 2019 notification is refused (see plugins/voice/tests/test_sns.py for
    the SNS-signed cases through a hub); here the guard's rule alone."""
    from omnichannel_sdk import ReplayGuard, SignatureError
    from omnichannel_sdk.testing._contract import MemoryKV

    guard = ReplayGuard(MemoryKV(), "sns:aws", tolerance=3600)
    with pytest.raises(SignatureError):
        guard.check_time(dt.datetime(2019, 5, 1, tzinfo=dt.UTC))
    with pytest.raises(SignatureError):
        guard.check_time(dt.datetime(2019, 5, 1))  # no zone: refused, never guessed
    assert guard.check_time(dt.datetime.now(dt.UTC)) > 0
