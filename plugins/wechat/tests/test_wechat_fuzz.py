"""Hypothesis: nothing but our typed errors comes out of the XML reader, the decryptor, verify
and parse, whatever the input."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
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


# -- the flat fast path reads every document exactly as the defused parser does ---------------

from omnichannel_wechat._xml import _parse, flat_fields  # noqa: E402 - the section's own names

AGREE = settings(max_examples=1500, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
_TRICKY = st.lists(st.sampled_from([*"ab 1<>&];[!-\t\n\r\x00\x01\x0b\ufffe\u00e9\u4f60\U0001f600",
                                     "]]>", "&amp;", "&#13;", "<![CDATA["]), max_size=12).map("".join)
_TAGS = st.sampled_from(["A", "B", "MsgType", "x.y", "_z", "a:b", "1a", "Ä", "xml"])


@st.composite
def _documents(draw: Any) -> str:
    """WeChat-like documents, mostly of the flat shape, with every way of leaving it."""
    ws = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\x0c"])
    fields = []
    for _ in range(draw(st.integers(0, 5))):
        tag, closing = draw(_TAGS), None
        if draw(st.integers(0, 9)) == 0:
            closing = draw(_TAGS)
        kind = draw(st.sampled_from(["cdata", "plain", "two", "nested", "empty", "attr"]))
        text = draw(_TRICKY)
        body = {"cdata": f"<![CDATA[{text}]]>", "plain": text,
                "two": f"<![CDATA[{text}]]>{draw(_TRICKY)}<![CDATA[{draw(_TRICKY)}]]>",
                "nested": f"<C>{text}</C>", "empty": "", "attr": text}[kind]
        start = f'<{tag} k="v">' if kind == "attr" else f"<{tag}>"
        fields.append(draw(ws) + start + body + f"</{closing or tag}>")
    root = draw(st.sampled_from(["xml", "xml", "root"]))
    head = draw(st.sampled_from(["", "", "\ufeff", '<?xml version="1.0"?>', "<!-- c -->", " "]))
    tail = draw(st.sampled_from(["", "", "\n", " junk", "<!-- c -->", "</xml>"]))
    return f"{head}<{root}>{''.join(fields)}{draw(ws)}</{root}>{tail}"


def _parsed(doc: str | bytes) -> object:
    try:
        return _parse(doc)
    except XmlError:
        return XmlError


@AGREE
@given(_documents(), st.booleans())
def test_flat_fast_path_agrees_with_the_parser(doc: str, as_bytes: bool) -> None:
    data: str | bytes = doc.encode("utf-8", "surrogatepass") if as_bytes else doc
    expected = _parsed(data)
    fast = flat_fields(data)
    if fast is not None:
        assert fast == expected
    if expected is XmlError:
        with pytest.raises(XmlError):
            parse_xml(data)
    else:
        assert parse_xml(data) == expected


@AGREE
@given(XML_FIELDS)
def test_our_own_documents_take_the_fast_path(fields: dict[str, Any]) -> None:
    """What ``build_xml`` writes (and WeChat sends: CDATA strings, bare integers) is read by
    the fast path unless a value holds what only the parser can read."""
    data = build_xml(fields)
    fast = flat_fields(data)
    texts = [str(v) for v in fields.values()]
    if not any(c in t for t in texts for c in "\r]") and not any(
            (ord(c) < 32 and c not in "\t\n") or c in "\ufffe\uffff" for t in texts for c in t):
        assert fast is not None, data
    if fast is not None:
        assert fast == _parse(data)
