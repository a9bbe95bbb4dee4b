"""Meta webhook payloads (Messenger ``object: page``, Instagram ``object: instagram``) turned into
normalized messages and receipts. Pure functions: no I/O, no settings beyond what is passed in.

One POST holds many ``entry`` items, each with ``messaging`` (and ``standby``) event lists. Every
event is parsed on its own: a broken one becomes a :class:`ParseFailure` and the others go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from omnichannel_sdk import (
    Address,
    Author,
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

from ._profile import USER_REF_PREFIX

__all__ = ["ECHO_METADATA_PREFIX", "PAGE_INBOX_APP_IDS", "ParseOptions", "parse_payload", "thread_key"]

ECHO_METADATA_PREFIX = "omni:"
"""Our sends carry ``metadata = "omni:<message id>"``; Meta returns it in the echo, so an echo of
our own send is recognised (and not stored a second time) even when it beats the Send API's
answer."""

PAGE_INBOX_APP_IDS = frozenset({"263902037430900", "1217981644879628"})
"""App ids of Meta's own inboxes (Facebook Page inbox, Instagram inbox): an echo from one of
them was written by a person."""

_MEDIA_KINDS = {"image": "image", "audio": "audio", "video": "video", "file": "file",
                "reel": "video", "ig_reel": "video", "story_mention": "image"}
_HANDOVER = ("pass_thread_control", "take_thread_control", "request_thread_control")
_EVENT_KEYS = ("optin", "referral", "account_linking", "policy_enforcement", "game_play",
               "messaging_feedback", "response_feedback", "notification")
_ENVELOPE = frozenset({"sender", "recipient", "timestamp"})


class _BadEvent(ValueError):
    """An event that cannot be understood (becomes a ParseFailure)."""


@dataclass(frozen=True)
class ParseOptions:
    """What the parser needs to know about the adapter."""

    adapter: str
    """Adapter name, for error messages."""
    channel: str
    """Channel kind of the addresses (``messenger`` / ``instagram``)."""
    object_name: str
    """The ``object`` the payloads must carry (``page`` / ``instagram``)."""
    page_id: str | None = None
    """Our page (account) id, when configured: the thread key's second half."""
    human_app_ids: frozenset[str] = PAGE_INBOX_APP_IDS
    """Echoes from these app ids were written by people."""


def thread_key(customer: str, page_id: str | None) -> str:
    """The thread key of a conversation with ``customer`` (PSID / IGSID) on our page."""
    return f"{customer}|{page_id or ''}"


def parse_payload(body: Any, options: ParseOptions) -> ParseResult:
    """Messages and receipts of one webhook body (already decoded from JSON).

    Raises :class:`UnparseablePayloadError` when the envelope itself is wrong (not an object of
    the expected kind, no ``entry`` list); per-event problems become ``failures``.
    """
    if not isinstance(body, dict):
        raise UnparseablePayloadError("body is not a JSON object", adapter=options.adapter)
    kind = body.get("object")
    if kind != options.object_name:
        raise UnparseablePayloadError(
            f"expected object {options.object_name!r}, got {str(kind)[:40]!r}", adapter=options.adapter)
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise UnparseablePayloadError("no entry list", adapter=options.adapter)
    result = ParseResult()
    for entry in entries:
        for event, standby in _events(entry, result):
            try:
                result.items.extend(_event(event, standby, options))
            except (_BadEvent, KeyError, TypeError, ValueError, AttributeError, OverflowError,
                    OSError) as exc:
                result.failures.append(ParseFailure(f"{type(exc).__name__}: {exc}"[:500], event))
    return result


def _events(entry: Any, result: ParseResult) -> Iterator[tuple[Any, bool]]:
    """Every event of an entry, with whether it came through the standby channel."""
    if not isinstance(entry, dict):
        result.failures.append(ParseFailure("entry is not an object", entry))
        return
    found = False
    for name, events in entry.items():  # in payload order
        if name not in ("messaging", "standby", "changes"):
            continue
        found = True
        if not isinstance(events, list):
            result.failures.append(ParseFailure(f"entry.{name} is not a list", entry))
            continue
        for event in events:
            if name != "changes":
                yield event, name == "standby"
                continue
            # the "test" button of the app dashboard sends field/value pairs
            value = event.get("value") if isinstance(event, dict) else None
            if isinstance(value, dict) and ("sender" in value or "recipient" in value):
                yield value, False
            else:
                result.failures.append(ParseFailure("change without a messaging event", event))
    if not found:
        result.failures.append(ParseFailure("entry has no messaging events", entry))


