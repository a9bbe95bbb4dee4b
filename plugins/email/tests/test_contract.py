"""The core contract kit against mailgun, sendgrid, postmark (fully) and email-smtp (as far as
a channel without webhooks goes: it refuses them; its payloads enter trusted)."""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from aiosmtpd.smtp import SMTP as SMTPServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from omnichannel_email import EmailSmtpAdapter, MailgunAdapter, PostmarkAdapter, SendGridAdapter
from omnichannel_email._sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER

from omnichannel_sdk import (
    Address,
    AuthenticationError,
    Hub,
    RateLimitedError,
    SignatureError,
    TransportError,
    WebhookRequest,
)
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
EVENTS = SAMPLES / "events"


def event_sample(name: str) -> bytes:
    """A vendor event sample about a message of ours (unknown to the hub: kept as an early
    receipt, never dead-lettered)."""
    return ((EVENTS / name).read_bytes().replace(b"__MESSAGE_ID__", b"msg_contract@shop.example")
            .replace(b"__VENDOR_ID__", b"vendor-contract"))
RECIPIENT = Address(channel="email", handle="customer@example.org")
COMMON = {"from_address": "support@shop.example", "from_name": "Shop Support"}


def multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body as the vendors post it."""
    boundary = "----vendor" + secrets.token_hex(6)
    out = []
    for name, value in fields.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                   + value + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


# -- Mailgun -----------------------------------------------------------------------------------

MG_KEY = "mg-signing-key-123"
MG_API = "key-mg-api-456"


def mailgun_post(url: str, raw: bytes, *, timestamp: str | None = None, token: str | None = None,
                 signature: str | None = None, extra: dict[str, bytes] | None = None) -> WebhookRequest:
    from omnichannel_email import mailgun_signature

    timestamp = timestamp or str(int(time.time()))
    token = token or secrets.token_hex(25)
    fields = {"recipient": b"support@shop.example", "sender": b"customer@example.org",
              "timestamp": timestamp.encode(), "token": token.encode(),
              "signature": (signature or mailgun_signature(MG_KEY, timestamp, token)).encode(),
              "body-mime": raw, **(extra or {})}
    body, ctype = multipart(fields)
    return WebhookRequest("POST", url, {"content-type": ctype}, body)


class TestMailgunContract(ChannelContract):
    adapter_class = MailgunAdapter
    channel_settings = {**COMMON, "signing_key": MG_KEY, "api_key": MG_API}
    secret_values = (MG_KEY, MG_API)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        import orjson

        samples = {name: mailgun_post(self.webhook_url, (SAMPLES / name).read_bytes())
                   for name in ("gbk_related.eml", "utf8_plus_reply.eml", "dsn_bounce.eml")}
        for name in ("mailgun_delivered.json", "mailgun_complained.json"):
            body = orjson.loads(event_sample(name))
            timestamp, token = str(int(time.time())), secrets.token_hex(25)
            from omnichannel_email import mailgun_signature

            body["signature"] = {"timestamp": timestamp, "token": token,
                                 "signature": mailgun_signature(MG_KEY, timestamp, token)}
            samples[name] = WebhookRequest("POST", self.webhook_url,
                                           {"content-type": "application/json"}, orjson.dumps(body))
        return samples

    def malformed_request(self) -> WebhookRequest:
        return mailgun_post(self.webhook_url, b"", extra={"body-mime": b""})

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        # Mailgun signs timestamp + token, not the body: change what is signed
        body = request.body.replace(b'name="token"\r\n\r\n', b'name="token"\r\n\r\nX', 1)
        body = body.replace(b'"token":"', b'"token":"X', 1)  # an events-webhook JSON post
        return WebhookRequest(request.method, request.url, request.headers, body)

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        body = request.body.replace(b'name="signature"', b'name="ignored"', 1)
        body = body.replace(b'"signature":{', b'"ignored":{', 1)
        return WebhookRequest(request.method, request.url, request.headers, body)

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.mailgun.net/v3/shop.example/messages.mime",
                        success=lambda: httpx.Response(200, json={
                            "id": "<20240101.1@shop.example>", "message": "Queued. Thank you."}),
                        recipient=RECIPIENT)

    def test_stale_timestamp_refused(self) -> None:
        """A correctly signed post older than the replay tolerance is refused."""
        adapter = self.make_adapter()
        old = mailgun_post(self.webhook_url, b"x", timestamp=str(int(time.time()) - 3600))
        with pytest.raises(SignatureError):
            adapter.verify(old)


# -- SendGrid ----------------------------------------------------------------------------------

SG_API = "SG.test-api-key"
SG_PASSWORD = "sg-basic-password"
_SG_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SG_PUBLIC = base64.b64encode(_SG_PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
SG_BASIC = "Basic " + base64.b64encode(f"inbound:{SG_PASSWORD}".encode()).decode()


_SG_EVENT_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SG_EVENT_PUBLIC = base64.b64encode(_SG_EVENT_PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def sendgrid_events_post(url: str, body: bytes) -> WebhookRequest:
    """An Event Webhook batch, signed with the event key, behind the basic auth."""
    timestamp = str(int(time.time()))
    signature = _SG_EVENT_PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return WebhookRequest("POST", url, {
        "content-type": "application/json", "authorization": SG_BASIC,
        SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: timestamp}, body)


def sendgrid_post(url: str, raw: bytes | None, *, sign: bool = True) -> WebhookRequest:
    fields = {"to": b"support@shop.example", "from": b"customer@example.org",
              "envelope": b'{"to":["support@shop.example"],"from":"customer@example.org"}',
              "charsets": b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8"}', "spam_score": b"0.1"}
    if raw is not None:
        fields["email"] = raw
    body, ctype = multipart(fields)
    headers = {"content-type": ctype, "authorization": SG_BASIC}
    if sign:
        timestamp = str(int(time.time()))
        signature = _SG_PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers[SIGNATURE_HEADER] = base64.b64encode(signature).decode()
        headers[TIMESTAMP_HEADER] = timestamp
    return WebhookRequest("POST", url, headers, body)


class TestSendGridContract(ChannelContract):
    adapter_class = SendGridAdapter
    channel_settings = {**COMMON, "api_key": SG_API, "basic_auth_username": "inbound",
                        "basic_auth_password": SG_PASSWORD, "verification_key": SG_PUBLIC,
                        "event_public_key": SG_EVENT_PUBLIC}
    signature_headers = (SIGNATURE_HEADER, "authorization")
    secret_values = (SG_API, SG_PASSWORD)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        samples = {name: sendgrid_post(self.webhook_url, (SAMPLES / name).read_bytes())
                   for name in ("iso2022jp.eml", "latin1_outlook.eml", "auto_reply.eml")}
        samples["events"] = sendgrid_events_post(self.webhook_url,
                                                 event_sample("sendgrid_events.json"))
        return samples

    def malformed_request(self) -> WebhookRequest:
        return sendgrid_post(self.webhook_url, None)

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.sendgrid.com/v3/mail/send",
                        success=lambda: httpx.Response(202, headers={"x-message-id": "sg-abc123"}),
                        recipient=RECIPIENT)

    def test_basic_auth_alone_is_enough(self) -> None:
        """Without a verification key, basic auth protects the endpoint."""
        settings = SendGridAdapter.Settings.model_validate({
            **COMMON, "api_key": SG_API, "basic_auth_username": "inbound",
            "basic_auth_password": SG_PASSWORD})
        adapter = SendGridAdapter(settings, self.make_adapter().context)
        request = sendgrid_post(self.webhook_url, b"From: a@b.c\r\n\r\nhi", sign=False)
        adapter.verify(request)
        bad = WebhookRequest("POST", request.url, {**request.headers, "authorization": "Basic eDp5"},
                             request.body)
        with pytest.raises(SignatureError):
            adapter.verify(bad)

    def test_unauthenticated_config_refused(self) -> None:
        """A SendGrid channel with neither basic auth nor a key is a configuration error."""
        with pytest.raises(ValueError, match="authenticated"):
            SendGridAdapter.Settings.model_validate({**COMMON, "api_key": SG_API})

    @pytest.mark.anyio
    async def test_rate_limit_reset_header(self) -> None:
        """SendGrid's X-RateLimit-Reset (epoch) becomes retry_after."""
        reset = str(int(time.time()) + 30)
        with pytest.raises(RateLimitedError) as info:
            await self._send(lambda: httpx.Response(429, headers={"x-ratelimit-reset": reset},
                                                    json={"errors": [{"message": "too many"}]}))
        assert info.value.retry_after is not None and 25 <= info.value.retry_after <= 31


