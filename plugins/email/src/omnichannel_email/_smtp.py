"""``email-smtp``: our own SMTP listener (aiosmtpd) as the domain's MX, an IMAP mailbox poller,
and SMTP submission (aiosmtplib, STARTTLS or implicit TLS) for replies.

Mail that arrives over SMTP or IMAP runs through the hub's full inbound pipeline with
``hub.handle_webhook(key, WebhookRequest(..., "message/rfc822", raw), trusted=True)``: the raw
message is persisted, parsed, de-duplicated by Message-ID, threaded and stored like any webhook.
The adapter refuses HTTP webhooks (nothing signs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import Field, SecretStr, model_validator

from omnichannel_sdk import (
    AuthenticationError,
    ChannelError,
    ConfigurationError,
    Message,
    ParseResult,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SendResult,
    SignatureError,
    TransportError,
    UnparseablePayloadError,
    WebhookRequest,
)

from ._base import EmailAdapter, EmailSettings
from ._compose import build_message
from ._imap import ImapPoller, imap_ssl_context
from ._mime import storable_text

__all__ = ["EmailSmtpAdapter", "EmailSmtpSettings", "smtp_error"]

log = logging.getLogger("omnichannel_email.smtp")


def smtp_error(code: int, text: str, adapter: str) -> ChannelError:
    """The typed error for an SMTP reply code (the one place SMTP errors are mapped)."""
    what = f"{adapter}: SMTP {code}"
    lowered = text.lower()
    if code in (530, 534, 535, 454) and ("auth" in lowered or code != 454):
        return AuthenticationError(what + ": authentication refused", vendor_code=code)
    if 400 <= code < 500:
        if any(word in lowered for word in ("rate", "too many", "throttl", "try again later")):
            return RateLimitedError(what + ": throttled", vendor_code=code)
        return ProviderError(what + ": temporary failure", vendor_code=code, retryable=True)
    return RejectedError(what + f": {text[:200]}", vendor_code=code)


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an MX listens on all addresses


def _header_safe(value: str) -> str:
    return storable_text(value).replace(",", " ").strip()[:998]


class _Handler:
    """aiosmtpd handler: accepts our domains only, hands every message to the hub."""

    def __init__(self, adapter: EmailSmtpAdapter) -> None:
        self.adapter = adapter

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.rpartition("@")[2].strip(">").lower()
        if domain not in self.adapter.accepted_domains:
            return "550 5.7.1 relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await self.adapter.deliver(raw or b"", mail_from=envelope.mail_from or "",
                                       rcpt_tos=list(envelope.rcpt_tos), via="smtp")
        except Exception:
            log.exception("could not store a message received over SMTP")
            return "451 4.3.0 temporarily unable to accept the message"
        return "250 2.0.0 OK: stored"


class EmailSmtpSettings(EmailSettings):
    """Settings of an SMTP/IMAP email channel."""

    listen: str | None = None
    """``host:port`` of our SMTP listener (the MX), e.g. ``0.0.0.0:25``; none: no listener."""
    listen_hostname: str | None = None
    """The name our listener greets with (default: ``domain``)."""
    accept_domains: list[str] = Field(default_factory=list)
    """Recipient domains the listener accepts (default: ``domain``); others get 550."""
    max_message_bytes: int = Field(default=40 * 1024 * 1024, gt=0)
    """Largest message the listener accepts (SMTP SIZE)."""
    max_concurrent_messages: int = Field(default=4, gt=0)
    """Messages the listener (and the IMAP poller) parse and store at once; more wait
    (peak memory stays near ``max_concurrent_messages * max_message_bytes``)."""
    smtp_host: str | None = None
    """Submission server for our replies."""
    smtp_port: int | None = None
    """Its port (default 465 for implicit TLS, 587 for STARTTLS, 25 without TLS)."""
    smtp_username: str | None = None
    """Submission user."""
    smtp_password: SecretStr | None = None
    """Submission password."""
    smtp_security: Literal["starttls", "implicit", "none"] = "starttls"
    """How the submission connection is secured."""
    smtp_timeout: float = Field(default=30.0, gt=0)
    """Seconds before a submission gives up (then retried by the outbox)."""
    smtp_validate_certs: bool = True
    """Check the submission server's certificate."""
    imap_host: str | None = None
    """IMAP server to poll; none: no polling."""
    imap_port: int | None = None
    """Its port (default 993 for implicit TLS, 143 otherwise)."""
    imap_username: str | None = None
    """IMAP user."""
    imap_password: SecretStr | None = None
    """IMAP password."""
    imap_security: Literal["tls", "implicit", "starttls", "none"] = "tls"
    """``tls`` (or ``implicit``): TLS from the first byte (993); ``starttls``: plain
    connection upgraded before LOGIN (143; refused if the server does not offer it);
    ``none``: no TLS (a loopback test server only)."""
    imap_ca_file: str | None = None
    """PEM file of the CA(s) the IMAP server's certificate must chain to (default: the
    system's)."""
    imap_validate_certs: bool = True
    """Check the IMAP server's certificate and host name."""
    imap_mailbox: str = "INBOX"
    """Mailbox to poll."""
    imap_poll_interval: float = Field(default=60.0, gt=0)
    """Seconds between polls (and the longest IDLE)."""
    imap_idle: bool = True
    """Use IMAP IDLE when the server offers it."""

    @model_validator(mode="after")
    def _check(self) -> EmailSmtpSettings:
        if self.listen:
            _host_port(self.listen)
        if self.imap_host and not (self.imap_username and self.imap_password):
            raise ValueError("imap_host needs imap_username and imap_password")
        return self


