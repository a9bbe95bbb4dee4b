"""``postmark``: inbound JSON webhook (protected by HTTP basic auth in the webhook URL;
``RawEmail`` is parsed when the server includes it), delivery / bounce / open / spam-complaint /
subscription-change webhooks on the same URL (told apart by their ``RecordType``), outbound
``POST /email``."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import SecretStr

from omnichannel_sdk import (
    AuthenticationError,
    Message,
    ParseResult,
    Part,
    RejectedError,
    SendResult,
    UnparseablePayloadError,
    WebhookRequest,
)

from ._base import EmailAdapter, EmailSettings, storable_result
from ._mime import (
    Attachment,
    ParsedEmail,
    decode_header_value,
    normalize_message_id,
    parse_addresses,
    parse_message_ids,
    safe_filename,
    storable_text,
)
from ._parts import _date
from ._receipts import is_postmark_event, postmark_receipts
from ._sendgrid import check_basic_auth

__all__ = ["PostmarkAdapter", "PostmarkSettings"]

#: Postmark ErrorCodes that mean "this recipient cannot get mail from us".
_RECIPIENT_CODES = {300, 406}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pairs(full: Any, flat: Any) -> list[tuple[str, str]]:
    if isinstance(full, list):
        out = []
        for item in full:
            if isinstance(item, dict) and isinstance(item.get("Email"), str):
                out.append((str(item.get("Name") or ""), item["Email"]))
        if out:
            return out
    return parse_addresses(flat) if isinstance(flat, str) else []


def parsed_from_postmark(body: dict[str, Any], max_attachment_bytes: int,
                         max_attachments: int = 100) -> ParsedEmail:
    """A :class:`ParsedEmail` from Postmark's inbound JSON (without ``RawEmail``): at most
    ``max_attachments`` attachments are decoded (the rest are listed as skipped without
    being decoded), names made safe (the original kept)."""
    headers: dict[str, str] = {}
    for item in _list(body.get("Headers")):
        if isinstance(item, dict) and isinstance(item.get("Name"), str):
            headers.setdefault(item["Name"].lower(), decode_header_value(str(item.get("Value", ""))))
    parsed = ParsedEmail(headers=headers)
    parsed.message_id = normalize_message_id(headers.get("message-id"))
    parsed.in_reply_to = parse_message_ids(headers.get("in-reply-to"))
    parsed.references = parse_message_ids(headers.get("references"))
    parsed.subject = str(body.get("Subject") or "")
    from_full = body.get("FromFull")
    parsed.from_ = _pairs([from_full] if isinstance(from_full, dict) else None, body.get("From"))
    parsed.to = _pairs(body.get("ToFull"), body.get("To"))
    parsed.cc = _pairs(body.get("CcFull"), body.get("Cc"))
    parsed.reply_to = parse_addresses(str(body.get("ReplyTo") or ""))
    if isinstance(body.get("OriginalRecipient"), str):
        parsed.envelope_to = [body["OriginalRecipient"]]
    parsed.date = _date(str(body.get("Date") or ""))
    parsed.text = str(body.get("TextBody") or "") or None
    parsed.html = str(body.get("HtmlBody") or "") or None
    for item in _list(body.get("Attachments")):
        if not isinstance(item, dict):
            continue
        if len(parsed.attachments) >= max_attachments:
            content = item.get("Content")
            parsed.skipped.append({
                "filename": safe_filename(str(item.get("Name") or "")),
                "size": len(content) * 3 // 4 if isinstance(content, str) else 0,
                "reason": "too many"})
            if len(parsed.skipped) >= 1000:  # a post with 55,000 attachments lists no more
                parsed.defects.append("attachment list truncated")
                break
            continue
        try:
            data = base64.b64decode(str(item.get("Content") or ""), validate=False)
        except (binascii.Error, ValueError):
            parsed.defects.append("bad attachment base64")
            continue
        original = str(item.get("Name") or "") or None
        name = safe_filename(original)
        if len(data) > max_attachment_bytes:
            parsed.skipped.append({"filename": name, "size": len(data),
                                   "reason": f"larger than {max_attachment_bytes} bytes"})
            continue
        cid = normalize_message_id(str(item.get("ContentID") or "")) or None
        parsed.attachments.append(Attachment(
            data=data, content_type=str(item.get("ContentType") or "application/octet-stream").lower(),
            filename=name, content_id=cid, inline=bool(cid),
            original_filename=original if original != name else None))
    parsed.raw_sha256 = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return parsed


class PostmarkSettings(EmailSettings):
    """Settings of a Postmark channel."""

    server_token: SecretStr
    """Server API token (sends)."""
    basic_auth_username: str
    """User name of the basic auth put in the inbound webhook URL."""
    basic_auth_password: SecretStr
    """Password of that basic auth."""
    message_stream: str = "outbound"
    """Message stream our mail goes through."""


class PostmarkAdapter(EmailAdapter[PostmarkSettings]):
    """Postmark: inbound JSON in, the Email API out."""

    name: ClassVar[str] = "postmark"
    default_api_base: ClassVar[str | None] = "https://api.postmarkapp.com"

    def verify(self, request: WebhookRequest) -> None:
        """Postmark signs nothing: the webhook URL carries basic auth credentials."""
        check_basic_auth(request, self.settings.basic_auth_username,
                         self.settings.basic_auth_password.get_secret_value(), self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """``RawEmail`` through the MIME parser when present, else the JSON fields; a post
        with an event ``RecordType`` is a delivery receipt (or an opt-out)."""
        body = request.json()
        if is_postmark_event(body):
            return storable_result(postmark_receipts(body))
        if not isinstance(body, dict) or not (body.get("FromFull") or body.get("From")
                                              or body.get("RawEmail")):
            raise UnparseablePayloadError("not a Postmark inbound message", adapter=self.name)
        vendor_id = storable_text(str(body["MessageID"]))[:200] if body.get("MessageID") else None
        extra = {"vendor": "postmark", "vendor_id": vendor_id}
        if body.get("MailboxHash"):
            extra["mailbox_hash"] = str(body["MailboxHash"])[:200]
        raw = body.get("RawEmail")
        if isinstance(raw, str) and raw.strip():
            recipients = [str(body["OriginalRecipient"])] if body.get("OriginalRecipient") else []
            return self.parse_raw(raw.encode("utf-8", "surrogateescape"), envelope_to=recipients,
                                  metadata=extra)
        parsed = parsed_from_postmark(body, self.settings.max_attachment_bytes,
                                      self.settings.max_attachments)
        if parsed.message_id is None and vendor_id:
            parsed.message_id = f"{vendor_id}@postmark.invalid"
        return self.result_from_parsed(parsed, extra)

    def _raise_for_vendor(self, response: httpx.Response) -> None:
        """Postmark answers errors with ``{"ErrorCode", "Message"}`` (HTTP 422, 401, 429…)."""
        code: int | None = None
        detail: str | None = None
        try:
            body = response.json()
            if isinstance(body, dict):
                code = int(body["ErrorCode"]) if "ErrorCode" in body else None
                detail = str(body.get("Message") or "")[:200] or None
        except (ValueError, TypeError, KeyError):
            pass
        if response.status_code < 400 and not code:
            return
        what = f"{self.name}: HTTP {response.status_code}" + (f": {detail}" if detail else "")
        if code == 10 or response.status_code in (401, 403):
            raise AuthenticationError(what, vendor_code=code, status_code=response.status_code)
        if response.status_code == 429:
            raise self.error_for_status(429, response, code, detail)
        if code in _RECIPIENT_CODES or response.status_code == 422 or code:
            raise RejectedError(what, vendor_code=code, status_code=response.status_code)
        raise self.error_for_status(response.status_code, response, code, detail)

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """The Email API with our Message-ID and thread headers; the external ids are our
        Message-ID and Postmark's ``MessageID``."""
        out = await self.outbound_email(message, parts)
        payload: dict[str, Any] = {
            "From": f"{out.from_name} <{out.from_address}>" if out.from_name else out.from_address,
            "To": ", ".join(a for _, a in out.to),
            "Subject": out.subject,
            "TextBody": out.text,
            "Headers": [{"Name": n, "Value": v} for n, v in out.header_pairs()],
            "MessageStream": self.settings.message_stream,
        }
        if out.html:
            payload["HtmlBody"] = out.html
        if out.reply_to:
            payload["ReplyTo"] = out.reply_to
        if out.attachments:
            payload["Attachments"] = [{
                "Name": a.filename or "attachment", "Content": base64.b64encode(a.data).decode(),
                "ContentType": a.content_type,
                **({"ContentID": f"cid:{a.content_id}"} if a.content_id else {})}
                for a in out.attachments]
        response = await self.request(
            "POST", f"{self.api_base}/email", content=orjson.dumps(payload),
            headers={"x-postmark-server-token": self.settings.server_token.get_secret_value(),
                     "accept": "application/json", "content-type": "application/json"})
        self._raise_for_vendor(response)
        vendor_id = None
        try:
            body = response.json()
            vendor_id = str(body.get("MessageID")) if isinstance(body, dict) and body.get(
                "MessageID") else None
        except ValueError:
            vendor_id = None
        ids = [out.message_id] + ([vendor_id] if vendor_id else [])
        return SendResult(external_ids=ids, status="sent",
                          metadata={"message_id": out.message_id, "vendor_id": vendor_id})

