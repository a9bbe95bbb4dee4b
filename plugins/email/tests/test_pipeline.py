"""Threading, outbound headers, bounces and auto-reply loops through a real hub, with a real
aiosmtpd server receiving our replies."""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP as SMTPServer
from omnichannel_email import _plugin, plus_address

from omnichannel_sdk import Author, Hub, WebhookRequest, hookimpl

SAMPLES = Path(__file__).parent / "samples"
KEY = "mail"


class Sink:
    """A real SMTP server that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(  # type: ignore[arg-type]
            envelope.original_content or envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[Sink, int]]:
    handler = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTPServer(handler, hostname="sink.test"),
                                      "127.0.0.1", 0)
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def mail_hub(omni_config: dict[str, Any], sink: tuple[Sink, int]) -> AsyncIterator[Hub]:
    omni_config["channels"][KEY] = {
        "adapter": "email-smtp", "from_address": "support@shop.example", "from_name": "Shop",
        "smtp_host": "127.0.0.1", "smtp_port": sink[1], "smtp_security": "none", "smtp_timeout": 5}
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        yield hub


def mime(subject: str, message_id: str, *, refs: str | None = None, to: str = "support@shop.example",
         sender: str = "Alice <alice@example.org>", body: str = "Hello", headers: dict[str, str] | None
         = None) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: <{message_id}>",
             "Date: Mon, 1 Jan 2024 10:00:00 +0000", "Content-Type: text/plain; charset=utf-8"]
    if refs:
        lines += [f"References: {refs}", f"In-Reply-To: {refs.split()[-1]}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


async def receive(hub: Hub, raw: bytes) -> None:
    request = WebhookRequest("POST", hub.request_url(KEY), {"content-type": "message/rfc822"}, raw)
    await hub.handle_webhook(KEY, request, trusted=True)


async def conversation_of(hub: Hub, external_id: str) -> str:
    found = await hub.store.find_message_by_external(KEY, external_id)
    assert found is not None, external_id
    return found.conversation_id


@pytest.mark.anyio
async def test_threading_order(mail_hub: Hub, sink: tuple[Sink, int]) -> None:
    """Token, then stored Message-IDs (ours and theirs), then subject with references; a new
    subject opens a new conversation for the same contact."""
    hub = mail_hub
    await receive(hub, mime("Order 1234 is late", "a1@example.org"))
    c1 = await conversation_of(hub, "a1@example.org")

    reply = await hub.send(c1, text="We are on it.", author=Author(kind="human", name="Ann"),
                           wait=True)
    assert reply.status == "sent" and reply.external_id == f"{reply.id}@shop.example"
    sent = sink[0].messages[-1]
    assert sent["Message-ID"] == f"<{reply.id}@shop.example>"
    assert sent["In-Reply-To"] == "<a1@example.org>" and sent["References"] == "<a1@example.org>"
    assert sent["Subject"] == "Re: Order 1234 is late"
    assert sent["Reply-To"] == plus_address("support@shop.example", c1)
    assert sent["Auto-Submitted"] is None
    assert sent.get_body(("plain",)).get_content().strip() == "We are on it."
    assert "We are on it." in sent.get_body(("html",)).get_content()

    # 1. our Message-ID in References, another subject: same conversation
    await receive(hub, mime("totally different", "a2@example.org",
                            refs=f"<a1@example.org> <{reply.id}@shop.example>"))
    assert await conversation_of(hub, "a2@example.org") == c1
    # 2. their own earlier Message-ID
    await receive(hub, mime("still different", "a3@example.org", refs="<a2@example.org>"))
    assert await conversation_of(hub, "a3@example.org") == c1
    # 3. unknown references but the same normalized subject (German client)
    await receive(hub, mime("AW: Re: ORDER 1234 is late", "a4@example.org",
                            refs="<lost@elsewhere.example>"))
    assert await conversation_of(hub, "a4@example.org") == c1
    # 4. a new subject without references: a new conversation, same contact
    await receive(hub, mime("Invoice address", "b1@example.org"))
    c2 = await conversation_of(hub, "b1@example.org")
    assert c2 != c1
    conv1, conv2 = await hub.store.get_conversation(c1), await hub.store.get_conversation(c2)
    assert conv1 is not None and conv2 is not None and conv1.contact_id == conv2.contact_id
    # 5. the plus token wins over everything (here: a new subject, no references)
    await receive(hub, mime("hello again", "a5@example.org", to=plus_address("support@shop.example", c1)))
    assert await conversation_of(hub, "a5@example.org") == c1
    # 6. unknown references and a different subject: not merged
    await receive(hub, mime("Re: something else", "c1@example.org", refs="<lost2@x.example>"))
    assert await conversation_of(hub, "c1@example.org") not in (c1, c2)
    # the reply after that quotes everything it knows
    second = await hub.send(c1, text="Anything else?", author=Author(kind="human"), wait=True)
    refs = sink[0].messages[-1]["References"]
    assert "<a1@example.org>" in refs and f"<{reply.id}@shop.example>" in refs
    assert second.status == "sent"


@pytest.mark.anyio
async def test_thread_key_hook_replaces_threading(omni_config: dict[str, Any],
                                                  sink: tuple[Sink, int]) -> None:
    """A plugin's omni_inbound_thread_key decides instead of the subject rule."""

    class OneThreadPerSender:
        @hookimpl
        def omni_inbound_thread_key(self, adapter: Any, message: Any) -> str:
            return f"sender:{message.sender.handle}"

    omni_config["channels"][KEY] = {"adapter": "email-smtp", "from_address": "support@shop.example"}
    hub = Hub.from_config(omni_config, plugins=[_plugin, OneThreadPerSender()])
    async with hub:
        await receive(hub, mime("first", "h1@example.org"))
        await receive(hub, mime("second, unrelated", "h2@example.org"))
        assert await conversation_of(hub, "h1@example.org") == \
            await conversation_of(hub, "h2@example.org")


