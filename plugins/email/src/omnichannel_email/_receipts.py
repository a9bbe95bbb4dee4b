"""Delivery receipts from the vendors' event webhooks: Mailgun's events webhook, SendGrid's
Event Webhook and Postmark's delivery / bounce / open / spam-complaint / subscription webhooks.

Each event becomes a :class:`~omnichannel_sdk.StatusUpdate` for the external id our ``send``
recorded (the hub applies it forward-only: a ``delivered`` after a ``read`` changes nothing), or,
for a spam complaint or an unsubscribe, an inbound message carrying an ``opt_out`` event (the
core then marks the contact and refuses further sends). Events that move nothing (``accepted``,
``processed``…) are dropped. The parsers are pure functions of the decoded JSON: anything that
is not what a vendor sends raises :class:`~omnichannel_sdk.UnparseablePayloadError`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from omnichannel_sdk import (
    Address,
    EventPart,
    InboundMessage,
    MessageError,
    ParseFailure,
    ParseResult,
    StatusUpdate,
    UnparseablePayloadError,
)

from ._mime import normalize_message_id

__all__ = [
    "CUSTOM_ARG",
    "POSTMARK_RECORD_TYPES",
    "mailgun_receipts",
    "postmark_receipts",
    "sendgrid_receipts",
]

CUSTOM_ARG = "omni_message_id"
"""The SendGrid ``custom_args`` key our sends carry (our Message-ID); events echo it back."""

POSTMARK_RECORD_TYPES = frozenset({"Delivery", "Bounce", "Open", "Click", "SpamComplaint",
                                   "SubscriptionChange"})
"""Postmark ``RecordType`` values of the outbound event webhooks (inbound mail has none)."""

#: Postmark bounce TypeCodes that end delivery for good (hard bounces and refusals); the
#: others (transient, soft, DNS, auto-responder, challenge…) leave the message as it is.
_POSTMARK_HARD = frozenset({1, 8192, 100000, 100002, 100003, 100006, 100007, 100009, 100010})

_MAX_TEXT = 500
_MAX_EVENTS = 1000


def _text(value: Any, limit: int = _MAX_TEXT) -> str:
    return str(value)[:limit] if value is not None else ""


def _when(value: Any) -> datetime:
    """Epoch seconds (int, float or digits) or ISO 8601; now when absent or unreadable."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float) or (isinstance(value, str) and
                                              re.fullmatch(r"\d{9,11}(\.\d+)?", value)):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00")))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    return datetime.now(UTC)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _opt_event(vendor: str, event_id: str, recipient: Any, reference: str, name: str,
               reason: str, when: datetime) -> InboundMessage | None:
    """The customer's opt-out (or opt-in) as an inbound event message threaded to our mail."""
    try:
        sender = Address(channel="email", handle=str(recipient or ""))
    except ValueError:
        return None
    return InboundMessage(
        external_id=f"{vendor}-event:{event_id}"[:500], sender=sender,
        parts=[EventPart(name=name, data={"reason": reason, "vendor": vendor,
                                          "message_id": reference})],
        references=[reference], created_at=when,
        metadata={"vendor": vendor, "receipt_for": reference, "auto_reply": True})


def _status(external_id: str, status: str, when: datetime, metadata: dict[str, Any],
            error: MessageError | None = None) -> StatusUpdate:
    return StatusUpdate(external_id=external_id[:998], status=status, timestamp=when,
                        error=error, metadata=metadata)


# -- Mailgun -------------------------------------------------------------------------------------


