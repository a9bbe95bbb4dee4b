"""``sendgrid``: Inbound Parse in raw mode ("POST the raw, full MIME message": the ``email``
field), protected by HTTP basic auth in the webhook URL and/or SendGrid's signed webhook
(ECDSA P-256 over timestamp + body); delivery receipts from the Event Webhook (a JSON array on
the same URL, told apart by its content type, verified with ``event_public_key`` and/or the
basic auth); outbound through ``POST /v3/mail/send``."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field, SecretStr, model_validator

from omnichannel_sdk import (
    FormData,
    Message,
    ParseResult,
    Part,
    SendResult,
    SignatureError,
    UnparseablePayloadError,
    WebhookRequest,
    check_timestamp,
    constant_time_equals,
    read_form,
)

from ._base import EmailAdapter, EmailSettings, storable_result
from ._mime import Attachment, ParsedEmail, decode_bytes, parse_mime
from ._receipts import CUSTOM_ARG, sendgrid_receipts

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SendGridAdapter", "SendGridSettings",
           "check_basic_auth"]

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


def check_basic_auth(request: WebhookRequest, username: str, password: str, adapter: str) -> None:
    """Require ``Authorization: Basic`` with these credentials (compared in constant time)."""
    header = request.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise SignatureError("missing basic auth", adapter=adapter)
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed basic auth", adapter=adapter) from None
    expected = f"{username}:{password}".encode()
    if not constant_time_equals(given, expected):
        raise SignatureError("wrong basic auth credentials", adapter=adapter)


class SendGridSettings(EmailSettings):
    """Settings of a SendGrid channel: at least one of basic auth or the verification key."""

    api_key: SecretStr
    """API key with Mail Send permission."""
    basic_auth_username: str | None = None
    """User name of the basic auth put in the Inbound Parse URL."""
    basic_auth_password: SecretStr | None = None
    """Password of that basic auth."""
    verification_key: str | None = None
    """Public key (base64 DER) of the Inbound Parse security policy's signature."""
    event_public_key: str | None = None
    """Public key (base64 DER) of the signed Event Webhook (delivery receipts); without it
    event posts need the basic auth."""
    replay_tolerance: float = Field(default=300.0, gt=0)
    """Seconds a signed post stays valid."""

    @model_validator(mode="after")
    def _needs_auth(self) -> SendGridSettings:
        has_basic = bool(self.basic_auth_username and self.basic_auth_password)
        if not has_basic and not self.verification_key:
            raise ValueError("give basic_auth_username/basic_auth_password or "
                             "verification_key: Inbound Parse posts must be authenticated")
        if self.verification_key:
            _load_key(self.verification_key)
        if self.event_public_key:
            _load_key(self.event_public_key, "event_public_key")
        return self


