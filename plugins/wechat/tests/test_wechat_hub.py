# ruff: noqa: RUF001 - Chinese text keeps its full-width punctuation
"""The adapter inside a hub: passive replies, windows, templates and receipts, opt-out, media."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_wechat import (
    WeChatCrypto,
    _plugin,
    decode_aes_key,
    parse_xml,
    sha1_signature,
    signed_webhook,
)

from omnichannel_sdk import (
    Hub,
    OptedOutError,
    Part,
    TemplatePart,
    TextPart,
    WebhookRequest,
    WindowClosedError,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL

SAMPLES = Path(__file__).parent / "samples"
APP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
API = "https://api.weixin.qq.com"
URL = f"{PUBLIC_URL}/webhooks/wx"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
pytestmark = pytest.mark.anyio


class AutoReply:
    @hookimpl
    def omni_inbound_passive_reply(self, message: Any) -> list[Part] | None:
        if message.text.startswith("你好"):
            return [TextPart(text="您好！客服马上就到 ]]> <ok>")]
        return None


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["channels"]["wx"] = {"adapter": "wechat-mp", "app_id": APP_ID, "app_secret": "s3cret",
                                     "token": TOKEN, "encoding_aes_key": AES_KEY}
    omni_config["channels"]["plain"] = {"adapter": "wechat-mp", "app_id": APP_ID, "app_secret": "s3cret",
                                        "token": TOKEN}
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.extend([_plugin, AutoReply()])
    return register_plugin


@pytest.fixture
def wechat_api() -> Any:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(return_value=httpx.Response(
            200, json={"access_token": "ACCESS", "expires_in": 7200}))
        yield router


def crypto() -> WeChatCrypto:
    return WeChatCrypto(decode_aes_key(AES_KEY), APP_ID)


async def post(client: httpx.AsyncClient, request: WebhookRequest) -> httpx.Response:
    return await client.post(request.url[len(PUBLIC_URL):], content=request.body,
                             headers={"content-type": "text/xml"})


async def test_handshake_through_the_gateway(webhook_client: httpx.AsyncClient) -> None:
    ts, nonce = "1700000000", "42"
    sig = sha1_signature(TOKEN, ts, nonce)
    good = await webhook_client.get(f"/webhooks/wx?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=abc")
    # the clock-skew check refuses a handshake signed long ago
    assert good.status_code == 403
    import time

    ts = str(int(time.time()))
    sig = sha1_signature(TOKEN, ts, nonce)
    good = await webhook_client.get(f"/webhooks/wx?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=abc")
    assert good.status_code == 200 and good.text == "abc"
    bad = await webhook_client.get(
        f"/webhooks/wx?signature={'0' * 40}&timestamp={ts}&nonce={nonce}&echostr=abc")
    assert bad.status_code == 403


async def test_passive_reply_is_sealed_in_safe_mode(hub: Hub, webhook_client: httpx.AsyncClient,
                                                     wechat_api: respx.MockRouter) -> None:
    request = signed_webhook(URL, TOKEN, (SAMPLES / "text.xml").read_bytes(), crypto=crypto())
    response = await post(webhook_client, request)
    assert response.status_code == 200
    envelope = parse_xml(response.content)
    assert envelope["MsgSignature"] == sha1_signature(TOKEN, envelope["TimeStamp"], envelope["Nonce"],
                                                      envelope["Encrypt"])
    reply = parse_xml(crypto().decrypt(envelope["Encrypt"]))
    assert reply["MsgType"] == "text" and reply["Content"] == "您好！客服马上就到 ]]> <ok>"
    assert reply["ToUserName"] == OPENID and reply["FromUserName"] == "gh_7f083739789a"
    (conversation,) = await hub.store.list_conversations()
    messages = await hub.store.list_messages(conversation.id)
    assert [m.direction for m in messages] == ["inbound", "outbound"]
    # WeChat's retry of the same message stores nothing and answers success
    again = await post(webhook_client, request)
    assert again.text == "success"
    assert len(await hub.store.list_messages(conversation.id)) == 2


async def test_passive_reply_plaintext_mode(webhook_client: httpx.AsyncClient,
                                            wechat_api: respx.MockRouter) -> None:
    request = signed_webhook(f"{PUBLIC_URL}/webhooks/plain", TOKEN, (SAMPLES / "text.xml").read_bytes())
    response = await post(webhook_client, request)
    assert parse_xml(response.content)["Content"].startswith("您好")


async def test_no_reply_answers_success(webhook_client: httpx.AsyncClient,
                                        wechat_api: respx.MockRouter) -> None:
    request = signed_webhook(URL, TOKEN, (SAMPLES / "link.xml").read_bytes(), crypto=crypto())
    response = await post(webhook_client, request)
    assert response.status_code == 200 and response.text == "success"


async def test_window_template_and_receipt(hub: Hub, webhook_client: httpx.AsyncClient,
                                           wechat_api: respx.MockRouter) -> None:
    conversation = await hub.start_conversation("wx", OPENID)
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="hello?")
    wechat_api.post(f"{API}/cgi-bin/message/template/send").mock(return_value=httpx.Response(
        200, json={"errcode": 0, "errmsg": "ok", "msgid": 200163836}))
    sent = await hub.send(conversation.id, parts=[TemplatePart(name="TPL", params={"first": "hi"})],
                          wait=True)
    assert sent.status == "sent" and sent.external_id == "200163836"
    receipt = signed_webhook(URL, TOKEN, (SAMPLES / "event_template_finish.xml").read_bytes(),
                             crypto=crypto())
    assert (await post(webhook_client, receipt)).text == "success"
    stored = await hub.store.get_message(sent.id)
    assert stored is not None and stored.status == "delivered"


async def test_window_closed_by_wechat_fails_without_retries(hub: Hub, webhook_client: httpx.AsyncClient,
                                                             wechat_api: respx.MockRouter) -> None:
    send = wechat_api.post(f"{API}/cgi-bin/message/custom/send").mock(return_value=httpx.Response(
        200, json={"errcode": 45015, "errmsg": "response out of time limit"}))
    # written just now (the window runs from CreateTime): WeChat's own refusal is what is tested
    link = (SAMPLES / "link.xml").read_bytes().replace(b"1700000070", str(int(time.time())).encode())
    await post(webhook_client, signed_webhook(URL, TOKEN, link, crypto=crypto()))
    (conversation,) = await hub.store.list_conversations()
    sent = await hub.send(conversation.id, text="您好", wait=True)
    assert sent.status == "failed" and sent.error is not None and sent.error.vendor_code == "45015"
    assert send.call_count == 1
    body = send.calls.last.request.content
    assert orjson.loads(body)["text"]["content"] == "您好" and b"\\u" not in body


async def test_unsubscribe_opts_out(hub: Hub, webhook_client: httpx.AsyncClient,
                                    wechat_api: respx.MockRouter) -> None:
    request = signed_webhook(URL, TOKEN, (SAMPLES / "event_unsubscribe.xml").read_bytes(), crypto=crypto())
    assert (await post(webhook_client, request)).text == "success"
    (conversation,) = await hub.store.list_conversations()
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and "wechat" in contact.opted_out
    with pytest.raises(OptedOutError):
        await hub.send(conversation.id, parts=[TemplatePart(name="TPL")])


async def test_voice_media_lands_in_the_blob_store(hub: Hub, webhook_client: httpx.AsyncClient,
                                                   wechat_api: respx.MockRouter) -> None:
    media = wechat_api.get(f"{API}/cgi-bin/media/get").mock(return_value=httpx.Response(
        200, content=b"#!AMR\n0123", headers={"content-type": "audio/amr"}))
    request = signed_webhook(URL, TOKEN, (SAMPLES / "voice_recognition.xml").read_bytes(), crypto=crypto())
    await post(webhook_client, request)
    (conversation,) = await hub.store.list_conversations()
    for _ in range(100):
        (stored,) = await hub.store.list_messages(conversation.id)
        part = stored.parts[0]
        if getattr(part, "blob_key", None):
            break
        await asyncio.sleep(0.02)
    assert part.blob_key and await hub.blobs.get(part.blob_key) == b"#!AMR\n0123"  # type: ignore[union-attr]
    params = media.calls.last.request.url.params
    assert params["access_token"] == "ACCESS" and params["media_id"] == "voice_media_id_02"
    assert stored.text == "腾讯微信团队"


async def test_media_error_document_is_retried_not_stored(
        hub: Hub, webhook_client: httpx.AsyncClient, wechat_api: respx.MockRouter) -> None:
    answers = iter([
        httpx.Response(200, json={"errcode": 40001, "errmsg": "invalid credential"}),
        httpx.Response(200, content=b"#!AMR\n4567", headers={"content-type": "audio/amr"}),
    ])
    wechat_api.get(f"{API}/cgi-bin/media/get").mock(side_effect=lambda _r: next(answers))
    request = signed_webhook(URL, TOKEN, (SAMPLES / "voice_recognition.xml").read_bytes(), crypto=crypto())
    await post(webhook_client, request)
    (conversation,) = await hub.store.list_conversations()
    for _ in range(200):
        (stored,) = await hub.store.list_messages(conversation.id)
        part = stored.parts[0]
        if getattr(part, "blob_key", None):
            break
        await asyncio.sleep(0.02)
    assert part.blob_key and await hub.blobs.get(part.blob_key) == b"#!AMR\n4567"  # type: ignore[union-attr]


async def test_demo_hooks(hub: Hub) -> None:
    channels = _plugin.DEMO.channels("http://127.0.0.1:8000")
    assert channels["demo-wechat"]["api_base"] == "http://127.0.0.1:8000/demo/vendor/wechat-mp"
    requests = _plugin.DEMO.simulate("wx", "wechat-mp", PUBLIC_URL)
    assert requests and _plugin.DEMO.simulate("wx", "other", PUBLIC_URL) is None
    assert _plugin.DEMO.vendor("wechat-mp", hub) is not None
