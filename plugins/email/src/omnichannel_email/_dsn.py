"""Delivery status notifications (RFC 3464) and automatic replies (RFC 3834).

A bounce tells us which of *our* messages failed and why; an auto-reply (out of office,
vacation, list robot) must never be answered automatically, or two robots talk forever.
"""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import re
from email.message import Message
from typing import Any

from omnichannel_sdk import MessageError, StatusUpdate

from ._charsets import decode_bytes
from ._headers import normalize_message_id
from ._parsed import ParsedEmail
from ._parts import payload_of

__all__ = ["auto_reply_reason", "bounce_status", "read_report"]


def _fields(block: str) -> dict[str, str]:
    """``Name: value`` lines (with folded continuations), lower-case names, first wins."""
    out: dict[str, str] = {}
    name = None
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name:
            out[name] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or " " in key.strip():
            name = None
            continue
        name = key.strip().lower()
        if name not in out:
            out[name] = value.strip()
        else:
            name = None
    return out


def _text_of(part: Message) -> str:
    payload = payload_of(part)
    if isinstance(payload, list):  # the parser split message/delivery-status into blocks
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in block.raw_items())
            for block in payload if isinstance(block, Message))
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError):
        data = None
    if isinstance(data, bytes):
        return decode_bytes(data, "utf-8")
    return str(payload or "")


def read_report(report: Message) -> dict[str, Any]:
    """The facts of a ``multipart/report; report-type=delivery-status`` part: the original
    Message-ID and every recipient's action, status and diagnostic."""
    result: dict[str, Any] = {"original_message_id": None, "recipients": [], "reporting_mta": None}
    parts = payload_of(report)
    if not isinstance(parts, list):
        return result
    for part in parts:
        if not isinstance(part, Message):
            continue
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = re.split(r"\r?\n\s*\r?\n", _text_of(part).strip())
            if not blocks:
                continue
            head = _fields(blocks[0])
            result["reporting_mta"] = head.get("reporting-mta")
            recipients = [_fields(b) for b in blocks[1:]] or [head]
            for fields in recipients:
                if not any(k in fields for k in ("action", "status", "final-recipient")):
                    continue
                recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
                result["recipients"].append({
                    "recipient": recipient.split(";", 1)[-1].strip(),
                    "action": fields.get("action", "").lower(),
                    "status": fields.get("status", ""),
                    "diagnostic": fields.get("diagnostic-code", "").split(";", 1)[-1].strip(),
                })
        elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers",
                       "message/global-headers"):
            ident = None
            inner = payload_of(part)
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                for key, value in inner[0].raw_items():
                    if key.lower() == "message-id":
                        ident = str(value)
                        break
            else:
                ident = _fields(_text_of(part)).get("message-id")
            result["original_message_id"] = normalize_message_id(ident)
    return result


def bounce_status(parsed: ParsedEmail) -> StatusUpdate | None:
    """A ``failed`` (or ``delivered``) receipt for our original message, from a DSN whose
    original Message-ID is known; ``None`` for a delay notice or an untraceable bounce."""
    report = parsed.dsn
    if not report or not report.get("original_message_id"):
        return None
    recipients = report.get("recipients") or []
    failed = [r for r in recipients if r.get("action") == "failed"
              or str(r.get("status", "")).startswith("5")]
    if failed:
        first = failed[0]
        reason = first.get("diagnostic") or f"delivery failed with status {first.get('status')}"
        return StatusUpdate(
            external_id=report["original_message_id"], status="failed",
            error=MessageError(code="undelivered", message=reason[:500],
                               vendor_code=first.get("status") or None),
            metadata={"dsn": recipients[:20]})
    if recipients and all(r.get("action") in ("delivered", "relayed", "expanded")
                          for r in recipients):
        return StatusUpdate(external_id=report["original_message_id"], status="delivered",
                            metadata={"dsn": recipients[:20]})
    return None


_VACATION = re.compile(
    r"(?i)^\s*(auto(matic|matische)?[\s_-]*(reply|response|antwort)\b|autoreply|"
    r"out of (the )?office\b|abwesenheitsnotiz|r[ée]ponse automatique|"
    r"respuesta autom[áa]tica|fuera de la oficina|自动回复|自動回覆|自動返信)")
_AUTO_PREFIX = re.compile(r"(?i)^\s*(auto|automatic reply|autoreply|自动回复)\s*[:：]")


def auto_reply_reason(parsed: ParsedEmail) -> str | None:
    """Why ``parsed`` was written by a machine (RFC 3834 and the de-facto headers), or
    ``None`` for mail a person wrote."""
    h = parsed.headers
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and not auto.startswith("no"):
        return f"auto-submitted: {auto.split(';')[0]}"
    if "x-autoreply" in h or "x-autorespond" in h or "x-autoresponder" in h:
        return "x-autoreply"
    suppress = h.get("x-auto-response-suppress", "").lower()
    if any(word in suppress for word in ("all", "oof", "autoreply")):
        return "x-auto-response-suppress"
    precedence = h.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    if parsed.dsn is not None:
        return "delivery-status notification"
    if parsed.envelope_from == "" and "return-path" in h:
        return "null return path"
    if "list-id" in h or "list-unsubscribe" in h:
        return "mailing list"
    if _VACATION.search(parsed.subject or "") or _AUTO_PREFIX.search(parsed.subject or ""):
        return "vacation subject"
    return None