@pytest.mark.anyio
async def test_bounce_marks_our_message_failed(mail_hub: Hub, sink: tuple[Sink, int]) -> None:
    """An RFC 3464 DSN for our Message-ID fails that message with the diagnostic."""
    hub = mail_hub
    await receive(hub, mime("Question", "q1@example.org", sender="nobody@example.com"))
    conversation = await conversation_of(hub, "q1@example.org")
    sent = await hub.send(conversation, text="Answer", author=Author(kind="human"), wait=True)
    dsn = (SAMPLES / "dsn_bounce.eml").read_bytes().replace(
        b"msg_01JD3X0000000000000000ABCD@shop.example", sent.external_id.encode())
    await receive(hub, dsn)
    for _ in range(50):
        failed = await hub.store.get_message(sent.id)
        if failed is not None and failed.status == "failed":
            break
        await asyncio.sleep(0.02)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and "User unknown" in failed.error.message
    assert failed.error.vendor_code == "5.1.1"


@pytest.mark.anyio
async def test_auto_replies_are_marked_and_never_answered_by_bots(
        mail_hub: Hub, sink: tuple[Sink, int]) -> None:
    """Auto-Submitted mail carries auto_reply; a bot's answer to it is refused, a human's
    goes out; bot mail carries Auto-Submitted: auto-replied."""
    hub = mail_hub
    await receive(hub, mime("Help", "n1@example.org"))
    conversation = await conversation_of(hub, "n1@example.org")
    bot = await hub.send(conversation, text="Automatic answer", author=Author(kind="bot"), wait=True)
    assert bot.status == "sent"
    assert sink[0].messages[-1]["Auto-Submitted"] == "auto-replied"

    await receive(hub, mime("Automatic reply: Help", "ooo@example.org",
                            refs=f"<{bot.external_id}>", headers={"Auto-Submitted": "auto-replied"}))
    ooo = await hub.store.find_message_by_external(KEY, "ooo@example.org")
    assert ooo is not None and ooo.metadata["auto_reply"] is True
    assert ooo.conversation_id == conversation
    count = len(sink[0].messages)
    again = await hub.send(conversation, text="Automatic answer", author=Author(kind="bot"), wait=True)
    assert again.status == "failed" and again.error is not None
    assert "automatic" in again.error.message
    human = await hub.send(conversation, text="I'm a person", author=Author(kind="human"), wait=True)
    assert human.status == "sent" and len(sink[0].messages) == count + 1


