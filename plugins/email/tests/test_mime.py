"""The MIME reader on recorded samples: charsets, encoded words, file names, broken headers,
limits; and the adapters' normalized messages built from them."""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from omnichannel_email import (
    EmailSmtpAdapter,
    auto_reply_reason,
    bounce_status,
    decode_bytes,
    decode_header_value,
    normalize_subject,
    parse_mime,
    reply_subject,
)
from omnichannel_email._mime import parse_message_ids

from omnichannel_sdk import AdapterContext, MemoryBlobStore, UnparseablePayloadError, WebhookRequest
from omnichannel_sdk.testing._contract import MemoryKV

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(("name", "subject", "sender", "text"), [
    ("gbk_related.eml", "回复: 订单问题", ("张三", "zhang.san@example.cn"), "您好，订单还没到。"),
    ("big5_qp.eml", "訂單查詢", ("陳大文", "chan@example.hk"), "您好，請問我的訂單何時出貨？"),
    ("iso2022jp.eml", "注文について", ("山田太郎", "yamada@example.jp"),
     "お世話になっております。注文の件です。"),
    ("shift_jis_raw_header.eml", "返品について①", ("Sato", "sato@example.jp"), "返品①の件です。"),
    ("latin1_outlook.eml", "AW: Beschädigte Lieferung", ("Jürgen Müller", "juergen@example.de"),
     "Hallo,"),
    ("utf8_plus_reply.eml", "Re: Router problem", ("Doe, Jane", "Jane.Doe@Example.COM"),
     "Thanks, that fixed it!"),
])
def test_charsets(name: str, subject: str, sender: tuple[str, str], text: str) -> None:
    parsed = parse_mime((SAMPLES / name).read_bytes())
    assert parsed.subject == subject
    assert parsed.from_[0] == sender
    assert parsed.text is not None and parsed.text.startswith(text)


def test_gbk_superset_and_rfc2231_filename() -> None:
    parsed = parse_mime((SAMPLES / "gbk_related.eml").read_bytes())
    pdf = next(a for a in parsed.attachments if a.content_type == "application/pdf")
    assert pdf.filename == "发票.pdf" and pdf.data.startswith(b"%PDF")
    image = next(a for a in parsed.attachments if a.content_type == "image/png")
    assert image.content_id == "logo@cn" and image.inline
    assert parsed.html is not None and "订单" in parsed.html


def test_rfc2231_continuations() -> None:
    parsed = parse_mime((SAMPLES / "utf8_plus_reply.eml").read_bytes())
    assert [a.filename for a in parsed.attachments] == ["résumé log.txt"]


def test_malformed_headers_tolerated() -> None:
    parsed = parse_mime((SAMPLES / "latin1_outlook.eml").read_bytes())
    assert parsed.to == [("", "support@shop.example")]
    assert parsed.cc == [] and parsed.date is None
    assert parsed.references == ["msg_unknown@shop.example"]
    assert "Lieferung ist beschädigt" in (parsed.text or "")


def test_decode_bytes_fallbacks() -> None:
    assert decode_bytes("镕".encode("gbk"), "gb2312") == "镕"  # GBK-only character
    assert decode_bytes("①".encode("cp932"), "shift_jis") == "①"  # CP932-only character
    assert decode_bytes("é".encode(), "us-ascii") == "é"  # mislabelled UTF-8
    assert decode_bytes(b"\x93quoted\x94", "iso-8859-1") == "\u201cquoted\u201d"  # cp1252 quotes
    assert decode_bytes(b"caf\xe9", "no-such-charset") == "café"
    assert decode_bytes(b"\xff\xfe\xfa", "utf-8")  # never raises


def test_encoded_words() -> None:
    assert decode_header_value("=?UTF-8?Q?caf=C3=A9?= =?UTF-8?B?5L2g5aW9?=") == "café你好"
    assert decode_header_value("=?x-unknown?Q?abc?=") == "abc"
    assert decode_header_value("=?gb2312?B?1eLKx9bQzsQ=?=") == "这是中文"


def test_message_ids() -> None:
    assert parse_message_ids("<a@b> <c@d>\r\n <a@b>") == ["a@b", "c@d"]
    assert parse_message_ids("a@b c@d") == ["a@b", "c@d"]
    assert parse_message_ids(None) == []


