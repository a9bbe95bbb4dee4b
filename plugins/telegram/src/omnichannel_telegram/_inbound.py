"""Telegram ``Update`` objects turned into normalized messages. Pure: no I/O.

One webhook POST carries one ``Update`` (``update_id`` plus exactly one of ``message``,
``edited_message``, ``callback_query``, ``my_chat_member``…). Messages are keyed
``<chat id>:<message_id>`` (what a vendor retry of the same ``update_id`` repeats, and what an
edit or a reply names); other updates by their own id.
"""

from __future__ import annotations

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
    TextPart,
    UnparseablePayloadError,
    WebhookResponse,
)

__all__ = ["FILE_SCHEME", "parse_update"]

FILE_SCHEME = "telegram-file:"
"""Inbound media URLs are ``telegram-file:<file_id>``: the real download URL holds the bot
token, so it is built at download time (``getFile``) and never stored."""

_MEDIA = (("voice", "audio"), ("audio", "audio"), ("video", "video"), ("video_note", "video"),
          ("animation", "video"), ("document", "file"), ("sticker", "sticker"))
_OPTED_OUT = frozenset({"kicked", "left"})
_EVENTS = ("contact", "dice", "poll", "game", "story", "new_chat_members", "left_chat_member",
           "new_chat_title", "pinned_message", "successful_payment", "web_app_data")


class _Bad(ValueError):
    """A part of the update that cannot be understood."""


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is not an object")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{what} is not an integer")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _name(who: dict[str, Any]) -> str | None:
    full = " ".join(x for x in (_str(who.get("first_name")), _str(who.get("last_name"))) if x)
    return full or _str(who.get("title")) or _str(who.get("username"))


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if _num(value) and value < 2**33 else None


def _chat(message: dict[str, Any], channel: str) -> tuple[Address, dict[str, Any]]:
    """The conversation partner: the person in a private chat, the group itself in a group (the
    bot answers the group; who wrote is kept in ``metadata["from"]``)."""
    chat = _obj(message.get("chat"), "chat")
    chat_id = _int(chat.get("id"), "chat.id")
    meta: dict[str, Any] = {"chat_type": _str(chat.get("type")) or "private"}
    who = message.get("from")
    if isinstance(who, dict) and meta["chat_type"] != "private":
        meta["from"] = {k: v for k, v in (("id", who.get("id")), ("name", _name(who)),
                                          ("username", _str(who.get("username")))) if v is not None}
    return Address(channel=channel, handle=str(chat_id), display_name=_name(chat)), meta


def _media(message: dict[str, Any]) -> MediaPart | None:
    caption = _str(message.get("caption"))
    photos = message.get("photo")
    if isinstance(photos, list) and photos:
        sizes = [p for p in photos if isinstance(p, dict) and _str(p.get("file_id"))]
        if not sizes:
            raise _Bad("photo has no file_id")
        # the largest by pixels, then bytes (the order of the list is not relied on)
        best = max(sizes, key=lambda p: ((_num(p.get("width")) or 0) * (_num(p.get("height")) or 0),
                                         _num(p.get("file_size")) or 0))
        return MediaPart(kind="image", url=FILE_SCHEME + best["file_id"], content_type="image/jpeg",
                         size=_num(best.get("file_size")), caption=caption)
    for key, kind in _MEDIA:
        if key not in message:
            continue
        item = _obj(message[key], key)
        file_id = _str(item.get("file_id"))
        if file_id is None:
            raise _Bad(f"{key} has no file_id")
        mime = _str(item.get("mime_type"))
        if key == "sticker":
            mime = "video/webm" if item.get("is_video") else (
                "application/x-tgsticker" if item.get("is_animated") else "image/webp")
            caption = _str(item.get("emoji"))
        return MediaPart(kind=kind, url=FILE_SCHEME + file_id,
                         content_type=mime, filename=_str(item.get("file_name")),
                         size=_num(item.get("file_size")), duration=_num(item.get("duration")),
                         caption=caption)
    return None


