"""Hypothesis: nothing but our typed errors comes out of the XML reader, the decryptor, verify
and parse, whatever the input."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_wechat import (
    WeChatAdapter,
    WeChatCrypto,
    XmlError,
    build_xml,
    decode_aes_key,
    parse_xml,
    signed_webhook,
)
from omnichannel_wechat._crypto import CryptoError

from omnichannel_sdk import AdapterContext, PayloadError, WebhookRequest
from omnichannel_sdk.testing._contract import MemoryKV

APP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
URL = "https://hooks.example.test/webhooks/wx"
CRYPTO = WeChatCrypto(decode_aes_key(AES_KEY), APP_ID)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(**extra: Any) -> WeChatAdapter:
    values = {"app_id": APP_ID, "app_secret": "s", "token": TOKEN, "max_clock_skew": None, **extra}
    return WeChatAdapter(WeChatAdapter.Settings.model_validate(values), AdapterContext(
        key="wx", public_url="https://hooks.example.test", http=httpx.AsyncClient(), kv=MemoryKV()))


PLAIN = make()
SAFE = make(encoding_aes_key=AES_KEY)

FIELD_NAMES = st.sampled_from([
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MsgID", "MediaId",
    "PicUrl", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y", "Scale", "Label",
    "Title", "Description", "Url", "FileTotalLen", "Event", "EventKey", "Ticket", "Latitude",
    "Longitude", "Precision", "Status", "MenuId"])
FIELD_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["text", "image", "voice", "video", "shortvideo", "location", "link", "file",
                     "event", "subscribe", "unsubscribe", "SCAN", "CLICK", "VIEW", "LOCATION",
                     "TEMPLATESENDJOBFINISH", "qrscene_1", "success", "1e400", "nan", "-1",
                     "99999999999999999999", "12.5"]),
    st.integers(min_value=-(2**70), max_value=2**70),
)
XML_FIELDS = st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=10)


@FAST
@given(st.binary(max_size=400))
def test_parse_xml_only_raises_xml_error(data: bytes) -> None:
    try:
        parse_xml(data)
    except XmlError:
        pass


@FAST
@given(st.text(max_size=200).map(lambda t: f"<xml><A>{t}</A><!-- {t} --></xml>"))
def test_parse_xml_text_shapes(doc: str) -> None:
    try:
        parse_xml(doc.encode())
    except XmlError:
        pass


@FAST
@given(st.one_of(st.text(max_size=200), st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())))
def test_decrypt_only_raises_crypto_error(encrypted: str) -> None:
    try:
        CRYPTO.decrypt(encrypted)
    except CryptoError:
        pass


@FAST
@given(st.binary(max_size=300))
def test_encrypt_decrypt_round_trip(xml: bytes) -> None:
    assert CRYPTO.decrypt(CRYPTO.encrypt(xml)) == xml


@FAST
@given(XML_FIELDS)
def test_parse_of_any_fields_only_raises_payload_errors(fields: dict[str, Any]) -> None:
    for adapter, crypto in ((PLAIN, None), (SAFE, CRYPTO)):
        request = signed_webhook(URL, TOKEN, build_xml(fields), crypto=crypto)
        try:
            adapter.verify(request)
            adapter.parse(request)
        except PayloadError:
            pass


@FAST
@given(st.binary(max_size=400), st.dictionaries(
    st.sampled_from(["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "echostr"]),
    st.text(max_size=20), max_size=6))
def test_verify_parse_handshake_of_garbage(body: bytes, query: dict[str, str]) -> None:
    for adapter in (PLAIN, SAFE):
        request = WebhookRequest("POST", URL, {}, body, query=query)
        for step in (adapter.verify, adapter.parse, adapter.handshake):
            try:
                step(request)
            except PayloadError:
                pass
