"""How the inbox shows the SDK's objects: messages, conversations, contacts and events as JSON
for the page (channel names, readable sender names, initials, email, audio, events)."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .._events import ChannelSignal
from .._models import (
    Address,
    Contact,
    Conversation,
    EventPart,
    MediaPart,
    Message,
    TextPart,
    TranscriptPart,
)
from .._service_levels import CHAT_TARGET, DEFAULT_TARGETS

__all__ = [
    "CHANNEL_NAMES",
    "channel_name",
    "contact_json",
    "conversation_json",
    "event_json",
    "initials",
    "message_json",
    "readable_name",
    "sla_target",
]

CHANNEL_NAMES = {
    "webchat": "Web chat", "email": "Email", "sms": "SMS", "whatsapp": "WhatsApp",
    "telegram": "Telegram", "messenger": "Messenger", "instagram": "Instagram",
    "wechat": "WeChat", "voice": "Voice", "custom": "Custom", "fake": "Test",
}

_EVENT_LABELS = {
    "subscribe": "followed the account", "unsubscribe": "unfollowed the account",
    "scan": "scanned a QR code", "location": "shared their location",
    "click": "tapped a menu item", "view": "opened a menu link", "postback": "pressed a button",
    "referral": "arrived from a link", "reaction": "reacted", "edit": "edited a message",
    "deleted": "deleted a message", "standby": "is handled by another app",
    "optin": "opted in", "opt_out": "opted out", "opt_in": "opted in",
    "bounced": "the email bounced", "complained": "marked the email as spam",
}

# vendors' opaque ids: page-scoped Messenger ids, WeChat OpenIDs, web chat visitor ids
_OPAQUE = re.compile(r"^(v_[\w-]+|\d{9,}|o[\w-]{20,}|[\w-]{24,})$")
_SCOPED = frozenset({"webchat", "messenger", "instagram", "wechat"})  # ids mean nothing to people
_MARKS = re.compile(r"\*\*|`|\[([^\]]+)\]\([^)]*\)")
_KIND_WORDS = {"audio": "Voice message", "image": "Photo", "video": "Video", "sticker": "Sticker"}
_PHONE = re.compile(r"^\+?[\d\s().-]{6,}$")


def channel_name(kind: str) -> str:
    """``whatsapp`` → ``WhatsApp``: the channel kind as people write it."""
    return CHANNEL_NAMES.get(kind, kind.replace("-", " ").replace("_", " ").capitalize())


def sla_target(kind: str) -> float:
    """The response-time target of a channel kind (the service-level defaults)."""
    return DEFAULT_TARGETS.get(kind, CHAT_TARGET)


def readable_name(address: Address) -> str:
    """A name people can read: the display name, an email or phone number, else the channel's
    word for an anonymous person and a short stable number (never ``v_Rj0l…``)."""
    if address.display_name:
        return address.display_name
    handle = address.handle
    if "@" in handle or (address.channel not in _SCOPED and (
            _PHONE.match(handle) or not _OPAQUE.match(handle))):
        return handle
    number = int(hashlib.sha256(f"{address.channel}:{handle}".encode()).hexdigest()[:8], 16) % 10_000
    word = "Visitor" if address.channel == "webchat" else f"{channel_name(address.channel)} user"
    return f"{word} {number:04d}"


def initials(name: str) -> str:
    """``Ana Souza`` → ``AS``, ``李雷`` → ``李``, ``+4915…`` → ``#``."""
    words = [w for w in re.split(r"[\s@._-]+", name) if w]
    if not words or not words[0][0].isalpha():
        return "#"
    if not words[0][0].isascii():
        return words[0][0]
    letters = [w[0] for w in words[:2] if w[0].isalpha()]
    return "".join(letters).upper() or "#"


def _color(seed: str) -> str:
    return f"hsl({int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) % 360} 55% 42%)"


def _avatar(contact: Contact | None) -> str | None:
    if contact is None:
        return None
    for key in ("avatar_url", "avatar", "picture", "headimgurl", "profile_pic"):
        value = contact.profile.get(key)
        if isinstance(value, str) and value.startswith("https://"):
            return value
    return None


def _media_href(part: MediaPart) -> str | None:
    if part.blob_key:
        return f"/demo/blob/{part.blob_key}?type={quote(part.content_type or '')}"
    if part.url and part.url.startswith(("http://", "https://")):
        return part.url
    return None


def _event_label(part: EventPart) -> str:
    label = _EVENT_LABELS.get(part.name.lower(), part.name.replace("_", " "))
    detail = part.data.get("title") or part.data.get("reaction") or part.data.get("emoji") \
        or part.data.get("reason")
    return f"{label}: {detail}" if isinstance(detail, str) and detail else label


def _retry(message: Message) -> dict[str, Any] | None:
    """The outbox's retry state (``metadata["delivery"]``: attempts, last error, next try)."""
    state = message.metadata.get("delivery")
    if not isinstance(state, dict) or not state.get("attempts"):
        return None
    return {"attempts": state.get("attempts"), "next_at": state.get("next_attempt_at"),
            "last_error": state.get("last_error")}