def mailgun_receipts(body: Any) -> ParseResult:
    """A Mailgun events webhook body (``{"signature": {...}, "event-data": {...}}``)."""
    data = _dict(body).get("event-data")
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise UnparseablePayloadError("not a Mailgun event: no event-data", adapter="mailgun")
    event = data["event"].lower()
    headers = _dict(_dict(data.get("message")).get("headers"))
    ident = normalize_message_id(_text(headers.get("message-id"), 998))
    if not ident:
        raise UnparseablePayloadError("Mailgun event without message.headers.message-id",
                                      adapter="mailgun")
    when = _when(data.get("timestamp"))
    recipient = _text(data.get("recipient"), 320)
    event_id = _text(data.get("id"), 200) or f"{event}:{ident}:{recipient}"
    meta: dict[str, Any] = {"vendor": "mailgun", "event": event, "event_id": event_id,
                            "recipient": recipient}
    status = _dict(data.get("delivery-status"))
    detail = _text(status.get("description") or status.get("message"))
    code = status.get("code")
    items: list[InboundMessage | StatusUpdate] = []
    if event == "delivered":
        items.append(_status(ident, "delivered", when, {**meta, "response": detail}))
    elif event in ("failed", "rejected"):
        severity = _text(data.get("severity"), 20).lower() or "permanent"
        reason = _text(data.get("reason"), 100)
        why = detail or reason or "delivery failed"
        if severity == "temporary":  # Mailgun retries on its own: tried, not failed
            items.append(_status(ident, "sent", when, {**meta, "deferred": why,
                                                       "severity": severity}))
        else:
            items.append(_status(ident, "failed", when, {**meta, "severity": severity,
                                                         "reason": reason},
                                 MessageError(code="undelivered", message=why,
                                              vendor_code=_text(code, 20) or reason or None)))
    elif event in ("opened", "clicked"):
        items.append(_status(ident, "read", when, meta))
    elif event in ("complained", "unsubscribed"):
        opt = _opt_event("mailgun", event_id, recipient, ident, "opt_out", event, when)
        if opt is not None:
            items.append(opt)
    return ParseResult(items=items)


# -- SendGrid ------------------------------------------------------------------------------------


def sendgrid_message_ref(event: dict[str, Any]) -> str | None:
    """The external id a SendGrid event is for: our Message-ID from the custom arg our sends
    carry, else the ``X-Message-Id`` part of ``sg_message_id`` (before ``.filter…``/``.recvd…``)."""
    ours = event.get(CUSTOM_ARG)
    if isinstance(ours, str) and ours.strip():
        return normalize_message_id(ours[:998])
    sg_id = event.get("sg_message_id")
    if not isinstance(sg_id, str) or not sg_id.strip():
        return None
    found = re.match(r"^(.+?)\.(?:filter|recvd)", sg_id.strip())
    return (found.group(1) if found else sg_id.strip())[:998]


_SENDGRID_OPT = {"spamreport": "opt_out", "unsubscribe": "opt_out",
                 "group_unsubscribe": "opt_out", "group_resubscribe": "opt_in"}


def _sendgrid_event(event: dict[str, Any]) -> InboundMessage | StatusUpdate | None:
    name = event.get("event")
    if not isinstance(name, str):
        raise UnparseablePayloadError("SendGrid event without an event name", adapter="sendgrid")
    name = name.lower()
    ident = sendgrid_message_ref(event)
    if not ident:
        raise UnparseablePayloadError("SendGrid event without sg_message_id", adapter="sendgrid")
    when = _when(event.get("timestamp"))
    recipient = _text(event.get("email"), 320)
    event_id = _text(event.get("sg_event_id"), 200) or f"{name}:{ident}:{recipient}"
    meta: dict[str, Any] = {"vendor": "sendgrid", "event": name, "event_id": event_id,
                            "recipient": recipient}
    if name == "processed":
        return _status(ident, "sent", when, meta)
    if name == "delivered":
        return _status(ident, "delivered", when, {**meta, "response": _text(event.get("response"))})
    if name == "deferred":
        return _status(ident, "sent", when, {**meta, "deferred": _text(event.get("response")),
                                             "attempt": _text(event.get("attempt"), 10)})
    if name in ("bounce", "dropped"):
        why = _text(event.get("reason") or event.get("response")) or f"{name}"
        kind = _text(event.get("type"), 40)
        return _status(ident, "failed", when, {**meta, "type": kind or name,
                                               "classification": _text(
                                                   event.get("bounce_classification"), 60)},
                       MessageError(code="undelivered", message=why,
                                    vendor_code=_text(event.get("status"), 20) or kind or name))
    if name in ("open", "click"):
        return _status(ident, "read", when, meta)
    if name in _SENDGRID_OPT:
        return _opt_event("sendgrid", event_id, recipient, ident, _SENDGRID_OPT[name], name, when)
    return None