def test_not_an_email() -> None:
    with pytest.raises(UnparseablePayloadError):
        parse_mime(b"")
    with pytest.raises(UnparseablePayloadError):
        parse_mime(b"\r\n\r\njust a body")


def test_attachment_limits() -> None:
    raw = (SAMPLES / "gbk_related.eml").read_bytes()
    parsed = parse_mime(raw, max_attachment_bytes=20)
    assert [a.content_type for a in parsed.attachments] == ["application/pdf"]
    assert parsed.skipped[0]["reason"].startswith("larger than")
    parsed = parse_mime(raw, max_attachments=1)
    assert len(parsed.attachments) == 1 and parsed.skipped[0]["reason"] == "too many"


def test_deep_nesting_refused_or_bounded() -> None:
    head = b"From: a@b.c\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    body = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
                    for i in range(200))
    parsed = parse_mime(head + body)  # bounded depth: no RecursionError, no crash
    assert parsed.from_ == [("", "a@b.c")]


def test_subjects() -> None:
    assert normalize_subject("Re: AW: 回复：答复: Fwd: SV: Order  1234") == "order 1234"
    assert normalize_subject("RE[2]: 转发: Hello") == "hello"
    assert normalize_subject("Reader question") == "reader question"
    assert reply_subject("Order 1234") == "Re: Order 1234"
    assert reply_subject("AW: Order") == "AW: Order"
    assert reply_subject("Fwd: Order") == "Re: Order"


def test_auto_replies_and_bounces() -> None:
    auto = parse_mime((SAMPLES / "auto_reply.eml").read_bytes())
    assert auto_reply_reason(auto) == "auto-submitted: auto-replied"
    person = parse_mime((SAMPLES / "big5_qp.eml").read_bytes())
    assert auto_reply_reason(person) is None
    for header in ("Precedence: bulk", "X-Autoreply: yes", "Precedence: junk", "Precedence: list"):
        raw = f"From: a@b.c\r\nSubject: hi\r\n{header}\r\n\r\nbody".encode()
        assert auto_reply_reason(parse_mime(raw)) is not None, header
    for subject in ("Out of Office: ticket", "Automatische Antwort: x", "自动回复: 你好",
                    "Réponse automatique : absent", "Respuesta automática: x"):
        raw = f"From: a@b.c\r\nSubject: {subject}\r\n\r\nbody".encode()
        assert auto_reply_reason(parse_mime(raw)) == "vacation subject", subject
    bounce = bounce_status(parse_mime((SAMPLES / "dsn_bounce.eml").read_bytes()))
    assert bounce is not None and bounce.status == "failed"
    assert bounce.external_id == "msg_01JD3X0000000000000000ABCD@shop.example"
    assert bounce.error is not None and bounce.error.vendor_code == "5.1.1"


def _adapter(blobs: MemoryBlobStore | None = None) -> EmailSmtpAdapter:
    settings = EmailSmtpAdapter.Settings.model_validate({
        "from_address": "Support@Shop.Example", "max_attachment_bytes": 1_000_000})
    context = AdapterContext(key="mail", public_url="https://x.test", http=httpx.AsyncClient(),
                             kv=MemoryKV(), blobs=blobs)
    return EmailSmtpAdapter(settings, context)


def test_normalized_message() -> None:
    blobs = MemoryBlobStore()
    adapter = _adapter(blobs)
    request = WebhookRequest("POST", "https://x.test/webhooks/mail", {
        "content-type": "message/rfc822", "x-envelope-to": "support@shop.example"},
        (SAMPLES / "utf8_plus_reply.eml").read_bytes())
    item = adapter.parse(request).items[0]
    assert item.external_id == "en-1@example.com"  # type: ignore[union-attr]
    assert item.sender.handle == "jane.doe@example.com"  # type: ignore[union-attr]
    assert item.sender.display_name == "Doe, Jane"  # type: ignore[union-attr]
    assert item.conversation_hint == "conv_0193e0a1b2c3d4e5f60718293a4b5c6d"  # type: ignore[union-attr]
    assert item.references[-1] == "msg_01JD3X0000000000000000ABCD@shop.example"  # type: ignore[union-attr]
    assert item.parts[0].text == "Thanks, that fixed it!"  # type: ignore[union-attr]
    assert item.metadata["quoted"].startswith("On Mon, Jan 1")  # type: ignore[union-attr]
    assert item.metadata["auto_reply"] is False  # type: ignore[union-attr]
    media = item.parts[1]  # type: ignore[union-attr]
    assert media.blob_key in blobs.blobs and media.size == 8  # type: ignore[union-attr]


