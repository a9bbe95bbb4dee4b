"""``mailgun``: inbound through a route's ``forward()``, either to a URL ending in ``mime``
(raw MIME in ``body-mime``, also as a ``message/rfc822`` file part) or to any other URL (Mailgun's
parsed fields: ``message-headers``, ``body-plain``, ``body-html``, ``stripped-text``,
``attachment-N`` files, ``content-id-map``), signed with HMAC-SHA256 over ``timestamp`` +
``token`` (each token is remembered for the tolerance window: a replay with another body is
refused); delivery receipts from
the events webhook (JSON ``{"signature": {timestamp, token, signature}, "event-data": {...}}``,
same key, same URL: told apart by the JSON content type); outbound through
``POST /v3/{domain}/messages.mime`` with our own MIME."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import Field, SecretStr

from omnichannel_sdk import (
    FormData,
    Message,
    ParseResult,
    Part,
    ReplayGuard,
    SendResult,
    SignatureError,
    UnparseablePayloadError,
    WebhookRequest,
    constant_time_equals,
    read_form,
    replay_fingerprint,
)

from ._base import EmailAdapter, EmailSettings, storable_result
from ._compose import build_message
from ._mime import Attachment, ParsedEmail, normalize_message_id, parse_addresses, parse_mime, safe_filename
from ._receipts import mailgun_receipts

__all__ = ["MailgunAdapter", "MailgunSettings", "mailgun_signature"]


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of ``timestamp + token`` with the signing key."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


class MailgunSettings(EmailSettings):
    """Settings of a Mailgun channel."""

    signing_key: SecretStr
    """HTTP webhook signing key (verifies inbound posts)."""
    api_key: SecretStr
    """Private API key (sends)."""
    replay_tolerance: float = Field(default=300.0, gt=0)
    """Seconds a signed post stays valid; older (or future) timestamps are refused."""


class MailgunAdapter(EmailAdapter[MailgunSettings]):
    """Mailgun: raw MIME route forwarding in, the MIME sending API out."""

    name: ClassVar[str] = "mailgun"
    default_api_base: ClassVar[str | None] = "https://api.mailgun.net"

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
        self._guard().check_time(timestamp)

    async def check_replay(self, request: WebhookRequest) -> None:
        """Remember each signed ``token`` for the tolerance window (Mailgun's advice): the same
        token with another body is a replay and is refused (:class:`SignatureError`, 403);
        the same token with the same body is Mailgun retrying and passes (de-duplicated)."""
        _, token, _ = self._signed_fields(request)
        await self._guard().admit(token, replay_fingerprint(request.body))

    def _guard(self) -> ReplayGuard:
        return ReplayGuard(self.context.kv, f"mailgun:{self.context.key}",
                           tolerance=self.settings.replay_tolerance, adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The raw MIME in ``body-mime`` or Mailgun's parsed fields, with Mailgun's envelope
        facts; a JSON post is an event of the events webhook (a delivery receipt or an
        opt-out)."""
        if request.content_type == "application/json":
            return storable_result(mailgun_receipts(request.json()))
        form = read_form(request)
        recipients = [r.strip() for r in form.text("recipient").split(",") if r.strip()]
        envelope_from = form.text("sender") or None
        raw = form.get("body-mime")
        if raw:
            return self.parse_raw(raw, envelope_to=recipients, envelope_from=envelope_from,
                                  metadata={"vendor": "mailgun", "route": "mime"})
        if not (form.get("message-headers") or form.get("from") or form.get("body-plain")):
            raise UnparseablePayloadError("neither body-mime (raw route) nor message-headers / "
                                          "from / body-plain (parsed route)", adapter=self.name)
        parsed = self._parsed_fields(form)
        parsed.envelope_to = recipients or parsed.envelope_to
        if envelope_from is not None:
            parsed.envelope_from = envelope_from.strip().strip("<>")
        extra: dict[str, Any] = {"vendor": "mailgun", "route": "parsed"}
        for name in ("stripped-text", "stripped-signature"):
            if form.get(name):
                extra[name.replace("-", "_")] = form.text(name)[:100_000]
        return self.result_from_parsed(parsed, extra)

    def _parsed_fields(self, form: FormData) -> ParsedEmail:
        """Mailgun's parsed forward: ``message-headers`` (JSON ``[[name, value], ...]``)
        through the MIME reader for ids, addresses and dates, the bodies as posted (UTF-8),
        the ``attachment-N`` files with ``content-id-map`` for inline images."""
        head = b""
        try:
            pairs = orjson.loads(form.get("message-headers") or b"[]")
        except orjson.JSONDecodeError:
            pairs = []
        for pair in pairs if isinstance(pairs, list) else []:
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair):
                name, value = pair
                if not name or any(c in name for c in ":\r\n") or len(name) > 200:
                    continue
                value = value.replace("\r", " ").replace("\n", " ")
                head += f"{name}: {value}\r\n".encode("utf-8", "surrogatepass")
        if not head:
            for name in ("from", "subject", "To", "Message-Id"):
                if form.get(name):
                    value = form.text(name).replace("\r", " ").replace("\n", " ")
                    head += f"{name}: {value}\r\n".encode()
        s = self.settings
        try:
            parsed = parse_mime(head + b"Content-Type: text/plain\r\n\r\n",
                                max_attachment_bytes=s.max_attachment_bytes)
        except UnparseablePayloadError:
            parsed = ParsedEmail()
        if not parsed.from_ and form.get("from"):
            parsed.from_ = parse_addresses(form.text("from"))
            parsed.from_raw = [form.text("from")]
        if not parsed.subject and form.get("subject"):
            parsed.subject = form.text("subject")
        parsed.text = form.text("body-plain") or None
        parsed.html = form.text("body-html") or None
        cids: dict[str, str] = {}
        try:
            loaded = orjson.loads(form.get("content-id-map") or b"{}")
            if isinstance(loaded, dict):
                cids = {str(v): str(k) for k, v in loaded.items()}
        except orjson.JSONDecodeError:
            cids = {}
        files = [(k, v) for k, v in form.files.items() if k.startswith("attachment-")]
        files.sort(key=lambda kv: (len(kv[0]), kv[0]))
        for key, item in files:
            original = item.filename
            filename = safe_filename(original)
            if len(parsed.attachments) >= s.max_attachments:
                parsed.skipped.append({"filename": filename, "size": len(item.data), "reason": "too many"})
                continue
            if len(item.data) > s.max_attachment_bytes:
                parsed.skipped.append({"filename": filename, "size": len(item.data),
                                       "reason": f"larger than {s.max_attachment_bytes} bytes"})
                continue
            cid = normalize_message_id(cids.get(key)) if key in cids else None
            parsed.attachments.append(Attachment(
                data=item.data, content_type=item.content_type or "application/octet-stream",
                filename=filename, content_id=cid, inline=cid is not None,
                original_filename=original if original != filename else None))
        digest = hashlib.sha256(form.get("message-headers") or b"")
        digest.update(form.get("body-plain") or b"")
        digest.update(form.get("token") or b"")
        parsed.raw_sha256 = digest.hexdigest()
        return parsed

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