def message_json(m: Message) -> dict[str, Any]:
    """A message as the inbox shows it."""
    media = [{"kind": p.kind, "name": p.filename or p.caption, "href": _media_href(p),
              "content_type": p.content_type, "duration": p.duration}
             for p in m.parts if isinstance(p, MediaPart)]
    events = [{"name": p.name, "label": _event_label(p)}
              for p in m.parts if isinstance(p, EventPart)]
    transcript = [{"speaker": s.speaker, "start": s.start, "text": s.text}
                  for p in m.parts if isinstance(p, TranscriptPart) for s in p.segments]
    others = [p.type for p in m.parts if p.type not in ("text", "media", "event", "transcript")]
    text = m.text or ", ".join(others)
    markdown = any(isinstance(p, TextPart) and p.format == "markdown" for p in m.parts)
    cc = m.metadata.get("cc") if m.channel == "email" else None
    quoted = m.metadata.get("quoted") if m.channel == "email" else None
    return {"id": m.id, "conversation_id": m.conversation_id, "channel": m.channel,
            "channel_key": m.channel_key, "direction": m.direction,
            "kind": "event" if events and not text and not media else "message",
            "sender": m.sender.handle, "sender_name": readable_name(m.sender),
            "text": text, "markdown": markdown, "media": media, "events": events,
            "transcript": transcript, "subject": m.subject if m.channel == "email" else None,
            "cc": [str(a) for a in cc] if isinstance(cc, list) else [],
            "quoted": quoted if isinstance(quoted, str) else None,
            "status": m.status, "error": m.error.message if m.error else None,
            "error_code": m.error.code if m.error else None, "retry": _retry(m),
            "author": m.author.name if m.author else None,
            "author_kind": m.author.kind if m.author else None,
            "created_at": m.created_at.isoformat()}


def _preview(last: Message | None) -> str:
    if last is None:
        return ""
    events = [_event_label(p) for p in last.parts if isinstance(p, EventPart)]
    text = _MARKS.sub(lambda m: m.group(1) or "", last.text) or ", ".join(
        (_KIND_WORDS.get(p.kind) or p.filename or p.kind) if isinstance(p, MediaPart) else p.type
        for p in last.parts if not isinstance(p, (EventPart, TranscriptPart)))
    return (text or ("· " + ", ".join(events) if events else ""))[:120]


def contact_json(contact: Contact | None) -> dict[str, Any]:
    """A contact's panel: every address, the profile."""
    if contact is None:
        return {"id": None, "name": None, "addresses": [], "profile": {}}
    return {"id": contact.id, "name": contact.display_name,
            "addresses": [{"channel": a.channel, "channel_name": channel_name(a.channel),
                           "handle": a.handle,
                           "label": readable_name(a.model_copy(update={"display_name": None}))}
                          for a in contact.addresses],
            "profile": {k: v for k, v in contact.profile.items()
                        if isinstance(v, (str, int, float, bool))},
            "opted_out": list(contact.opted_out)}


def conversation_json(conv: Conversation, contact: Contact | None, messages: list[Message],
                      seen_at: datetime | None) -> dict[str, Any]:
    """A conversation's row in the list and its header (no internal thread key)."""
    handles = {(a.channel, a.handle) for a in (contact.addresses if contact else [])}
    customer = next((a for a in conv.participants if (a.channel, a.handle) in handles),
                    conv.participants[0] if conv.participants else None)
    title = (contact.display_name if contact and contact.display_name else None) or (
        readable_name(customer) if customer else channel_name(conv.channel))
    emails = [a.handle for a in (contact.addresses if contact else []) if a.channel == "email"]
    claimed = contact.profile.get("unverified_email") if contact else None
    if isinstance(claimed, str) and claimed not in emails:
        emails.append(f"{claimed} (unverified)")
    last = messages[-1] if messages else None
    replied = max((m.created_at for m in messages if m.direction == "outbound"), default=None)
    floor = max((t for t in (replied, seen_at) if t is not None), default=None)
    unread = sum(1 for m in messages if m.direction == "inbound"
                 and (floor is None or m.created_at > floor))
    waiting = None
    for m in messages:  # the first customer message no person has answered yet
        if m.direction == "inbound":
            waiting = waiting or m.created_at
        elif m.author is not None and m.author.kind == "human":
            waiting = None
    return {"id": conv.id, "channel": conv.channel, "channel_name": channel_name(conv.channel),
            "channel_key": conv.channel_key, "status": conv.status, "title": title,
            "initials": initials(title), "color": _color(conv.contact_id),
            "avatar": _avatar(contact), "contact_id": conv.contact_id,
            "address": customer.handle if customer and customer.handle != title else None,
            "emails": emails, "subject": conv.subject, "preview": _preview(last),
            "last_direction": last.direction if last else None, "unread": unread,
            "waiting_since": waiting.isoformat() if waiting and conv.status == "open" else None,
            "sla_target": sla_target(conv.channel),
            "last_at": (last.created_at if last else conv.created_at).isoformat()}


def _signal_json(event: ChannelSignal) -> dict[str, Any]:
    """A ``channel.signal`` as the inbox sees it: ``{"type": "signal", "name": "typing" | "seen",
    "conversation_id", "from", "on"}``."""
    name = "typing" if event.name == "typing_stopped" else event.name
    on = event.name == "typing" and bool(event.data.get("on"))
    sender = event.data.get("from")
    return {"type": "signal", "name": name, "channel_key": event.channel_key,
            "conversation_id": event.conversation_id, "on": on,
            "from": sender if isinstance(sender, str) else None}


def event_json(event: Any) -> dict[str, Any]:
    """A hub event for the inbox's WebSocket."""
    if isinstance(event, ChannelSignal):
        return _signal_json(event)
    out: dict[str, Any] = {"type": event.type}
    message = getattr(event, "message", None)
    if message is not None:
        out["message"] = message_json(message)
    conversation = getattr(event, "conversation", None)
    if conversation is not None:
        out["conversation_id"] = conversation.id
    if hasattr(event, "previous"):
        out["previous"] = event.previous
    return out
