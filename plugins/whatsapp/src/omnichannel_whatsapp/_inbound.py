"""WhatsApp Cloud API webhooks turned into normalized messages and receipts. Pure functions: no I/O.

One POST carries ``object: "whatsapp_business_account"`` and ``entry[].changes[]``; each change
with ``field: "messages"`` has a ``value`` with ``metadata`` (our number), ``contacts`` (the
senders' profiles), ``messages`` and/or ``statuses``. Every message and every status is parsed on
its own: a broken one becomes a :class:`ParseFailure` (dead-lettered alone), the rest go on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from omnichannel_sdk import (
    Address,
    EventPart,
    InboundMessage,
    LocationPart,
    MediaPart,
    ParseFailure,
    ParseResult,
    Part,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
)

from ._errors import status_error

__all__ = ["CHANNEL", "OBJECT", "ParseOptions", "media_id_of", "media_url", "parse_payload", "thread_key"]

CHANNEL = "whatsapp"
"""The channel kind of WhatsApp addresses (their handles are E.164 numbers)."""
OBJECT = "whatsapp_business_account"
"""The ``object`` of every WhatsApp Business Account webhook."""

_MEDIA = {"image": "image", "audio": "audio", "video": "video", "document": "file", "sticker": "sticker"}
_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed"}
_MEDIA_ID = re.compile(r"\A[A-Za-z0-9_.:-]{1,128}\Z")
_MAX_ID = 256
_WA_ID = re.compile(r"\A\+?[0-9]{7,15}\Z")  # E.164: at most 15 digits


class _Bad(ValueError):
    """An item that cannot be understood (becomes a ParseFailure)."""


@dataclass(frozen=True)
class ParseOptions:
    """What the parser needs to know about the channel."""

    adapter: str
    """Adapter name, for error messages."""
    phone_number_id: str
    """Our business phone number id: changes for another number are refused (dead-lettered)."""
    graph: str
    """Graph API base with version (``https://graph.facebook.com/v21.0``): inbound media parts
    get ``{graph}/{media id}`` as their URL, the media object the hub downloads through."""


def thread_key(customer: str, phone_number_id: str) -> str:
    """The thread key of a conversation between ``customer`` (E.164) and our number id."""
    return f"{customer}|{phone_number_id}"


def media_url(graph: str, media_id: str) -> str:
    """The Graph URL of a media object: ``GET`` it (authenticated) for the download URL."""
    return f"{graph.rstrip('/')}/{media_id}"


def media_id_of(url: str | None, graph: str) -> str | None:
    """The media id in a :func:`media_url` of this Graph base, else ``None``."""
    prefix = graph.rstrip("/") + "/"
    if not url or not url.startswith(prefix):
        return None
    rest = url[len(prefix):]
    return rest if _MEDIA_ID.match(rest) else None


def parse_payload(body: Any, options: ParseOptions) -> ParseResult:
    """Messages and receipts of one webhook body (already decoded from JSON).

    Raises :class:`UnparseablePayloadError` when the envelope is wrong (not an object, another
    ``object``, no ``entry`` list); problems of single items become ``failures``. Changes of
    other fields than ``messages`` (template or account updates) carry no conversation and are
    skipped; their raw payload stays in the store.
    """
    if not isinstance(body, dict):
        raise UnparseablePayloadError("body is not a JSON object", adapter=options.adapter)
    if body.get("object") != OBJECT:
        raise UnparseablePayloadError(f"expected object {OBJECT!r}, got {str(body.get('object'))[:40]!r}",
                                      adapter=options.adapter)
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise UnparseablePayloadError("no entry list", adapter=options.adapter)
    result = ParseResult()
    for value in _values(entries, result):
        _value(value, options, result)
    return result


def _values(entries: list[Any], result: ParseResult) -> Iterator[dict[str, Any]]:
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            result.failures.append(ParseFailure("entry has no changes list", entry))
            continue
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                result.failures.append(ParseFailure("change without a value object", change))
                continue
            field = change.get("field", "messages")
            if field != "messages":
                continue  # template/account/quality updates: no conversation in them
            yield change["value"]


def _value(value: dict[str, Any], options: ParseOptions, result: ParseResult) -> None:
    meta = value.get("metadata")
    number_id = meta.get("phone_number_id") if isinstance(meta, dict) else None
    if number_id is not None and str(number_id) != options.phone_number_id:
        result.failures.append(ParseFailure(
            f"phone number id {str(number_id)[:40]!r} is not this channel's "
            f"({options.phone_number_id}); configure a channel for it", value))
        return
    display = meta.get("display_phone_number") if isinstance(meta, dict) else None
    ours = _own(display)
    profiles = _profiles(value.get("contacts"))
    messages = value.get("messages")
    statuses = value.get("statuses")
    errors = value.get("errors")
    if messages is None and statuses is None and errors is None:
        result.failures.append(ParseFailure("value has neither messages nor statuses", value))
        return
    for name, items in (("messages", messages), ("statuses", statuses), ("errors", errors)):
        if items is None:
            continue
        if not isinstance(items, list):
            result.failures.append(ParseFailure(f"value.{name} is not a list", value))
            continue
        for item in items:
            if name == "errors":  # errors of the account or the webhook, about no message
                result.failures.append(ParseFailure(f"WhatsApp reported: {status_error(item).message}", item))
                continue
            try:
                if name == "messages":
                    result.items.append(_message(item, ours, profiles, options))
                else:
                    result.items.append(_status(item))
            except (_Bad, KeyError, TypeError, ValueError, AttributeError, OverflowError, OSError) as exc:
                result.failures.append(ParseFailure(f"{type(exc).__name__}: {exc}"[:500], item))


# -- helpers ---------------------------------------------------------------------------------------


def _own(display: Any) -> Address | None:
    if not isinstance(display, (str, int)) or isinstance(display, bool):
        return None
    return _own_address(str(display))


@functools.lru_cache(maxsize=64)
def _own_address(display: str) -> Address | None:
    """Our number as an address (cached: every webhook names the same few; addresses are frozen)."""
    try:
        return Address(channel=CHANNEL, handle=display)
    except ValueError:
        return None  # a display number we cannot read must not cost the customer's message


def _profiles(contacts: Any) -> dict[str, str]:
    """wa_id -> profile name (contacts that cannot be read are skipped: names are optional)."""
    out: dict[str, str] = {}
    if not isinstance(contacts, list):
        return out
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        wa_id, profile = contact.get("wa_id"), contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if isinstance(wa_id, (str, int)) and not isinstance(wa_id, bool) and isinstance(name, str) \
                and name.strip():
            out[str(wa_id)] = name.strip()[:256]
    return out


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _Bad(f"{what} is missing or not an id")
    text = str(value).strip()
    if not text or len(text) > _MAX_ID:
        raise _Bad(f"{what} is empty or too long")
    return text


def _str(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"{what} is not a string")


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is not an object")
    return value


def _time(value: Any) -> datetime | None:
    """WhatsApp timestamps: Unix seconds, as a string (sometimes a number)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad("timestamp is not a number")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise _Bad("timestamp is not a number")
        number = float(int(value.strip()))
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise _Bad("timestamp is not a number")
    if number > 1e11:  # milliseconds
        number /= 1000.0
    if not 0 <= number < 32503680000:  # before year 3000
        raise _Bad("timestamp out of range")
    return datetime.fromtimestamp(number, UTC)


# -- messages --------------------------------------------------------------------------------------


def _message(item: Any, ours: Address | None, profiles: dict[str, str],
             options: ParseOptions) -> InboundMessage:
    message = _dict(item, "message")
    wamid = _id(message.get("id"), "message.id")
    sender_id = _id(message.get("from"), "message.from")
    if not _WA_ID.match(sender_id):
        raise _Bad("message.from is not a WhatsApp number")
    name = profiles.get(sender_id) or (next(iter(profiles.values())) if len(profiles) == 1 else None)
    sender = Address(channel=CHANNEL, handle=sender_id, display_name=name)  # E.164 (ValueError if not)
    kind = _str(message.get("type"), "message.type") or "unknown"
    metadata: dict[str, Any] = {"type": kind, "phone_number_id": options.phone_number_id}
    references: list[str] = []
    context = message.get("context")
    if context is not None:
        context = _dict(context, "message.context")
        if context.get("id") is not None:
            references.append(_id(context["id"], "message.context.id"))
        for flag in ("forwarded", "frequently_forwarded"):
            if context.get(flag) is True:
                metadata[flag] = True
        if isinstance(context.get("referred_product"), dict):
            metadata["referred_product"] = context["referred_product"]
    if isinstance(message.get("referral"), dict):
        metadata["referral"] = message["referral"]
    if isinstance(message.get("errors"), list):
        metadata["errors"] = [status_error(e).model_dump() for e in message["errors"]][:5]
    parts = _parts(kind, message, options, metadata, references)
    if "referral" in metadata:  # the customer came from a click-to-WhatsApp ad or post
        parts.append(EventPart(name="referral", data=metadata["referral"]))
    profile: dict[str, Any] = {"whatsapp": {"wa_id": sender_id, "name": name}} if name else {}
    return InboundMessage(
        external_id=wamid, sender=sender, recipients=[ours] if ours else [], parts=parts,
        created_at=_time(message.get("timestamp")), references=references,
        thread_key=thread_key(sender.handle, options.phone_number_id), profile=profile,
        metadata=metadata)


def _parts(kind: str, message: dict[str, Any], options: ParseOptions, metadata: dict[str, Any],
           references: list[str]) -> list[Part]:
    body = message.get(kind)
    if kind == "text":
        text = _str(_dict(body, "text").get("body"), "text.body")
        if not text:
            raise _Bad("text message without a body")
        return [TextPart(text=text)]
    if kind in _MEDIA:
        media = _dict(body, kind)
        media_id = _id(media.get("id"), f"{kind}.id")
        if not _MEDIA_ID.match(media_id):
            raise _Bad(f"{kind}.id is not a media id")
        if media.get("voice") is True:
            metadata["voice"] = True
        if isinstance(media.get("sha256"), str):
            metadata.setdefault("media_sha256", {})[media_id] = media["sha256"][:128]
        if media.get("animated") is True:
            metadata["animated"] = True
        return [MediaPart(kind=_MEDIA[kind], url=media_url(options.graph, media_id),
                          content_type=_str(media.get("mime_type"), f"{kind}.mime_type"),
                          filename=_str(media.get("filename"), f"{kind}.filename"),
                          caption=_str(media.get("caption"), f"{kind}.caption") or None)]
    if kind == "location":
        place = _dict(body, "location")
        if isinstance(place.get("url"), str):
            metadata["location_url"] = place["url"][:2048]
        return [LocationPart(latitude=float(place["latitude"]), longitude=float(place["longitude"]),
                             label=_str(place.get("name"), "location.name"),
                             address=_str(place.get("address"), "location.address"))]
    if kind == "contacts":
        return _contacts(body)
    if kind == "interactive":
        return _interactive(_dict(body, "interactive"))
    if kind == "button":  # a template's quick reply button
        button = _dict(body, "button")
        text = _str(button.get("text"), "button.text")
        pressed: dict[str, Any] = {k: v for k, v in (
            ("payload", _str(button.get("payload"), "button.payload")), ("title", text)) if v is not None}
        pressed["source"] = "template_button"
        return [*([TextPart(text=text)] if text else []), EventPart(name="postback", data=pressed)]
    if kind == "reaction":
        reaction = _dict(body, "reaction")
        target = _id(reaction.get("message_id"), "reaction.message_id")
        emoji = _str(reaction.get("emoji"), "reaction.emoji") or ""
        references.append(target)
        return [EventPart(name="reaction", data={"message_id": target, "emoji": emoji,
                                                 "action": "react" if emoji else "unreact"})]
    if kind == "system":  # e.g. the customer changed their number
        system = _dict(body, "system")
        return [EventPart(name=_str(system.get("type"), "system.type") or "system", data=system)]
    # order, unsupported, request_welcome and types WhatsApp adds later: kept, never dropped
    data: dict[str, Any] = {"type": kind}
    if isinstance(body, dict):
        data[kind] = body
    if isinstance(message.get("errors"), list):
        data["errors"] = metadata.get("errors", [])
    return [EventPart(name="unsupported" if kind in ("unsupported", "unknown") else kind, data=data)]


def _interactive(interactive: dict[str, Any]) -> list[Part]:
    kind = _str(interactive.get("type"), "interactive.type") or ""
    if kind in ("button_reply", "list_reply"):
        reply = _dict(interactive.get(kind), f"interactive.{kind}")
        action_id = _id(reply.get("id"), f"{kind}.id")
        title = _str(reply.get("title"), f"{kind}.title") or action_id
        # the reply carries back the id of the action we offered; its kind and value are
        # filled in from the answered message once stored (WhatsAppAdapter.resolve_action)
        data: dict[str, Any] = {"id": action_id, "title": title, "source": kind}
        description = _str(reply.get("description"), f"{kind}.description")
        if description:
            data["description"] = description
        return [TextPart(text=title), EventPart(name="action", data=data)]
    if kind == "nfm_reply":  # a WhatsApp Flow was submitted
        reply = _dict(interactive.get("nfm_reply"), "interactive.nfm_reply")
        return [EventPart(name="flow_reply", data=reply)]
    return [EventPart(name="interactive", data=interactive)]


def _contacts(body: Any) -> list[Part]:
    if not isinstance(body, list) or not body:
        raise _Bad("contacts message without contacts")
    lines: list[str] = []
    for card in body:
        card = _dict(card, "contact")
        name = card.get("name")
        shown = _str(name.get("formatted_name"), "name.formatted_name") if isinstance(name, dict) else None
        phones = [p.get("phone") for p in card.get("phones") or [] if isinstance(p, dict)
                  and isinstance(p.get("phone"), str)]
        lines.append(" ".join(x for x in (shown or "contact", *phones[:3]) if x))
    return [TextPart(text="Shared contact: " + "; ".join(lines)),
            EventPart(name="contacts", data={"contacts": body})]


# -- statuses --------------------------------------------------------------------------------------


def _status(item: Any) -> StatusUpdate:
    status = _dict(item, "status")
    wamid = _id(status.get("id"), "status.id")
    name = _str(status.get("status"), "status.status") or ""
    ours = _STATUSES.get(name)
    if ours is None:
        raise _Bad(f"unknown status {name[:20]!r}")
    metadata: dict[str, Any] = {"whatsapp_status": name}
    for key in ("conversation", "pricing"):
        if isinstance(status.get(key), dict):
            metadata[key] = status[key]
    if status.get("recipient_id") is not None:
        metadata["recipient_id"] = _id(status["recipient_id"], "status.recipient_id")
    if isinstance(status.get("biz_opaque_callback_data"), str):
        metadata["biz_opaque_callback_data"] = status["biz_opaque_callback_data"][:512]
    error = None
    errors = status.get("errors")
    if isinstance(errors, list) and errors:
        error = status_error(errors[0])
        metadata["errors"] = [status_error(e).model_dump() for e in errors[:5]]
    if ours == "failed" and error is None:
        error = status_error(None)
    return StatusUpdate(external_id=wamid, status=ours,
                        timestamp=_time(status.get("timestamp")) or datetime.now(UTC),
                        error=error if ours == "failed" else None, metadata=metadata)