class EmailSmtpAdapter(EmailAdapter[EmailSmtpSettings]):
    """Email over our own SMTP listener and/or an IMAP mailbox, replies by SMTP submission."""

    name: ClassVar[str] = "email-smtp"

    def __init__(self, settings: Any, context: Any) -> None:
        super().__init__(settings, context)
        self._server: asyncio.base_events.Server | None = None
        self.poller: ImapPoller | None = None
        # bounds the messages parsed and stored at once, and so the listener's peak memory:
        # at most this many messages (each at most max_message_bytes) are held beyond the
        # one aiosmtpd is receiving per connection
        self._parsing = asyncio.Semaphore(self.settings.max_concurrent_messages)

    @property
    def accepted_domains(self) -> set[str]:
        """Recipient domains our listener accepts."""
        return {d.lower() for d in self.settings.accept_domains} or {self.mail_domain}

    @property
    def listen_port(self) -> int | None:
        """The port our listener is bound to (useful with ``:0``)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    # -- inbound -----------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Refuse every webhook: mail arrives only through our own SMTP listener and IMAP
        poller, which hand it to the hub as trusted."""
        raise SignatureError("email-smtp takes no webhooks (mail comes over SMTP or IMAP)",
                             adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """A raw ``message/rfc822`` body (what the listener and the poller hand the hub)."""
        if request.content_type not in ("message/rfc822", "message/global", "text/plain", ""):
            raise UnparseablePayloadError(f"expected message/rfc822, got {request.content_type}",
                                          adapter=self.name)
        envelope_to = [a.strip() for a in (request.header("x-envelope-to") or "").split(",")
                       if a.strip()]
        envelope_from = request.header("x-envelope-from")
        via = request.header("x-received-via")
        return self.parse_raw(request.body, envelope_to=envelope_to, envelope_from=envelope_from,
                              metadata={"received_via": via} if via else None)

    async def deliver(self, raw: bytes, *, mail_from: str | None = None,
                      rcpt_tos: Sequence[str] = (), via: str = "smtp") -> None:
        """Run one raw message through the hub's inbound pipeline (trusted)."""
        services = self.context.services
        if not services.running:
            raise ConfigurationError("email-smtp needs a running hub to deliver to",
                                     channel_key=self.context.key)
        headers = {"content-type": "message/rfc822", "x-received-via": via}
        # the envelope travels as request headers, which are stored: 8-bit bytes in MAIL FROM
        # (raw Latin-1, or UTF-8 without SMTPUTF8) and control characters are made storable
        if mail_from is not None:
            headers["x-envelope-from"] = _header_safe(mail_from)
        if rcpt_tos:
            headers["x-envelope-to"] = ",".join(_header_safe(a) for a in rcpt_tos)
        async with self._parsing:
            await services.receive(
                WebhookRequest("POST", self.context.webhook_url, headers, raw), trusted=True)

    async def start(self) -> None:
        """Start the SMTP listener and the IMAP poller that are configured."""
        s = self.settings
        if s.listen:
            host, port = _host_port(s.listen)
            handler = _Handler(self)
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(
                lambda: SMTP(handler, hostname=s.listen_hostname or self.mail_domain,
                             data_size_limit=s.max_message_bytes, enable_SMTPUTF8=True,
                             decode_data=False, ident="omnichannel-email"),
                host=host, port=port)
            log.info("SMTP listener on %s:%s", host, self.listen_port)
        if s.imap_host and s.imap_username and s.imap_password:
            port = s.imap_port or (993 if s.imap_security in ("tls", "implicit") else 143)

            async def deliver(raw: bytes) -> None:
                await self.deliver(raw, via="imap")

            self.poller = ImapPoller(
                host=s.imap_host, port=port, username=s.imap_username,
                password=s.imap_password.get_secret_value(), mailbox=s.imap_mailbox,
                security=s.imap_security, kv=self.context.kv,
                state_key=f"email-imap:{self.context.key}:{s.imap_username}:{s.imap_mailbox}",
                deliver=deliver, poll_interval=s.imap_poll_interval, idle=s.imap_idle,
                ssl_context=self._imap_tls())
            self.poller.start()

    def _imap_tls(self) -> ssl.SSLContext | None:
        s = self.settings
        if s.imap_security == "none":
            return None
        try:
            return imap_ssl_context(s.imap_ca_file, s.imap_validate_certs)
        except (OSError, ssl.SSLError):
            raise ConfigurationError("imap_ca_file is not a readable PEM file",
                                     channel_key=self.context.key, field="imap_ca_file") from None

    async def stop(self) -> None:
        """Stop the listener and the poller."""
        if self.poller is not None:
            await self.poller.stop()
            self.poller = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)

    # -- outbound ----------------------------------------------------------------------------

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Submit our MIME over SMTP; the external id is our Message-ID."""
        s = self.settings
        if not s.smtp_host:
            raise ConfigurationError("smtp_host is not configured", channel_key=self.context.key,
                                     field="smtp_host")
        out = await self.outbound_email(message, parts)
        mime = build_message(out)
        port = s.smtp_port or {"implicit": 465, "starttls": 587, "none": 25}[s.smtp_security]
        try:
            await aiosmtplib.send(
                mime, sender=s.from_address, recipients=[a for _, a in out.to],
                hostname=s.smtp_host, port=port, username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_security == "implicit", start_tls=s.smtp_security == "starttls",
                timeout=s.smtp_timeout, validate_certs=s.smtp_validate_certs)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            code = first.code if first is not None else 550
            raise smtp_error(code, first.message if first is not None else "", self.name) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise smtp_error(exc.code, exc.message, self.name) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            raise TransportError(f"{self.name}: {type(exc).__name__} talking to the SMTP server") \
                from None
        return SendResult(external_ids=[out.message_id], status="sent",
                          metadata={"message_id": out.message_id})