def test_token_of_a_stranger_is_ignored() -> None:
    adapter = _adapter()
    raw = (b"From: a@b.c\r\nTo: sales+conv_0193e0a1b2c3d4e5f60718293a4b5c6d@shop.example, "
           b"support+conv_0193e0a1b2c3d4e5f60718293a4b5c6d@evil.example, support+notatoken@shop.example"
           b"\r\nSubject: x\r\n\r\nhi")
    item = adapter.parse_raw(raw).items[0]
    assert item.conversation_hint is None  # type: ignore[union-attr]


def test_mail_without_message_id_gets_a_stable_id() -> None:
    adapter = _adapter()
    raw = b"From: a@b.c\r\nSubject: x\r\n\r\nhi"
    first, again = adapter.parse_raw(raw).items[0], adapter.parse_raw(raw).items[0]
    assert first.external_id == again.external_id  # type: ignore[union-attr]
    assert first.external_id.startswith("sha256:")  # type: ignore[union-attr]


def test_html_only_mail_is_sanitized_and_converted() -> None:
    adapter = _adapter()
    raw = (b"From: a@b.c\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<p onclick='evil()'>Hello <b>there</b></p><script>alert(1)</script>"
           b"<img src='https://tracker.example/pixel.gif'><p>Second</p>")
    item = adapter.parse_raw(raw).items[0]
    assert item.parts[0].text == "Hello there\n\nSecond"  # type: ignore[union-attr]
    html = item.metadata["html"]  # type: ignore[union-attr]
    assert "script" not in html and "onclick" not in html and "tracker" not in html


def test_forwarded_message_is_an_attachment_not_body() -> None:
    from email.message import EmailMessage

    inner = EmailMessage()
    inner["From"] = "boss@example.org"
    inner["Subject"] = "Original"
    inner.set_content("inner body must not leak into the outer text")
    outer = EmailMessage()
    outer["From"] = "fwd@example.org"
    outer["Subject"] = "Fwd: Original"
    outer.set_content("see below")
    outer.add_attachment(inner)
    parsed = parse_mime(outer.as_bytes())
    assert parsed.text is not None and parsed.text.strip() == "see below"
    [attached] = parsed.attachments
    assert attached.content_type == "message/rfc822"
    assert attached.filename == "forwarded-message.eml"
    assert b"inner body must not leak" in attached.data


@pytest.mark.parametrize("conversation_id", [
    "conv_0193e0a1b2c3d4e5f60718293a4b5c6d", "conv_01JD3X0000000000000000ABCD"])
def test_plus_token_round_trip(conversation_id: str) -> None:
    from omnichannel_email import conversation_from_token, plus_address

    address = plus_address("Support@shop.example", conversation_id)
    # mail systems lower-case the address on the way back
    assert conversation_from_token(address.lower(), "support@shop.example", None) == conversation_id
    assert conversation_from_token("support+h00@shop.example", "support@shop.example", None) is None


def test_dates() -> None:
    from omnichannel_email._mime import _date

    assert _date("Fri, 1 Aug 2014 16:45:32 -04:00").isoformat() == "2014-08-01T20:45:32+00:00"  # type: ignore[union-attr]
    assert _date("Mon, 1 Jan 2024 10:00:00 +0800").isoformat() == "2024-01-01T02:00:00+00:00"  # type: ignore[union-attr]
    assert _date("garbage") is None and _date(None) is None


def test_blobs_stored_from_sync_parse(tmp_path: Path) -> None:
    """Both built-in blob stores take attachments from the synchronous parse step."""
    import hashlib

    from omnichannel_email._base import put_blob_now

    from omnichannel_sdk import FileBlobStore

    for store in (MemoryBlobStore(), FileBlobStore(tmp_path / "blobs")):
        info = put_blob_now(store, b"attachment bytes")
        assert info is not None and info.sha256 == hashlib.sha256(b"attachment bytes").hexdigest()

    class RemoteStore:  # a store whose put really waits for I/O
        async def put(self, data: bytes) -> object:
            import asyncio

            await asyncio.sleep(0)
            return None

    assert put_blob_now(RemoteStore(), b"x") is None
    assert put_blob_now(None, b"x") is None
