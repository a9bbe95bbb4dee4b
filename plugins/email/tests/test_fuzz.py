"""Property tests: the MIME reader, the adapters' parse and the reply splitter never fail
with anything but our typed errors, whatever the input."""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_email import EmailSmtpAdapter, parse_mime, split_reply

from omnichannel_sdk import AdapterContext, MemoryBlobStore, UnparseablePayloadError, WebhookRequest
from omnichannel_sdk.testing._contract import MemoryKV

HEADER_NAMES = st.sampled_from([
    "From", "To", "Cc", "Subject", "Message-ID", "References", "In-Reply-To", "Date",
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
    "Precedence", "Reply-To", "Return-Path", "Content-ID", "X-Whatever"])
VALUES = st.one_of(
    st.text(max_size=60),
    st.sampled_from([
        "multipart/mixed; boundary=b", "multipart/alternative; boundary=b", "text/html; charset=gbk",
        "text/plain; charset=iso-2022-jp", "multipart/report; report-type=delivery-status; "
        "boundary=b", "message/rfc822", "base64", "quoted-printable", "attachment; filename*=x''%FF",
        "=?gb2312?B?1eLKx9bQzsQ=?=", "=?bogus?Q?=FF?=", "<a@b> <c@d>", "<<>>", "@", "a@b, <c@d>"]),
).map(lambda v: v.replace("\r", " ").replace("\n", " "))
LINES = st.lists(st.tuples(HEADER_NAMES, VALUES), max_size=12)
BODY = st.one_of(st.binary(max_size=400), st.sampled_from([
    b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n",
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.0.0\r\n--b--",
    b"--b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b--"]))


def _raw(lines: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n" + body


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(LINES, BODY)
def test_parse_mime_only_raises_typed_errors(lines: list[tuple[str, str]], body: bytes) -> None:
    try:
        parse_mime(_raw(lines, body))
    except UnparseablePayloadError:
        pass


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_parse_mime_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_mime(data)
    except UnparseablePayloadError:
        pass


_ADAPTER = EmailSmtpAdapter(
    EmailSmtpAdapter.Settings.model_validate({"from_address": "support@shop.example"}),
    AdapterContext(key="fuzz", public_url="https://x.test", http=httpx.AsyncClient(), kv=MemoryKV(),
                   blobs=MemoryBlobStore()))


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(LINES, BODY)
def test_adapter_parse_only_raises_typed_errors(lines: list[tuple[str, str]], body: bytes) -> None:
    request = WebhookRequest("POST", "https://x.test/webhooks/fuzz",
                             {"content-type": "message/rfc822"}, _raw(lines, body))
    try:
        _ADAPTER.parse(request)
    except UnparseablePayloadError:
        pass


REPLYISH = st.lists(st.one_of(
    st.text(max_size=40),
    st.sampled_from(["On Mon, Jan 1 Bob wrote:", "> quoted", "-- ", "Sent from my iPhone",
                     "-----Original Message-----", "From: a", "Sent: b", "在 2024年 写道：",
                     "发件人: x", "发送时间: y", "Am 1.1. schrieb X:", ""])), max_size=15)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(REPLYISH)
def test_split_reply_never_loses_the_text(lines: list[str]) -> None:
    text = "\n".join(lines)
    split = split_reply(text)
    norm = text.replace("\r\n", "\n").replace("\r", "\n")
    if not norm.strip():
        return
    assert split.new
    joined = "\n".join(x for x in (split.new, split.signature, split.quoted) if x)
    for line in norm.split("\n"):
        assert line.strip() in joined


def _vendor_adapters() -> list[object]:
    from omnichannel_email import MailgunAdapter, PostmarkAdapter, SendGridAdapter

    context = AdapterContext(key="fuzz", public_url="https://x.test", http=httpx.AsyncClient(),
                             kv=MemoryKV(), blobs=MemoryBlobStore())
    common = {"from_address": "support@shop.example"}
    return [
        MailgunAdapter(MailgunAdapter.Settings.model_validate(
            {**common, "signing_key": "k", "api_key": "k"}), context),
        SendGridAdapter(SendGridAdapter.Settings.model_validate(
            {**common, "api_key": "k", "basic_auth_username": "u", "basic_auth_password": "p"}),
            context),
        PostmarkAdapter(PostmarkAdapter.Settings.model_validate(
            {**common, "server_token": "k", "basic_auth_username": "u", "basic_auth_password": "p"}),
            context),
    ]


_VENDORS = _vendor_adapters()
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from([
                                "From", "FromFull", "ToFull", "Email", "Name", "Subject", "Headers",
                                "Value", "Attachments", "Content", "ContentID", "RawEmail", "TextBody",
                                "HtmlBody", "Date", "MessageID", "OriginalRecipient"]), inner,
                                max_size=6)),
    max_leaves=20)