# -- Postmark ----------------------------------------------------------------------------------

PM_TOKEN = "pm-server-token-789"
PM_PASSWORD = "pm-basic-password"
PM_BASIC = "Basic " + base64.b64encode(f"postmark:{PM_PASSWORD}".encode()).decode()


class TestPostmarkContract(ChannelContract):
    adapter_class = PostmarkAdapter
    channel_settings = {**COMMON, "server_token": PM_TOKEN, "basic_auth_username": "postmark",
                        "basic_auth_password": PM_PASSWORD}
    signature_headers = ("authorization",)
    secret_values = (PM_TOKEN, PM_PASSWORD)

    def _post(self, body: bytes) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {
            "content-type": "application/json", "authorization": PM_BASIC}, body)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        import orjson

        data = orjson.loads((SAMPLES / "postmark_inbound.json").read_bytes())
        raw = dict(data, RawEmail=(SAMPLES / "big5_qp.eml").read_bytes().decode("ascii"),
                   MessageID="b7bc2f4a-e38e-4336-af7d-e6c392c2f817")
        return {"json": self._post((SAMPLES / "postmark_inbound.json").read_bytes()),
                "raw-email": self._post(orjson.dumps(raw)),
                **{name: self._post(event_sample(name)) for name in (
                    "postmark_delivery.json", "postmark_bounce.json", "postmark_open.json",
                    "postmark_spam_complaint.json")}}

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        # Postmark signs nothing; what authenticates is the basic auth: change it
        return WebhookRequest(request.method, request.url, {
            **request.headers, "authorization": PM_BASIC[:-2] + "x="}, request.body)

    def malformed_request(self) -> WebhookRequest:
        return self._post(b'{"Subject": "no sender at all"}')

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.postmarkapp.com/email",
                        success=lambda: httpx.Response(200, json={
                            "To": "customer@example.org", "SubmittedAt": "2024-01-01T10:00:00Z",
                            "MessageID": "0a129aee-e1cd-480d-b08d-4f48548ff48d", "ErrorCode": 0,
                            "Message": "OK"}),
                        recipient=RECIPIENT)

    def unauthorized_response(self) -> httpx.Response:
        return httpx.Response(401, json={"ErrorCode": 10, "Message": "Bad or missing API token"})

    @pytest.mark.anyio
    async def test_inactive_recipient_rejected(self) -> None:
        """Postmark's 406 (inactive recipient) is a rejection, not retried."""
        from omnichannel_sdk import RejectedError

        with pytest.raises(RejectedError) as info:
            await self._send(lambda: httpx.Response(422, json={
                "ErrorCode": 406, "Message": "You tried to send to a recipient that has been "
                "marked as inactive."}))
        assert info.value.vendor_code == "406" and not info.value.retryable