@pytest.mark.anyio
async def test_attachments_stored_in_blobs_and_sent_back(mail_hub: Hub,
                                                          sink: tuple[Sink, int]) -> None:
    """Inbound attachments and cid: images land in the blob store with size, SHA-256 and type;
    an outbound media part with a blob is attached to our mail."""
    import hashlib

    hub = mail_hub
    await receive(hub, (SAMPLES / "gbk_related.eml").read_bytes())
    message = await hub.store.find_message_by_external(KEY, "cn-1@example.cn")
    assert message is not None
    assert message.parts[0].type == "text" and message.parts[0].text == "您好，订单还没到。"
    media = [p for p in message.parts if p.type == "media"]
    assert {p.kind for p in media} == {"image", "file"}
    pdf = next(p for p in media if p.kind == "file")
    assert pdf.filename == "发票.pdf" and pdf.content_type == "application/pdf" and pdf.size == 9
    data = await hub.blobs.get(pdf.blob_key or "")
    assert hashlib.sha256(data).hexdigest() == pdf.sha256
    image = next(p for p in media if p.kind == "image")
    assert message.metadata["inline_images"] == {"logo@cn": image.sha256}
    assert 'src="cid:logo@cn"' in message.metadata["html"]
    assert "请问有什么可以帮您" in message.metadata["quoted"]
    assert "请问有什么可以帮您" in message.metadata["full_text"]

    out = await hub.send(message.conversation_id, parts=[pdf], text="Here is your invoice back",
                         author=Author(kind="human"), wait=True)
    assert out.status == "sent"
    sent = sink[0].messages[-1]
    attachment = next(iter(sent.iter_attachments()))
    assert attachment.get_filename() == "发票.pdf"
    assert attachment.get_content() == data


def _tls_context(tmp: Any) -> Any:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
                "127.0.0.1"))]), critical=False).sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


@pytest.mark.anyio
@pytest.mark.parametrize("security", ["starttls", "implicit"])
async def test_smtp_submission_over_tls(security: str, tmp_path: Path) -> None:
    """Our replies go out over STARTTLS or implicit TLS to a real TLS-speaking server."""
    from datetime import UTC, datetime

    import httpx
    from omnichannel_email import EmailSmtpAdapter

    from omnichannel_sdk import AdapterContext, Address, Message, TextPart
    from omnichannel_sdk.testing._contract import MemoryKV

    context = _tls_context(tmp_path)
    handler = Sink()
    loop = asyncio.get_running_loop()
    if security == "starttls":
        server = await loop.create_server(lambda: SMTPServer(
            handler, hostname="sink.test", tls_context=context, require_starttls=True),
            "127.0.0.1", 0)
    else:
        server = await loop.create_server(lambda: SMTPServer(handler, hostname="sink.test"),
                                          "127.0.0.1", 0, ssl=context)
    try:
        settings = EmailSmtpAdapter.Settings.model_validate({
            "from_address": "support@shop.example", "smtp_host": "127.0.0.1",
            "smtp_port": server.sockets[0].getsockname()[1], "smtp_security": security,
            "smtp_validate_certs": False, "smtp_timeout": 5})
        async with httpx.AsyncClient() as http:
            adapter = EmailSmtpAdapter(settings, AdapterContext(
                key="tls", public_url="https://x.test", http=http, kv=MemoryKV()))
            now = datetime.now(UTC)
            message = Message(id="msg_01JD3X0000000000000000TLS0", channel="email", channel_key="tls",
                              adapter="email-smtp", direction="outbound",
                              conversation_id="conv_0193e0a1b2c3d4e5f60718293a4b5c6d",
                              sender=adapter.own_address(),
                              recipients=[Address(channel="email", handle="c@example.org")],
                              parts=[TextPart(text="<b>secure</b>", format="html")],
                              created_at=now, received_at=now, status="queued", subject="TLS")
            result = await adapter.send(message, message.parts)
    finally:
        server.close()
        await server.wait_closed()
    assert result.external_ids == ["msg_01JD3X0000000000000000TLS0@shop.example"]
    sent = handler.messages[0]
    assert sent.get_body(("plain",)).get_content().strip() == "secure"
    assert "<b>secure</b>" in sent.get_body(("html",)).get_content()
    assert sent["Auto-Submitted"] == "auto-replied"  # no author: not a human