@settings(max_examples=500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["multipart/form-data; boundary=b", "application/x-www-form-urlencoded",
                        "application/json", "text/plain", "multipart/form-data"]),
       st.one_of(st.binary(max_size=300), JSONISH.map(orjson.dumps),
                 st.sampled_from([
                     b'--b\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\nFrom: a@b.c'
                     b'\r\n\r\nhi\r\n--b--\r\n',
                     b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\n\r\n--b--\r\n',
                     b"body-mime=From%3A+x&recipient=", b'{"RawEmail": "\\r\\n"}'])))
def test_vendor_parse_only_raises_typed_errors(content_type: str, body: bytes) -> None:
    request = WebhookRequest("POST", "https://x.test/webhooks/fuzz", {"content-type": content_type},
                             body)
    for adapter in _VENDORS:
        try:
            adapter.parse(request)  # type: ignore[attr-defined]
        except UnparseablePayloadError:
            pass


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([
    "ToFull", "CcFull", "Subject", "Headers", "Attachments", "TextBody", "HtmlBody", "Date",
    "MessageID", "OriginalRecipient", "ReplyTo", "MailboxHash", "To", "Cc"]), JSONISH, max_size=8))
def test_postmark_fields_of_any_shape(fields: dict[str, object]) -> None:
    body = orjson.dumps({"FromFull": {"Email": "a@example.org", "Name": "A"}, **fields})
    request = WebhookRequest("POST", "https://x.test/webhooks/fuzz",
                             {"content-type": "application/json"}, body)
    try:
        _VENDORS[2].parse(request)  # type: ignore[attr-defined]
    except UnparseablePayloadError:
        pass


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from([
    "<p>", "</p>", "<br>", "<blockquote>", "</blockquote>", "<li>", "<pre>", "</pre>", "<script>",
    "</script>", "<a href='https://x'>", "</a>", "<img alt='x'>", "<div", "&amp;", "&#xffffff;",
    "<!--", "-->", "<style>"])), max_size=30))
def test_html_helpers_never_fail(chunks: list[str]) -> None:
    from omnichannel_email import html_to_text, sanitize_html

    html = "".join(chunks)
    assert isinstance(html_to_text(html), str)
    assert "<script" not in sanitize_html(html).lower()


def _fuzz_bench() -> object:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "bench" / "email_fuzz.py"
    spec = importlib.util.spec_from_file_location("email_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["email_fuzz"] = module
    spec.loader.exec_module(module)
    return module


_FUZZ = _fuzz_bench()
_PATHS = _FUZZ.paths()  # type: ignore[attr-defined]
_ADAPTERS = _FUZZ.adapters()  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_every_parse_path_ends_in_a_message_a_receipt_or_a_dead_letter(path: str) -> None:
    """Every email parse path (email-smtp raw, Mailgun's two routes and events, SendGrid's
    Inbound Parse and events, Postmark's inbound and events) on a few thousand mutations of
    documented payloads, from a fixed seed: a storable message or receipt, or the typed error
    the hub dead-letters — never another exception. ``bench/email_fuzz.py`` runs 100,000."""
    import random

    name, content_type, make = _PATHS[path]

    @settings(max_examples=1500, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, 2**32))
    def run(seed: int) -> None:
        body = make(random.Random(seed))
        _FUZZ.run_one(_ADAPTERS[name], content_type, body)  # type: ignore[attr-defined]

    run()


@pytest.mark.parametrize("raw", [
    # found by bench/email_fuzz.py's long run: RFC 2231 continuations the standard library
    # cannot sort, a NUL in an RFC 2231 charset, a byte outside JIS X 0201 kana after ESC ( I
    b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename*=utf-8''a; "
    b"filename*1=b\r\n\r\ndata\r\n--x--\r\n",
    b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
    b"Content-Type: application/pdf; name*=ut\x00f-8''%E4%BD%A0.pdf\r\n\r\ndata\r\n--x--\r\n",
    b"From: a@b.example\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b(I\x7f\xff\r\n",
])
def test_long_run_findings(raw: bytes) -> None:
    (message,) = _ADAPTER.parse_raw(raw).items
    assert "\\u0000" not in message.model_dump_json()


def test_postmark_unknown_sender_with_a_nul_name_is_storable() -> None:
    body = orjson.dumps({"FromFull": {"Email": "not an address", "Name": "\x00"}, "Subject": "x",
                         "TextBody": "hi", "MessageID": "m-1"})
    request = WebhookRequest("POST", "https://x.test/webhooks/fuzz",
                             {"content-type": "application/json"}, body)
    (message,) = _VENDORS[2].parse(request).items  # type: ignore[attr-defined]
    assert "\\u0000" not in message.model_dump_json()
