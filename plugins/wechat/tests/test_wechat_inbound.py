# ruff: noqa: RUF001 - Chinese text keeps its full-width punctuation
"""Signatures, safe-mode crypto, XML safety and the normalization of every message type."""

from __future__ import annotations

import base64
import os
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from omnichannel_wechat import (
    WeChatAdapter,
    WeChatCrypto,
    XmlError,
    build_xml,
    decode_aes_key,
    parse_xml,
    sha1_signature,
    signed_webhook,
)
from omnichannel_wechat._crypto import CryptoError

from omnichannel_sdk import (
    AdapterContext,
    EventPart,
    InboundMessage,
    LocationPart,
    MediaPart,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing._contract import MemoryKV

SAMPLES = Path(__file__).parent / "samples"
APP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
URL = "https://hooks.example.test/webhooks/wx"


def make(**settings: Any) -> WeChatAdapter:
    values = {"app_id": APP_ID, "app_secret": "secret", "token": TOKEN, **settings}
    return WeChatAdapter(WeChatAdapter.Settings.model_validate(values), AdapterContext(
        key="wx", public_url="https://hooks.example.test", http=httpx.AsyncClient(), kv=MemoryKV()))


def crypto() -> WeChatCrypto:
    return WeChatCrypto(decode_aes_key(AES_KEY), APP_ID)


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.xml").read_bytes()


def one(adapter: WeChatAdapter, request: WebhookRequest) -> InboundMessage | StatusUpdate:
    adapter.verify(request)
    result = adapter.parse(request)
    assert not result.failures and len(result.items) == 1
    return result.items[0]


# -- handshake and signatures --------------------------------------------------------------------


def test_handshake_echoes_echostr() -> None:
    ts, nonce = str(int(time.time())), "1514711492"
    query = urlencode({"signature": sha1_signature(TOKEN, ts, nonce), "timestamp": ts,
                       "nonce": nonce, "echostr": "7234587624871"})
    response = make().handshake(WebhookRequest("GET", f"{URL}?{query}"))
    assert response.status == 200 and response.body == b"7234587624871"


@pytest.mark.parametrize("change", ["signature", "timestamp", "nonce", "missing"])
def test_handshake_refuses_bad_signature(change: str) -> None:
    ts, nonce = str(int(time.time())), "1514711492"
    params = {"signature": sha1_signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
              "echostr": "x"}
    if change == "missing":
        del params["signature"]
    elif change == "timestamp":
        params["timestamp"] = str(int(ts) - 1)
    else:
        params[change] = params[change][:-1] + ("0" if params[change][-1] != "0" else "1")
    with pytest.raises(SignatureError):
        make().handshake(WebhookRequest("GET", f"{URL}?{urlencode(params)}"))


def test_signature_is_sha1_of_sorted_values() -> None:
    import hashlib

    assert sha1_signature("b", "c", "a") == hashlib.sha1(b"abc").hexdigest()


def test_old_timestamp_refused_unless_disabled() -> None:
    old = str(int(time.time()) - 3600)
    request = signed_webhook(URL, TOKEN, sample("text"), timestamp=old)
    with pytest.raises(SignatureError):
        make().verify(request)
    make(max_clock_skew=None).verify(request)


def test_safe_mode_signs_the_body() -> None:
    adapter = make(encoding_aes_key=AES_KEY)
    request = signed_webhook(URL, TOKEN, sample("text"), crypto=crypto())
    adapter.verify(request)
    envelope = parse_xml(request.body)
    forged = build_xml({"ToUserName": "gh", "Encrypt": crypto().encrypt(b"<xml/>")})
    assert envelope["Encrypt"]
    with pytest.raises(SignatureError):
        adapter.verify(WebhookRequest("POST", request.url, request.headers, forged))


def test_safe_mode_refuses_plaintext_requests() -> None:
    with pytest.raises(SignatureError):
        make(encoding_aes_key=AES_KEY).verify(signed_webhook(URL, TOKEN, sample("text")))


def test_plaintext_mode_refuses_encrypted_requests() -> None:
    with pytest.raises(SignatureError):
        make().verify(signed_webhook(URL, TOKEN, sample("text"), crypto=crypto()))


def test_compatible_mode_uses_the_encrypted_copy() -> None:
    # compatible mode: plaintext fields beside Encrypt; only the signed, encrypted copy counts
    adapter = make(encoding_aes_key=AES_KEY)
    request = signed_webhook(URL, TOKEN, sample("text"), crypto=crypto())
    envelope = parse_xml(request.body)
    body = build_xml({**parse_xml(sample("text")), "Content": "forged", "Encrypt": envelope["Encrypt"]})
    item = one(adapter, WebhookRequest("POST", request.url, request.headers, body))
    assert isinstance(item, InboundMessage) and item.parts[0].text.startswith("你好")


# -- crypto ---------------------------------------------------------------------------------------


def test_aes_key_is_43_base64_characters() -> None:
    assert len(decode_aes_key(AES_KEY)) == 32
    for bad in (AES_KEY[:-1], AES_KEY + "A", "!" * 43):
        with pytest.raises(ValueError):
            decode_aes_key(bad)
    with pytest.raises(ValueError) as info:
        WeChatAdapter.Settings.model_validate({"app_id": APP_ID, "app_secret": "s", "token": "t",
                                               "encoding_aes_key": AES_KEY[:-1]})
    assert AES_KEY[:-1] not in str(info.value)


def test_encrypt_layout_and_32_byte_padding() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = decode_aes_key(AES_KEY)
    xml = "<xml><Content>中文</Content></xml>".encode()
    encrypted = base64.b64decode(crypto().encrypt(xml, nonce16=b"0123456789abcdef"))
    assert len(encrypted) % 32 == 0
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(encrypted) + decryptor.finalize()
    pad = plain[-1]
    assert 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad
    assert plain[:16] == b"0123456789abcdef"
    assert struct.unpack(">I", plain[16:20])[0] == len(xml)
    assert plain[20:20 + len(xml)] == xml and plain[20 + len(xml):-pad] == APP_ID.encode()


def test_decrypt_checks_app_id_padding_and_length() -> None:
    other = WeChatCrypto(decode_aes_key(AES_KEY), "wxSomeoneElse")
    with pytest.raises(CryptoError, match="AppID"):
        crypto().decrypt(other.encrypt(b"<xml/>"))
    for bad in ("not base64!", base64.b64encode(b"x" * 15).decode(), ""):
        with pytest.raises(CryptoError):
            crypto().decrypt(bad)
    raw = bytearray(base64.b64decode(crypto().encrypt(b"<xml/>")))
    raw[-1] ^= 0x55  # breaks the padding of the last block
    with pytest.raises(CryptoError):
        crypto().decrypt(base64.b64encode(bytes(raw)))


def test_interoperates_with_wechatpy() -> None:
    if os.environ.get("CI") == "true":
        import wechatpy.crypto  # noqa: F401 - must be installed in CI
    wechatpy_crypto = pytest.importorskip("wechatpy.crypto")
    theirs = wechatpy_crypto.WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    ts, nonce = str(int(time.time())), "87654321"
    sealed = make(encoding_aes_key=AES_KEY).seal(sample("text"), ts, nonce)
    fields = parse_xml(sealed)
    assert theirs.decrypt_message(sealed, fields["MsgSignature"], ts, nonce).encode() == sample("text")
    # and theirs into ours
    message = theirs.encrypt_message(sample("text").decode(), nonce, ts)
    envelope = parse_xml(message)
    query = urlencode({"signature": sha1_signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                       "encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]})
    body = build_xml({"ToUserName": "gh_7f083739789a", "Encrypt": envelope["Encrypt"]})
    item = one(make(encoding_aes_key=AES_KEY), WebhookRequest("POST", f"{URL}?{query}", {}, body))
    assert isinstance(item, InboundMessage) and item.external_id == "24310000000000001"


# -- XML safety -----------------------------------------------------------------------------------

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<xml><Content>&lol9;</Content></xml>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><MsgType>text</MsgType>
<Content>&e;</Content><MsgId>1</MsgId></xml>"""


@pytest.mark.parametrize("doc", [BOMB, XXE, b"<!DOCTYPE xml><xml/>", b"<xml>", b"", b"\xff\xfe<"])
def test_hostile_xml_refused_fast(doc: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(XmlError):
        parse_xml(doc)
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize("doc", [BOMB, XXE])
def test_hostile_xml_dead_letters_in_safe_mode(doc: bytes) -> None:
    adapter = make(encoding_aes_key=AES_KEY)
    request = signed_webhook(URL, TOKEN, doc, crypto=crypto())
    adapter.verify(request)
    with pytest.raises(UnparseablePayloadError):
        adapter.parse(request)


def test_deep_nesting_does_not_recurse_without_bound() -> None:
    doc = b"<xml>" + b"<a>" * 5000 + b"x" + b"</a>" * 5000 + b"</xml>"
    assert "a" in parse_xml(doc)


def test_build_xml_escapes_cdata_end_and_control_characters() -> None:
    text = "a]]>b\x00c<d>&"
    assert parse_xml(build_xml({"Content": text}))["Content"] == "a]]>bc<d>&"


# -- normalization --------------------------------------------------------------------------------


@pytest.fixture(params=["plain", "safe"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def parsed(mode: str, name: str) -> InboundMessage | StatusUpdate:
    if mode == "safe":
        return one(make(encoding_aes_key=AES_KEY), signed_webhook(URL, TOKEN, sample(name), crypto=crypto()))
    return one(make(), signed_webhook(URL, TOKEN, sample(name)))


def test_text(mode: str) -> None:
    item = parsed(mode, "text")
    assert isinstance(item, InboundMessage)
    assert item.external_id == "24310000000000001"
    assert item.sender.handle == "oia2TjjewbmiOUlr6X-1crbLOvLw"
    assert item.recipients[0].handle == "gh_7f083739789a"
    assert item.parts == [TextPart(text="你好，请问我的订单发货了吗？ <b>&amp;</b>")]
    assert item.created_at is not None and int(item.created_at.timestamp()) == 1700000000
    assert item.thread_key == f"oia2TjjewbmiOUlr6X-1crbLOvLw|{APP_ID}"


def test_image_downloads_through_media_get(mode: str) -> None:
    item = parsed(mode, "image")
    assert isinstance(item, InboundMessage)
    part = item.parts[0]
    assert isinstance(part, MediaPart) and part.kind == "image"
    assert part.url == "https://api.weixin.qq.com/cgi-bin/media/get?media_id=img_media_id_01"
    assert item.metadata["pic_url"].startswith("http://mmbiz.qpic.cn/")


def test_voice_with_and_without_recognition(mode: str) -> None:
    plain = parsed(mode, "voice")
    assert isinstance(plain, InboundMessage) and len(plain.parts) == 1
    item = parsed(mode, "voice_recognition")
    assert isinstance(item, InboundMessage)
    audio, text = item.parts
    assert isinstance(audio, MediaPart) and audio.kind == "audio" and audio.content_type == "audio/amr"
    assert audio.url and audio.url.endswith("media_id=voice_media_id_02")
    assert text == TextPart(text="腾讯微信团队")
    assert item.metadata["recognition"] == "腾讯微信团队"


@pytest.mark.parametrize("name", ["video", "shortvideo"])
def test_video(mode: str, name: str) -> None:
    item = parsed(mode, name)
    assert isinstance(item, InboundMessage)
    assert isinstance(item.parts[0], MediaPart) and item.parts[0].kind == "video"
    assert item.metadata["thumb_media_id"].startswith("thumb_media_id")


def test_location_link_file(mode: str) -> None:
    location = parsed(mode, "location")
    assert isinstance(location, InboundMessage)
    assert location.parts == [LocationPart(latitude=23.134521, longitude=113.358803, label="广州市天河区")]
    link = parsed(mode, "link")
    assert isinstance(link, InboundMessage) and "https://shop.example.cn/returns" in link.parts[0].text
    assert link.metadata["link"]["title"] == "退货政策"
    file = parsed(mode, "file")
    assert isinstance(file, InboundMessage)
    part = file.parts[0]
    assert isinstance(part, MediaPart) and part.kind == "file" and part.filename == "invoice.pdf"
    assert part.size == 48213 and file.metadata["file_key"] == "file_key_01"


def test_subscribe_events_opt_in(mode: str) -> None:
    item = parsed(mode, "event_subscribe_qrscene")
    assert isinstance(item, InboundMessage)
    ticket = item.parts[0].data["ticket"]
    assert item.parts[0] == EventPart(name="subscribe", data={"scene": "store42", "ticket": ticket})
    assert item.parts[1] == EventPart(name="opt_in")
    assert item.external_id == "event:oNewFollower0000000000000002:1700000110:subscribe"
    plain = parsed(mode, "event_subscribe")
    assert isinstance(plain, InboundMessage) and plain.parts[0] == EventPart(name="subscribe")


def test_unsubscribe_opts_out(mode: str) -> None:
    item = parsed(mode, "event_unsubscribe")
    assert isinstance(item, InboundMessage)
    assert [p.name for p in item.parts if isinstance(p, EventPart)] == ["unsubscribe", "opt_out"]


def test_menu_scan_and_location_events(mode: str) -> None:
    scan, click, view, where = (parsed(mode, n) for n in ("event_scan", "event_click", "event_view",
                                                            "event_location"))
    assert isinstance(scan, InboundMessage) and scan.parts[0].data["scene"] == "store42"
    assert isinstance(click, InboundMessage)
    assert click.parts == [EventPart(name="postback",
                                     data={"payload": "MENU_ORDER_STATUS", "source": "menu"})]
    assert isinstance(view, InboundMessage)
    assert view.parts[0].data == {"url": "https://shop.example.cn/orders", "menu_id": "412345678"}
    assert isinstance(where, InboundMessage)
    assert where.parts[0].data["latitude"] == pytest.approx(23.137466)


def test_template_job_finish_is_a_receipt(mode: str) -> None:
    ok = parsed(mode, "event_template_finish")
    assert isinstance(ok, StatusUpdate) and ok.external_id == "200163836" and ok.status == "delivered"
    failed = parsed(mode, "event_template_failed")
    assert isinstance(failed, StatusUpdate) and failed.status == "failed"
    assert failed.error is not None and failed.error.vendor_code == "failed:user block"


@pytest.mark.parametrize("fields", [
    {"MsgType": "text", "Content": "x", "MsgId": "1"},                      # no sender
    {"FromUserName": "o1", "MsgType": "text", "Content": "x"},              # no MsgId
    {"FromUserName": "o1", "MsgType": "hologram", "MsgId": "1"},            # unknown type
    {"FromUserName": "o1", "MsgType": "location", "Location_X": "999", "Location_Y": "1", "MsgId": "1"},
    {"FromUserName": "o1", "MsgType": "text", "CreateTime": "soon", "MsgId": "1"},
    {"FromUserName": "o1", "MsgType": "event", "Event": "TEMPLATESENDJOBFINISH"},
    {"FromUserName": {"a": "b"}, "MsgType": "text", "MsgId": "1"},
])
def test_unusable_fields_are_unparseable(fields: dict[str, Any]) -> None:
    request = signed_webhook(URL, TOKEN, build_xml(fields))
    with pytest.raises(UnparseablePayloadError):
        make().parse(request)


def test_query_of_signed_request_round_trips() -> None:
    request = signed_webhook(URL, TOKEN, sample("text"), crypto=crypto(), openid="o1")
    query = dict(parse_qsl(urlsplit(request.url).query))
    assert query["encrypt_type"] == "aes" and query["openid"] == "o1"


@pytest.mark.parametrize("doc", [b"<xml><a>&foo;</a></xml>", b"<xml><a>&#0;</a></xml>",
                                 b"<xml><a>x</b></xml>", b"<xml/><xml/>"])
def test_malformed_xml_refused(doc: bytes) -> None:
    with pytest.raises(XmlError):
        parse_xml(doc)


def test_predefined_entities_character_references_and_groups() -> None:
    doc = (b"<xml><A>&lt;&amp;&#x4e2d;</A><B>x<!-- c -->y</B><G><List><T>1</T></List>"
           b"<List><T>2</T></List></G></xml>")
    assert parse_xml(doc) == {"A": "<&\u4e2d", "B": "xy", "G": {"List": [{"T": "1"}, {"T": "2"}]}}


def test_the_settings_model_is_wechat_settings_for_the_adapter_and_its_parts() -> None:
    from omnichannel_wechat import WeChatAdapter
    from omnichannel_wechat._envelope import WeChatEnvelope
    from omnichannel_wechat._inbound import WeChatInbound
    from omnichannel_wechat._settings import WeChatSettings

    assert WeChatAdapter.Settings is WeChatSettings
    assert WeChatEnvelope.Settings is WeChatInbound.Settings is WeChatSettings
