"""``mailgun``: inbound through a route's ``forward()`` to a URL ending in ``mime`` (raw MIME
in ``body-mime``), signed with HMAC-SHA256 over ``timestamp`` + ``token``; delivery receipts from
the events webhook (JSON ``{"signature": {timestamp, token, signature}, "event-data": {...}}``,
same key, same URL: told apart by the JSON content type); outbound through
``POST /v3/{domain}/messages.mime`` with our own MIME."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import ClassVar

import httpx
from pydantic import Field, SecretStr

from omnichannel_sdk import (
    Message,
    ParseResult,
    Part,
    SendResult,
    SignatureError,
    UnparseablePayloadError,
    WebhookRequest,
    constant_time_equals,
)

from ._base import EmailAdapter, EmailSettings
from ._compose import build_message
from ._forms import read_form
from ._mime import normalize_message_id
from ._receipts import mailgun_receipts

__all__ = ["MailgunAdapter", "mailgun_signature"]


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of ``timestamp + token`` with the signing key."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


class MailgunAdapter(EmailAdapter):
    """Mailgun: raw MIME route forwarding in, the MIME sending API out."""

    name: ClassVar[str] = "mailgun"
    default_api_base: ClassVar[str | None] = "https://api.mailgun.net"

    class Settings(EmailSettings):
        """Settings of a Mailgun channel."""

        signing_key: SecretStr
        """HTTP webhook signing key (verifies inbound posts)."""
        api_key: SecretStr
        """Private API key (sends)."""
        replay_tolerance: float = Field(default=300.0, gt=0)
        """Seconds a signed post stays valid; older (or future) timestamps are refused."""

    settings: Settings

    def _signed_fields(self, request: WebhookRequest) -> tuple[str, str, str]:
        """``timestamp``, ``token`` and ``signature``: in the form of a route post, in the
        ``signature`` object of an events-webhook JSON post."""
        if request.content_type == "application/json":
            try:
                body = request.json()
            except UnparseablePayloadError:
                raise SignatureError("unreadable JSON event", adapter=self.name) from None
            signed = body.get("signature") if isinstance(body, dict) else None
            if not isinstance(signed, dict):
                raise SignatureError("no signature object", adapter=self.name)
            return tuple(str(signed.get(k) or "")[:512]  # type: ignore[return-value]
                         for k in ("timestamp", "token", "signature"))
        try:
            form = read_form(request)
        except UnparseablePayloadError:
            raise SignatureError("no signed form", adapter=self.name) from None
        return form.text("timestamp"), form.text("token"), form.text("signature")

    def verify(self, request: WebhookRequest) -> None:
        """The ``signature`` must be the HMAC of ``timestamp`` + ``token`` (form fields of a
        route post, the ``signature`` object of an event), and the timestamp within
        ``replay_tolerance`` of now."""
        timestamp, token, signature = self._signed_fields(request)
        if not (timestamp and token and signature):
            raise SignatureError("missing timestamp, token or signature", adapter=self.name)
        expected = mailgun_signature(self.settings.signing_key.get_secret_value(), timestamp, token)
        if not constant_time_equals(signature.lower(), expected):
            raise SignatureError("bad signature", adapter=self.name)
        try:
            age = abs(time.time() - float(timestamp))
        except ValueError:
            raise SignatureError("bad timestamp", adapter=self.name) from None
        if not age <= self.settings.replay_tolerance:  # NaN and inf too
            raise SignatureError("timestamp outside the replay tolerance", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The raw MIME in ``body-mime``, with Mailgun's envelope facts; a JSON post is an
        event of the events webhook (a delivery receipt or an opt-out)."""
        if request.content_type == "application/json":
            return mailgun_receipts(request.json())
        form = read_form(request)
        raw = form.get("body-mime")
        if not raw:
            raise UnparseablePayloadError("no body-mime field: point the route at a URL ending "
                                          "in 'mime'", adapter=self.name)
        recipients = [r.strip() for r in form.text("recipient").split(",") if r.strip()]
        return self.parse_raw(raw, envelope_to=recipients,
                              envelope_from=form.text("sender") or None,
                              metadata={"vendor": "mailgun"})

    def _raise_for_vendor(self, response: httpx.Response) -> None:
        """Mailgun's errors: JSON ``{"message": ...}`` with the HTTP status."""
        if response.status_code < 400:
            return
        detail = None
        try:
            body = response.json()
            detail = str(body.get("message"))[:200] if isinstance(body, dict) else None
        except ValueError:
            detail = None
        raise self.error_for_status(response.status_code, response, None, detail)

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Hand our own MIME to Mailgun; the external id is our Message-ID."""
        out = await self.outbound_email(message, parts)
        mime = build_message(out).as_bytes()
        response = await self.request(
            "POST", f"{self.api_base}/v3/{self.mail_domain}/messages.mime",
            auth=("api", self.settings.api_key.get_secret_value()),
            data={"to": ", ".join(a for _, a in out.to)},
            files={"message": ("message.mime", mime, "message/rfc822")})
        self._raise_for_vendor(response)
        vendor_id = None
        try:
            body = response.json()
            vendor_id = normalize_message_id(str(body.get("id"))) if isinstance(body, dict) else None
        except ValueError:
            vendor_id = None
        ids = [out.message_id] + ([vendor_id] if vendor_id and vendor_id != out.message_id else [])
        return SendResult(external_ids=ids, status="sent",  # Mailgun "Queued." = accepted: sent to us
                          metadata={"message_id": out.message_id, "vendor_id": vendor_id})