# -- email-smtp --------------------------------------------------------------------------------


class _Sink:
    """An aiosmtpd handler that keeps what it receives and answers as configured."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.answer = "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(envelope.original_content or envelope.content)  # type: ignore[attr-defined]
        return self.answer


class TestEmailSmtpContract(ChannelContract):
    adapter_class = EmailSmtpAdapter
    sends_over_http = False
    channel_settings = {**COMMON, "smtp_host": "127.0.0.1", "smtp_port": 1,
                        "smtp_security": "none", "smtp_password": "smtp-secret-pw",
                        "smtp_username": "agent"}
    secret_values = ("smtp-secret-pw",)

    def _raw(self, name: str) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {"content-type": "message/rfc822"},
                              (SAMPLES / name).read_bytes())

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {name: self._raw(name) for name in ("shift_jis_raw_header.eml", "big5_qp.eml")}

    def malformed_request(self) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {"content-type": "message/rfc822"}, b"\r\n")

    def send_case(self) -> SendCase:  # pragma: no cover - never called
        raise AssertionError("email-smtp sends over SMTP: the kit's HTTP send tests are replaced "
                             "below by tests against a real aiosmtpd server")

    # verification: nothing signs a webhook to an SMTP channel, so every one is refused
    def test_samples_verify(self) -> None:
        """Every HTTP webhook is refused: mail enters through the listener or IMAP."""
        adapter = self.make_adapter()
        for request in self.sample_requests().values():
            with pytest.raises(SignatureError):
                adapter.verify(request)

    @pytest.mark.anyio
    async def test_gateway_stores_once(self, hub: Hub, webhook_client: httpx.AsyncClient,
                                       vendor: respx.MockRouter) -> None:
        """Trusted delivery stores each sample once; the HTTP webhook answers 403."""
        for name, request in self.sample_requests().items():
            posted = await webhook_client.post(f"/webhooks/{self.channel_key}", content=request.body,
                                               headers={"content-type": "message/rfc822"})
            assert posted.status_code == 403, name
            await hub.handle_webhook(self.channel_key, request, trusted=True)
            count = len(await hub.store.list_conversations())
            await hub.handle_webhook(self.channel_key, request, trusted=True)
            assert len(await hub.store.list_conversations()) == count
        messages = [m for c in await hub.store.list_conversations()
                    for m in await hub.store.list_messages(c.id)]
        assert len(messages) == 2
        assert not await hub.store.list_dead_letters()

    @pytest.mark.anyio
    async def test_gateway_dead_letters_malformed(self, hub: Hub,
                                                  webhook_client: httpx.AsyncClient) -> None:
        """A trusted payload that is no email is dead-lettered with its raw bytes."""
        await hub.handle_webhook(self.channel_key, self.malformed_request(), trusted=True)
        letters = await hub.store.list_dead_letters()
        assert len(letters) == 1 and letters[0].raw_id
        assert await hub.store.get_raw(letters[0].raw_id) is not None

    async def _smtp_send(self, handler: _Sink, **settings: object) -> object:
        import asyncio

        from omnichannel_sdk import Message, TextPart

        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTPServer(handler, hostname="sink.test"),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            adapter_settings = EmailSmtpAdapter.Settings.model_validate({
                **COMMON, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
                "smtp_timeout": 5, **settings})
            adapter = EmailSmtpAdapter(adapter_settings, self.make_adapter().context)
            now = datetime.now(UTC)
            message = Message(id="msg_01JD3X0000000000000000WXYZ", channel="email",
                              channel_key="contract", adapter="email-smtp", direction="outbound",
                              conversation_id="conv_0193e0a1b2c3d4e5f60718293a4b5c6d",
                              sender=adapter.own_address(), recipients=[RECIPIENT],
                              parts=[TextPart(text="Hello")], created_at=now, received_at=now,
                              status="queued", subject="Your order")
            return await adapter.send(message, message.parts)
        finally:
            server.close()
            await server.wait_closed()

    @pytest.mark.anyio
    async def test_send_happy_path(self) -> None:
        """A real SMTP server accepts the message; the external id is our Message-ID."""
        sink = _Sink()
        result = await self._smtp_send(sink)
        assert result.external_ids == ["msg_01JD3X0000000000000000WXYZ@shop.example"]  # type: ignore[attr-defined]
        assert b"Message-ID: <msg_01JD3X0000000000000000WXYZ@shop.example>" in sink.messages[0]

    @pytest.mark.anyio
    async def test_send_unauthorized(self) -> None:
        """SMTP 535 is an AuthenticationError, not retried."""
        sink = _Sink()
        sink.answer = "535 5.7.8 Authentication credentials invalid"
        with pytest.raises(AuthenticationError) as info:
            await self._smtp_send(sink)
        assert not info.value.retryable

    @pytest.mark.anyio
    async def test_send_rate_limited(self) -> None:
        """SMTP 451 4.7.1 (throttled) is a retryable RateLimitedError."""
        sink = _Sink()
        sink.answer = "451 4.7.1 Rate limit exceeded, try again later"
        with pytest.raises(RateLimitedError) as info:
            await self._smtp_send(sink)
        assert info.value.retryable

    @pytest.mark.anyio
    async def test_send_network_error(self) -> None:
        """Nobody listening is a retryable TransportError."""
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        from omnichannel_sdk import Message, TextPart

        settings = EmailSmtpAdapter.Settings.model_validate({
            **COMMON, "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none",
            "smtp_timeout": 2})
        adapter = EmailSmtpAdapter(settings, self.make_adapter().context)
        now = datetime.now(UTC)
        message = Message(id="msg_01JD3X0000000000000000WXYZ", channel="email",
                          channel_key="contract", adapter="email-smtp", direction="outbound",
                          conversation_id="conv_0193e0a1b2c3d4e5f60718293a4b5c6d",
                          sender=adapter.own_address(), recipients=[RECIPIENT],
                          parts=[TextPart(text="Hello")], created_at=now, received_at=now,
                          status="queued")
        with pytest.raises(TransportError) as info:
            await adapter.send(message, message.parts)
        assert info.value.retryable

    # statuses: against a real aiosmtpd server; SMTP reports nothing back after 250
    receipts = False

    def status_recipient(self) -> Address:
        return RECIPIENT

    @contextlib.asynccontextmanager
    async def accepting_vendor(self, hub: Hub) -> AsyncIterator[None]:
        yield  # the sink started by the test accepts every message

    @pytest.mark.anyio
    async def test_status_moves_queued_sent_then_forward_only(  # type: ignore[override]
            self, omni_config: dict, register_plugin: list) -> None:
        """(email-smtp) The kit's status check, the hub sending to a real SMTP server."""
        import asyncio

        from omnichannel_sdk.testing import PUBLIC_URL

        sink = _Sink()
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTPServer(sink, hostname="sink.test"), "127.0.0.1", 0)
        table = omni_config["channels"][self.channel_key]
        table["smtp_port"] = server.sockets[0].getsockname()[1]
        for name in ("smtp_username", "smtp_password"):  # the sink offers no AUTH over plain SMTP
            table.pop(name)
        try:
            async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
                transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
                async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                    await self.check_status_transitions(hub, client)
        finally:
            server.close()
            await server.wait_closed()
        assert len(sink.messages) == 1