# -- helpers ---------------------------------------------------------------------------------------


def _id(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _BadEvent(f"{what} is missing or not an id")
    text = str(value).strip()
    if not text or len(text) > 256:
        raise _BadEvent(f"{what} is empty or too long")
    return text


def _party(event: dict[str, Any], name: str) -> str:
    party = event.get(name)
    if not isinstance(party, dict):
        raise _BadEvent(f"no {name}")
    if "id" in party:
        return _id(party["id"], f"{name}.id")
    if "user_ref" in party:  # the chat plugin's visitors have a user_ref, not a PSID
        return USER_REF_PREFIX + _id(party["user_ref"], f"{name}.user_ref")
    raise _BadEvent(f"{name} has no id")


def _time(value: Any) -> datetime | None:
    """Meta's timestamps: milliseconds (numbers) or seconds (some string fields)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _BadEvent("timestamp is not a number")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise _BadEvent("timestamp is not a number")
        number = float(int(text))
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise _BadEvent("timestamp is not a number")
    if number > 1e11:
        number /= 1000.0
    if not 0 <= number < 32503680000:  # before year 3000
        raise _BadEvent("timestamp out of range")
    return datetime.fromtimestamp(number, UTC)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _BadEvent("expected a string")


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadEvent(f"{what} is not an object")
    return value


def _digest(event: Any) -> str:
    return hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _synthetic_id(kind: str, customer: str, event: dict[str, Any]) -> str:
    """A stable id for events without a vendor id (Meta retries send the same event again)."""
    return f"{kind}:{customer}:{event.get('timestamp', '')}:{_digest(event)}"


def _is_echo(message: dict[str, Any]) -> bool:
    return message.get("is_echo") is True


# -- events ----------------------------------------------------------------------------------------


def _event(event: Any, standby: bool, options: ParseOptions) -> list[InboundMessage | StatusUpdate]:
    event = _dict(event, "event")
    when = _time(event.get("timestamp"))
    if "delivery" in event:
        return _receipts(event, "delivery", "delivered", when, options)
    if "read" in event:
        return _receipts(event, "read", "read", when, options)
    message = event.get("message")
    echo = isinstance(message, dict) and _is_echo(message)
    sender = _party(event, "sender")
    recipient = _party(event, "recipient") if "recipient" in event else None
    customer, page = (recipient, sender) if echo else (sender, recipient)
    if customer is None:
        raise _BadEvent("no customer id")
    page = page or options.page_id
    metadata: dict[str, Any] = {}
    if standby:
        metadata["standby"] = True
    if page:
        metadata["page_id"] = page
    if "message" in event:
        built = _message(_dict(message, "message"), customer, page, when, options, metadata)
        if built is None:
            return []
        if standby:
            built = built.model_copy(update={"parts": [*built.parts, EventPart(name="standby")]})
        return [built]
    parts: list[Part]
    references: list[str] = []
    data: dict[str, Any]
    if "postback" in event:
        postback = _dict(event["postback"], "postback")
        data = {k: v for k, v in (("payload", _str(postback.get("payload"))),
                                  ("title", _str(postback.get("title")))) if v is not None}
        data["source"] = "button"
        parts = [EventPart(name="postback", data=data)]
        if isinstance(postback.get("referral"), dict):
            parts.append(EventPart(name="referral", data=postback["referral"]))
        mid = postback.get("mid")
        # one button message can be clicked many times: its mid alone is not unique
        external_id = f"postback:{_id(mid, 'postback.mid')}:{event.get('timestamp', '')}" \
            if mid is not None else _synthetic_id("postback", customer, event)
    elif "reaction" in event:
        reaction = _dict(event["reaction"], "reaction")
        target = _id(reaction.get("mid"), "reaction.mid")
        data = {k: v for k in ("reaction", "emoji", "action") if (v := _str(reaction.get(k))) is not None}
        data["mid"] = target
        parts = [EventPart(name="reaction", data=data)]
        references = [target]
        external_id = _synthetic_id("reaction", customer, event)
    elif "message_edit" in event:
        edit = _dict(event["message_edit"], "message_edit")
        target = _id(edit.get("mid"), "message_edit.mid")
        num_edit = edit.get("num_edit")
        if isinstance(num_edit, bool) or not isinstance(num_edit, int):
            num_edit = None
        data = {"mid": target, "text": _str(edit.get("text")) or "", "num_edit": num_edit}
        parts = [EventPart(name="edit", data=data)]
        references = [target]
        external_id = f"edit:{target}:{data['num_edit']}" if data["num_edit"] is not None else \
            _synthetic_id("edit", customer, event)
    elif any(k in event for k in _HANDOVER):
        name = next(k for k in _HANDOVER if k in event)
        parts = [EventPart(name=name, data=_dict(event[name], name))]
        external_id = _synthetic_id(name, customer, event)
    else:
        found = next((k for k in _EVENT_KEYS if k in event), None) or next(
            (k for k in event if k not in _ENVELOPE), None)
        if found is None:
            raise _BadEvent("event carries nothing")
        value = event[found]
        parts = [EventPart(name=found, data=value if isinstance(value, dict) else {"value": value})]
        external_id = _synthetic_id(found, customer, event)
    if standby:
        parts.append(EventPart(name="standby"))
    return [InboundMessage(
        external_id=external_id, sender=Address(channel=options.channel, handle=customer),
        recipients=[Address(channel=options.channel, handle=page)] if page else [],
        parts=parts, created_at=when, references=references,
        thread_key=thread_key(customer, options.page_id), metadata=metadata)]


def _receipts(event: dict[str, Any], name: str, status: str, when: datetime | None,
              options: ParseOptions) -> list[InboundMessage | StatusUpdate]:
    """``delivery``: one receipt per mid plus the watermark; ``read``: the watermark (Messenger)
    or the mid that was seen (Instagram)."""
    body = _dict(event[name], name)
    customer = _party(event, "sender")
    stamp = when or datetime.now(UTC)
    out: list[InboundMessage | StatusUpdate] = []
    mids = body.get("mids")
    if mids is not None:
        if not isinstance(mids, list):
            raise _BadEvent(f"{name}.mids is not a list")
        out.extend(StatusUpdate(external_id=_id(mid, f"{name}.mids[]"), status=status,
                                timestamp=stamp) for mid in mids)
    if body.get("mid") is not None:
        out.append(StatusUpdate(external_id=_id(body["mid"], f"{name}.mid"), status=status,
                                timestamp=stamp))
    if body.get("watermark") is not None:
        watermark = _time(body["watermark"])
        out.append(StatusUpdate(status=status, watermark=watermark, timestamp=stamp,
                                recipient=Address(channel=options.channel, handle=customer)))
    if not out:
        raise _BadEvent(f"{name} has neither mids nor a watermark")
    return out


def _message(message: dict[str, Any], customer: str, page: str | None, when: datetime | None,
             options: ParseOptions, metadata: dict[str, Any]) -> InboundMessage | None:
    mid = _id(message.get("mid"), "message.mid")
    echo = _is_echo(message)
    tag = message.get("metadata")
    if echo and isinstance(tag, str) and tag.startswith(ECHO_METADATA_PREFIX):
        return None  # our own send: already stored, its mid already claimed
    parts: list[Part] = []
    references: list[str] = []
    meta = dict(metadata)
    if message.get("is_deleted") is True:
        return InboundMessage(
            external_id=f"deleted:{mid}", sender=Address(channel=options.channel, handle=customer),
            recipients=[Address(channel=options.channel, handle=page)] if page else [],
            parts=[EventPart(name="deleted", data={"mid": mid})], created_at=when,
            references=[mid], thread_key=thread_key(customer, options.page_id), metadata=meta)
    text = _str(message.get("text"))
    if text:
        parts.append(TextPart(text=text))
    attachments = message.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list):
            raise _BadEvent("message.attachments is not a list")
        parts.extend(_attachments(attachments, meta))
    quick = message.get("quick_reply")
    if quick is not None:
        quick = _dict(quick, "message.quick_reply")
        data: dict[str, Any] = {"payload": _str(quick.get("payload")), "source": "quick_reply"}
        if text:
            data["title"] = text
        parts.append(EventPart(name="postback", data={k: v for k, v in data.items() if v is not None}))
    reply_to = message.get("reply_to")
    if reply_to is not None:
        reply_to = _dict(reply_to, "message.reply_to")
        if reply_to.get("mid") is not None:
            references.append(_id(reply_to["mid"], "message.reply_to.mid"))
        if isinstance(reply_to.get("story"), dict):
            story = reply_to["story"]
            meta["reply_to_story"] = {k: _str(story.get(k)) for k in ("id", "url")}
    if isinstance(message.get("referral"), dict):
        parts.append(EventPart(name="referral", data=message["referral"]))
    if message.get("is_unsupported") is True and not parts:
        parts.append(EventPart(name="unsupported"))
    if not parts:
        raise _BadEvent("message has neither text nor attachments")
    author: Author | None = None
    if echo:
        app_id = message.get("app_id")
        app = None if app_id is None or isinstance(app_id, bool) else str(app_id)
        if app is not None:
            meta["app_id"] = app
        author = Author(kind="human") if app is None or app in options.human_app_ids else \
            Author(kind="bot", id=app)
        if isinstance(tag, str):
            meta["echo_metadata"] = tag[:1000]
    me = Address(channel=options.channel, handle=page) if page else None
    them = Address(channel=options.channel, handle=customer)
    if echo:
        if me is None:
            raise _BadEvent("echo without a page id")
        sender, recipients = me, [them]
    else:
        sender, recipients = them, [me] if me else []
    return InboundMessage(
        external_id=mid, sender=sender, recipients=recipients, parts=parts, created_at=when,
        direction="outbound" if echo else "inbound", status="sent" if echo else None,
        author=author, references=references, thread_key=thread_key(customer, options.page_id),
        metadata=meta)


def _attachments(attachments: Iterable[Any], meta: dict[str, Any]) -> list[Part]:
    items = [_dict(a, "attachment") for a in attachments]
    payloads: list[dict[str, Any]] = [
        a["payload"] if isinstance(a.get("payload"), dict) else {} for a in items]
    # stickers arrive as type "sticker" (new) and/or as an image with a sticker_id (old); keep one
    sticker_urls = {p.get("url") for a, p in zip(items, payloads, strict=True)
                    if a.get("type") == "sticker" or p.get("sticker_id") is not None}
    has_sticker_type = any(a.get("type") == "sticker" for a in items)
    parts: list[Part] = []
    for attachment, payload in zip(items, payloads, strict=True):
        kind = _str(attachment.get("type")) or ""
        url = _str(payload.get("url"))
        sticker_id = payload.get("sticker_id")
        if sticker_id is not None and not isinstance(sticker_id, bool):
            meta["sticker_id"] = str(sticker_id)
        if kind == "image" and (sticker_id is not None or url in sticker_urls) and has_sticker_type:
            continue  # the transition period's duplicate of the sticker attachment
        if kind == "sticker" or (kind == "image" and sticker_id is not None):
            parts.append(MediaPart(kind="sticker", url=url))
        elif kind in _MEDIA_KINDS:
            if not url:
                raise _BadEvent(f"{kind} attachment without a url")
            caption = _str(payload.get("title")) or ("story mention" if kind == "story_mention" else None)
            parts.append(MediaPart(kind=_MEDIA_KINDS[kind], url=url, caption=caption))
            if kind == "story_mention":
                meta["story_mention"] = True
        elif kind == "location":
            coordinates = _dict(payload.get("coordinates"), "location.coordinates")
            parts.append(LocationPart(latitude=float(coordinates["lat"]),
                                      longitude=float(coordinates["long"]),
                                      label=_str(attachment.get("title")) or _str(payload.get("title"))))
        elif kind in ("fallback", "share", "post", "ig_post"):
            title = _str(attachment.get("title")) or _str(payload.get("title"))
            link = _str(attachment.get("url")) or url
            shown = "\n".join(x for x in (title, link) if x)
            if shown:
                parts.append(TextPart(text=shown))
            else:
                parts.append(EventPart(name="unsupported", data={"type": kind}))
        else:  # template echoes, products, appointment bookings, future types
            parts.append(EventPart(name=kind or "attachment",
                                   data={"type": kind, "payload": payload or attachment.get("payload")}))
    return parts