class SendGridAdapter(EmailAdapter[SendGridSettings]):
    """SendGrid: Inbound Parse (raw MIME) in, the v3 Mail Send API out."""

    name: ClassVar[str] = "sendgrid"
    default_api_base: ClassVar[str | None] = "https://api.sendgrid.com"

    def verify(self, request: WebhookRequest) -> None:
        """Basic auth when configured, and the ECDSA signature when a key is configured: the
        Inbound Parse ``verification_key`` for mail, the ``event_public_key`` for Event Webhook
        posts (JSON). An event post with neither its key nor basic auth configured is refused."""
        s = self.settings
        has_basic = bool(s.basic_auth_username and s.basic_auth_password)
        event = request.content_type == "application/json"
        key = s.event_public_key if event else s.verification_key
        if event and not has_basic and not key:
            raise SignatureError("event posts need event_public_key or basic auth configured",
                                 adapter=self.name)
        if has_basic:
            check_basic_auth(request, s.basic_auth_username or "",
                             s.basic_auth_password.get_secret_value() if s.basic_auth_password else "",
                             self.name)
        if key:
            self._check_signature(request, key)

    def _check_signature(self, request: WebhookRequest, key: str) -> None:
        """SendGrid's ECDSA (P-256, SHA-256) signature over timestamp + body, and its age."""
        signature = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise SignatureError("missing signature headers", adapter=self.name)
        try:
            raw_sig = base64.b64decode(signature, validate=True)
            _load_key(key).verify(raw_sig, timestamp.encode() + request.body,
                                  ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError, UnicodeEncodeError):
            raise SignatureError("bad signature", adapter=self.name) from None
        check_timestamp(timestamp, self.settings.replay_tolerance, adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The raw MIME in ``email`` (raw mode), else the parsed fields (``headers``,
        ``text``, ``html``, ``attachmentN``), with SendGrid's envelope and spam facts; a JSON
        array is an Event Webhook batch (delivery receipts, opt-outs)."""
        if request.content_type == "application/json":
            return storable_result(sendgrid_receipts(request.json()))
        form = read_form(request)
        envelope: dict[str, Any] = {}
        try:
            loaded = orjson.loads(form.get("envelope") or b"{}")
            envelope = loaded if isinstance(loaded, dict) else {}
        except orjson.JSONDecodeError:
            envelope = {}
        to = envelope.get("to")
        recipients = [str(x) for x in to] if isinstance(to, list) else []
        extra: dict[str, Any] = {"vendor": "sendgrid"}
        for name in ("spam_score", "SPF", "sender_ip"):
            if name in form:
                extra[name.lower()] = form.text(name)[:200]
        sender = envelope.get("from")
        envelope_from = str(sender) if isinstance(sender, str) else None
        raw = form.get("email")
        if raw:
            return self.parse_raw(raw, envelope_to=recipients, envelope_from=envelope_from,
                                  metadata=extra)
        if not form.get("headers"):
            raise UnparseablePayloadError("neither 'email' (raw mode) nor 'headers' in the post",
                                          adapter=self.name)
        parsed = self._parsed_fields(form)
        parsed.envelope_to = recipients
        if envelope_from is not None:
            parsed.envelope_from = envelope_from
        return self.result_from_parsed(parsed, extra)

    def _parsed_fields(self, form: FormData) -> ParsedEmail:
        """The default (non-raw) Inbound Parse post: headers, bodies in their charsets,
        attachments as files described by ``attachment-info``."""
        head = (form.get("headers") or b"").replace(b"\r\n", b"\n").rstrip(b"\n")
        parsed = parse_mime(head.replace(b"\n", b"\r\n") + b"\r\n\r\n",
                            max_attachment_bytes=self.settings.max_attachment_bytes)
        charsets = _json_dict(form.get("charsets"))
        for name in ("text", "html"):
            data = form.get(name)
            if data:
                charset = charsets.get(name)
                setattr(parsed, name, decode_bytes(data, charset if isinstance(charset, str) else None))
        info = _json_dict(form.get("attachment-info"))
        for key in sorted(info, key=lambda k: (len(k), k)):
            meta = info[key] if isinstance(info[key], dict) else {}
            data = form.get(key)
            if data is None:
                continue
            filename = meta.get("filename") or meta.get("name") or form.filenames.get(key)
            if len(data) > self.settings.max_attachment_bytes:
                parsed.skipped.append({"filename": filename, "size": len(data),
                                       "reason": f"larger than {self.settings.max_attachment_bytes} bytes"})
                continue
            if len(parsed.attachments) >= self.settings.max_attachments:
                parsed.skipped.append({"filename": filename, "size": len(data), "reason": "too many"})
                continue
            cid = meta.get("content-id")
            parsed.attachments.append(Attachment(
                data=data, content_type=str(meta.get("type") or "application/octet-stream").lower(),
                filename=str(filename) if filename else None,
                content_id=str(cid).strip("<>") if cid else None, inline=bool(cid)))
        digest = hashlib.sha256(form.get("headers") or b"")
        digest.update(form.get("text") or b"")
        parsed.raw_sha256 = digest.hexdigest()
        return parsed

    def _raise_for_vendor(self, response: httpx.Response) -> None:
        """SendGrid's errors: ``{"errors": [{"message", "field"}]}``; throttling may carry
        ``X-RateLimit-Reset`` (epoch seconds) instead of ``Retry-After``."""
        if response.status_code < 400:
            return
        detail = None
        try:
            body = response.json()
            errors = body.get("errors") if isinstance(body, dict) else None
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                detail = str(errors[0].get("message"))[:200]
        except ValueError:
            detail = None
        error = self.error_for_status(response.status_code, response, None, detail)
        if response.status_code == 429 and getattr(error, "retry_after", None) is None:
            reset = response.headers.get("x-ratelimit-reset")
            if reset and reset.isdigit():
                error.retry_after = max(0.0, int(reset) - time.time())  # type: ignore[attr-defined]
        raise error

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Mail Send with our Message-ID and thread headers; the external id is our
        Message-ID (SendGrid's ``X-Message-Id`` is kept in metadata)."""
        out = await self.outbound_email(message, parts)
        content = [{"type": "text/plain", "value": out.text or " "}]
        if out.html:
            content.append({"type": "text/html", "value": out.html})
        payload: dict[str, Any] = {
            "personalizations": [{"to": [{"email": a, **({"name": n} if n else {})}
                                         for n, a in out.to]}],
            "from": {"email": out.from_address, **({"name": out.from_name} if out.from_name else {})},
            "subject": out.subject or " ",
            "content": content,
            "headers": dict(out.header_pairs()),
            "custom_args": {CUSTOM_ARG: out.message_id},  # echoed by every event: receipts match
        }
        if out.reply_to:
            payload["reply_to"] = {"email": out.reply_to}
        if out.attachments:
            payload["attachments"] = [{
                "content": base64.b64encode(a.data).decode(), "type": a.content_type,
                "filename": a.filename or "attachment",
                **({"disposition": "inline", "content_id": a.content_id} if a.content_id
                   else {"disposition": "attachment"})} for a in out.attachments]
        response = await self.request(
            "POST", f"{self.api_base}/v3/mail/send", content=orjson.dumps(payload),
            headers={"authorization": f"Bearer {self.settings.api_key.get_secret_value()}",
                     "content-type": "application/json"})
        self._raise_for_vendor(response)
        vendor_id = response.headers.get("x-message-id")
        ids = [out.message_id] + ([vendor_id] if vendor_id else [])
        return SendResult(external_ids=ids, status="sent",  # accepted by the vendor: sent to us
                          metadata={"message_id": out.message_id, "vendor_id": vendor_id})


def _json_dict(value: bytes | None) -> dict[str, Any]:
    try:
        loaded = orjson.loads(value or b"{}")
    except orjson.JSONDecodeError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


@functools.lru_cache(maxsize=8)
def _load_key(value: str, field: str = "verification_key") -> ec.EllipticCurvePublicKey:
    """A verification key; :class:`ValueError` when it is not a base64 DER EC public key."""
    try:
        key = serialization.load_der_public_key(base64.b64decode(value))
    except (ValueError, binascii.Error, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{field} is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"{field} is not an EC public key")
    return key