def test_sendgrid_default_parse_mode() -> None:
    """Without raw mode SendGrid posts headers, bodies in their charsets and files."""
    import orjson

    settings = SendGridAdapter.Settings.model_validate({
        **COMMON, "api_key": SG_API, "basic_auth_username": "inbound",
        "basic_auth_password": SG_PASSWORD})
    from omnichannel_sdk import AdapterContext, MemoryBlobStore
    from omnichannel_sdk.testing._contract import MemoryKV

    blobs = MemoryBlobStore()
    adapter = SendGridAdapter(settings, AdapterContext(
        key="sg", public_url="https://x.test", http=httpx.AsyncClient(), kv=MemoryKV(), blobs=blobs))
    headers = ("From: =?iso-8859-1?Q?Ren=E9?= <rene@example.fr>\nTo: support@shop.example\n"
               "Subject: Re: Commande\nMessage-ID: <fr-1@example.fr>\n"
               "In-Reply-To: <msg_x@shop.example>\n")
    body, ctype = multipart({
        "headers": headers.encode(), "text": "Merci beaucoup, ça marche.\n\nLe lun. 1 janv. 2024, "
        "Support a écrit :\n> Essayez ceci".encode("latin-1"),
        "html": b"<p>Merci</p><img src=\"cid:ii_1\">",
        "charsets": orjson.dumps({"text": "iso-8859-1", "html": "UTF-8", "subject": "UTF-8"}),
        "envelope": b'{"to":["support@shop.example"],"from":"rene@example.fr"}',
        "attachments": b"1", "attachment1": b"\x89PNG fake",
        "attachment-info": orjson.dumps({"attachment1": {
            "filename": "capture.png", "type": "image/png", "content-id": "ii_1"}})})
    result = adapter.parse(WebhookRequest("POST", "https://x.test/webhooks/sg",
                                          {"content-type": ctype}, body))
    [item] = result.items
    assert item.external_id == "fr-1@example.fr"  # type: ignore[union-attr]
    assert item.sender.display_name == "René"  # type: ignore[union-attr]
    assert item.parts[0].text == "Merci beaucoup, ça marche."  # type: ignore[union-attr]
    image = item.parts[1]  # type: ignore[union-attr]
    assert image.kind == "image" and image.filename == "capture.png" and image.blob_key in blobs.blobs
    assert item.metadata["inline_images"] == {"ii_1": image.sha256}  # type: ignore[union-attr]
    assert item.references == ["msg_x@shop.example"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("code", "text", "kind", "retryable"), [
    (535, "5.7.8 Authentication credentials invalid", AuthenticationError, False),
    (454, "4.7.0 Temporary authentication failure", AuthenticationError, False),
    (451, "4.7.1 Rate limit exceeded", RateLimitedError, True),
    (421, "4.7.0 Too many connections", RateLimitedError, True),
    (450, "4.2.1 Mailbox busy", None, True),
    (454, "4.7.0 TLS not available", None, True),
    (550, "5.1.1 User unknown", None, False),
])
def test_smtp_error_mapping(code: int, text: str, kind: type | None, retryable: bool) -> None:
    from omnichannel_email._smtp import smtp_error

    from omnichannel_sdk import ProviderError, RejectedError

    error = smtp_error(code, text, "email-smtp")
    expected = kind or (RejectedError if code >= 500 else ProviderError)
    assert isinstance(error, expected) and error.retryable is retryable
    assert error.vendor_code == str(code)