def _parts(message: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    if (text := _str(message.get("text"))) is not None:
        parts.append(TextPart(text=text))
    if (media := _media(message)) is not None:
        parts.append(media)
    venue = message.get("venue")
    place = venue.get("location") if isinstance(venue, dict) else message.get("location")
    if isinstance(place, dict):
        label = _str(venue.get("title")) if isinstance(venue, dict) else None
        address = _str(venue.get("address")) if isinstance(venue, dict) else None
        parts.append(LocationPart(latitude=place.get("latitude"), longitude=place.get("longitude"),
                                  label=label, address=address))
    for key in _EVENTS:  # kept as events, never dropped
        if key in message:
            value = message[key]
            parts.append(EventPart(name=key, data=value if isinstance(value, dict) else {"value": value}))
    if not parts:
        parts.append(EventPart(name="unsupported", data={"keys": sorted(message)[:20]}))
    return parts


def _message(update: dict[str, Any], message: dict[str, Any], *, channel: str, own: Address | None,
             edited: bool) -> InboundMessage:
    customer, meta = _chat(message, channel)
    message_id = _int(message.get("message_id"), "message_id")
    meta.update(update_id=update["update_id"], message_id=message_id)
    if edited:
        meta.update(edited=True, edit_date=_num(message.get("edit_date")))
    entities = message.get("entities") or message.get("caption_entities")
    if isinstance(entities, list) and entities:  # links, mentions, commands (UTF-16 offsets)
        meta["entities"] = [e for e in entities[:100] if isinstance(e, dict)]
    sender = message.get("from")
    who: dict[str, Any] = sender if isinstance(sender, dict) else {}
    profile = {"locale": who["language_code"]} if meta["chat_type"] == "private" and _str(
        who.get("language_code")) else {}
    reply = message.get("reply_to_message")
    references = [f"{customer.handle}:{reply['message_id']}"] if isinstance(reply, dict) and _num(
        reply.get("message_id")) else []
    return InboundMessage(external_id=f"{customer.handle}:{message_id}", sender=customer,
                          recipients=[own] if own else [], parts=_parts(message),
                          created_at=_when(message.get("date")), references=references,
                          profile=profile, metadata=meta)


def _callback(update: dict[str, Any], query: dict[str, Any], *, channel: str,
              own: Address | None) -> tuple[InboundMessage, WebhookResponse]:
    query_id = _str(query.get("id"))
    if query_id is None:
        raise _Bad("callback_query has no id")
    message = query.get("message")
    who = _obj(query.get("from"), "callback_query.from")
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        customer, meta = _chat({**message, "from": who}, channel)
        references = [f"{customer.handle}:{message.get('message_id')}"]
    else:  # a button under an inline-mode message: no chat, answer the person
        customer = Address(channel=channel, handle=str(_int(who.get("id"), "from.id")),
                           display_name=_name(who))
        meta, references = {"chat_type": "private"}, []
    data = _str(query.get("data")) or ""
    title = data
    markup = message.get("reply_markup") if isinstance(message, dict) else None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows if isinstance(rows, list) else []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == data:
                title = _str(button.get("text")) or data
    meta.update(update_id=update["update_id"], callback_query_id=query_id)
    item = InboundMessage(
        external_id=f"callback:{query_id}", sender=customer, recipients=[own] if own else [],
        parts=[EventPart(name="action", data={"id": data, "title": title, "kind": "reply",
                                              "value": None, "callback_data": data})],
        references=references, metadata=meta)
    # the button's spinner stops when the query is answered: the webhook answer carries it
    answer = WebhookResponse.json({"method": "answerCallbackQuery", "callback_query_id": query_id})
    return item, answer


def _member(update: dict[str, Any], change: dict[str, Any], *, channel: str,
            own: Address | None) -> InboundMessage:
    customer, meta = _chat(change, channel)
    old = _str(_obj(change.get("old_chat_member"), "old_chat_member").get("status"))
    new = _str(_obj(change.get("new_chat_member"), "new_chat_member").get("status"))
    if new in _OPTED_OUT:
        name = "opt_out"  # blocked in a private chat, removed from a group
    elif old in _OPTED_OUT:
        name = "opt_in"
    else:
        name = "chat_member"
    meta["update_id"] = update["update_id"]
    return InboundMessage(external_id=f"member:{update['update_id']}", sender=customer,
                          recipients=[own] if own else [],
                          parts=[EventPart(name=name, data={"old": old, "new": new})],
                          created_at=_when(change.get("date")), metadata=meta)


def parse_update(body: Any, *, adapter: str, channel: str, own: Address | None = None) -> ParseResult:
    """Messages of one decoded ``Update``. Raises :class:`UnparseablePayloadError` when it is not
    an update at all; an update whose content is broken becomes a failure (dead-lettered)."""
    if not isinstance(body, dict) or isinstance(body.get("update_id"), bool) or not isinstance(
            body.get("update_id"), int):
        raise UnparseablePayloadError("not a Telegram Update (no integer update_id)", adapter=adapter)
    result = ParseResult()
    try:
        for key in ("message", "edited_message", "business_message", "edited_business_message"):
            if key in body:
                result.items.append(_message(body, _obj(body[key], key), channel=channel, own=own,
                                             edited=key.startswith("edited")))
                return result
        if "callback_query" in body:
            item, result.response = _callback(body, _obj(body["callback_query"], "callback_query"),
                                              channel=channel, own=own)
            result.items.append(item)
        elif "my_chat_member" in body:
            result.items.append(_member(body, _obj(body["my_chat_member"], "my_chat_member"),
                                        channel=channel, own=own))
        # other update kinds (channel posts, inline queries, polls) are not conversations: the
        # raw payload is kept by the hub, nothing is threaded
    except (_Bad, KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        result.items.clear()
        result.response = None
        result.failures.append(ParseFailure(f"{type(exc).__name__}: {exc}"[:500], body))
    return result