def sendgrid_receipts(body: Any) -> ParseResult:
    """A SendGrid Event Webhook post: a JSON array of events (a bad event is dead-lettered
    alone, the others still apply)."""
    if not isinstance(body, list):
        raise UnparseablePayloadError("not a SendGrid event batch: expected a JSON array",
                                      adapter="sendgrid")
    if len(body) > _MAX_EVENTS:
        raise UnparseablePayloadError(f"more than {_MAX_EVENTS} events in one post",
                                      adapter="sendgrid")
    result = ParseResult()
    for event in body:
        try:
            if not isinstance(event, dict):
                raise UnparseablePayloadError("a SendGrid event is not an object", adapter="sendgrid")
            item = _sendgrid_event(event)
        except UnparseablePayloadError as exc:
            result.failures.append(ParseFailure(error=str(exc), fragment=event))
            continue
        if item is not None:
            result.items.append(item)
    if not result.items and result.failures and len(result.failures) == len(body):
        raise UnparseablePayloadError(result.failures[0].error, adapter="sendgrid")
    return result


# -- Postmark ------------------------------------------------------------------------------------


def is_postmark_event(body: Any) -> bool:
    """Whether a Postmark JSON post is an outbound event (not inbound mail)."""
    if not isinstance(body, dict):
        return False
    kind = body.get("RecordType")
    return isinstance(kind, str) and kind in POSTMARK_RECORD_TYPES


def postmark_receipts(body: Any) -> ParseResult:
    """A Postmark Delivery / Bounce / Open / Click / SpamComplaint / SubscriptionChange post."""
    if not is_postmark_event(body):
        raise UnparseablePayloadError("not a Postmark event webhook", adapter="postmark")
    kind = body["RecordType"]
    ident = _text(body.get("MessageID"), 200).strip()
    if not ident:
        raise UnparseablePayloadError("Postmark event without MessageID", adapter="postmark")
    recipient = _text(body.get("Recipient") or body.get("Email"), 320)
    event_id = _text(body.get("ID"), 100) or f"{kind}:{ident}:{recipient}"
    meta: dict[str, Any] = {"vendor": "postmark", "event": kind, "event_id": event_id,
                            "recipient": recipient}
    items: list[InboundMessage | StatusUpdate] = []
    if kind == "Delivery":
        items.append(_status(ident, "delivered", _when(body.get("DeliveredAt")),
                             {**meta, "response": _text(body.get("Details"))}))
    elif kind == "Bounce":
        when = _when(body.get("BouncedAt"))
        try:
            code = int(body.get("TypeCode"))
        except (TypeError, ValueError, OverflowError):
            code = 0
        name = _text(body.get("Type"), 60)
        why = _text(body.get("Description") or body.get("Details")) or name or "bounced"
        if body.get("Inactive") is True or code in _POSTMARK_HARD:
            items.append(_status(ident, "failed", when, {**meta, "type": name,
                                                         "details": _text(body.get("Details"))},
                                 MessageError(code="undelivered", message=why,
                                              vendor_code=str(code) if code else name or None)))
        else:
            items.append(_status(ident, "sent", when, {**meta, "type": name, "deferred": why}))
    elif kind in ("Open", "Click"):
        items.append(_status(ident, "read", _when(body.get("ReceivedAt")), meta))
    else:
        when = _when(body.get("BouncedAt") or body.get("ChangedAt"))
        if kind == "SpamComplaint":
            name, reason = "opt_out", "spam_complaint"
        else:
            suppress = body.get("SuppressSending")
            name = "opt_out" if suppress is True else "opt_in"
            reason = _text(body.get("SuppressionReason"), 60) or "subscription_change"
        opt = _opt_event("postmark", f"{kind}:{event_id}:{when.timestamp():.0f}", recipient, ident,
                         name, reason, when)
        if opt is not None:
            items.append(opt)
    return ParseResult(items=items)
