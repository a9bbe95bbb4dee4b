"""Reading a mapped vendor's events: messages, event parts, media and receipts.

Each event is read with the mapping's paths; the whole body is reachable from an event as
``"$body"`` (``"$body".destination``). An event that a filter leaves out is skipped; one whose
required path (id, sender, a receipt's message id) matches nothing fails alone, naming the path,
and is dead-lettered while the rest of the batch is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .._adapter import InboundMessage, ParseFailure, ParseResult
from .._errors import UnparseablePayloadError
from .._models import Address, EventPart, MediaPart, MessageError, Part, StatusUpdate, TextPart, media_kind
from ._paths import Path
from ._settings import MappingSettings, MediaRule

__all__ = ["MissingPath", "explain", "parse_events"]

class MissingPath(ValueError):
    """A required path matched nothing in an event."""

    def __init__(self, field: str, path: Path) -> None:
        self.field = field
        self.path = path
        super().__init__(f"required path {path.expression!r} ({field}) matched nothing")


def event_list(settings: MappingSettings, body: Any, adapter: str) -> list[Any]:
    """The events of a body."""
    where = settings.event_list()
    events = where.search(body) if where is not None else body
    if isinstance(events, dict):
        return [events]
    if not isinstance(events, list):
        what = repr(where.expression) if where is not None else "the body"
        raise UnparseablePayloadError(f"no event list at {what}", adapter=adapter)
    return events


def _context(event: Any, body: Any) -> Any:
    return {**event, "$body": body} if isinstance(event, dict) else event


def parse_events(settings: MappingSettings, body: Any, adapter: str) -> ParseResult:
    """Messages and receipts from a decoded body."""
    result = ParseResult()
    for event in event_list(settings, body, adapter):
        ctx = _context(event, body)
        if settings.filter is not None and not _truthy(settings.filter.search(ctx)):
            continue
        try:
            item = _receipt(settings, ctx)
            result.items.append(item if item is not None else _message(settings, ctx))
        except (ValueError, TypeError) as exc:
            result.failures.append(ParseFailure(error=str(exc), fragment=event))
    return result


def explain(settings: MappingSettings, body: Any, adapter: str, limit: int = 5) -> list[str]:
    """Human-readable notes on what the mapping's paths found in the first events: the first
    optional path that matched nothing, and any required one (for ``omnichannel normalize``)."""
    notes: list[str] = []
    where = settings.event_list()
    try:
        events = event_list(settings, body, adapter)
    except UnparseablePayloadError as exc:
        return [str(exc)]
    label = where.expression if where is not None else "body"
    if not events:
        notes.append(f"{label!r} is an empty list")
    for index, event in enumerate(events[:limit]):
        ctx = _context(event, body)
        if settings.filter is not None and not _truthy(settings.filter.search(ctx)):
            notes.append(f"{label}[{index}]: left out by filter {settings.filter.expression!r}")
            continue
        for field, path in _fields(settings):
            if path.search(ctx) is None:
                notes.append(f"{label}[{index}]: path {path.expression!r} ({field}) matched nothing")
                break
    return notes


def _fields(settings: MappingSettings) -> list[tuple[str, Path]]:
    named = [("external_id", settings.external_id), ("sender", settings.sender),
             ("sender_name", settings.sender_name), ("recipient", settings.recipient),
             ("text", settings.text), ("subject", settings.subject),
             ("created_at", settings.created_at), ("thread", settings.thread),
             ("reply_to", settings.reply_to)]
    return [(name, path) for name, path in named if path is not None]


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: false, null, "", [], {} are false
    return value not in (None, False, "", [], {})


def _time(value: Any) -> datetime | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return None


def _text(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    return str(value)


def _required(ctx: Any, path: Path, field: str) -> str:
    value = _text(path.search(ctx))
    if value is None:
        raise MissingPath(field, path)
    return value


def _receipt(settings: MappingSettings, ctx: Any) -> StatusUpdate | None:
    for rule in settings.receipts:
        if not _truthy(rule.when.search(ctx)):
            continue
        external_id = _required(ctx, rule.external_id, "receipts.external_id")
        error = None
        if rule.status == "failed":
            code = _text(rule.error_code.search(ctx)) if rule.error_code is not None else None
            reason = _text(rule.error.search(ctx)) if rule.error is not None else None
            error = MessageError(code="undelivered", message=reason or "the vendor reported a failure",
                                 vendor_code=code)
        when = _time(rule.timestamp.search(ctx)) if rule.timestamp is not None else None
        update = StatusUpdate(external_id=external_id, status=rule.status, error=error)
        return update.model_copy(update={"timestamp": when}) if when is not None else update
    return None


def _message(settings: MappingSettings, ctx: Any) -> InboundMessage:
    external_id = _required(ctx, settings.external_id, "external_id")
    sender = _required(ctx, settings.sender, "sender")
    parts: list[Part] = []
    text = _text(settings.text.search(ctx)) if settings.text is not None else None
    if text:
        parts.append(TextPart(text=text))
    for rule in settings.effective_media():
        parts.extend(_media(rule, ctx))
    for event_rule in settings.event_parts:
        if _truthy(event_rule.when.search(ctx)):
            data = event_rule.data.search(ctx) if event_rule.data is not None else None
            parts.append(EventPart(name=event_rule.name,
                                   data=data if isinstance(data, dict) else (
                                       {} if data is None else {"value": data})))
            break
    if not parts:
        # nothing the mapping names: kept as an event with the vendor's data, never empty
        kind = ctx.get("type") if isinstance(ctx, dict) else None
        raw = {k: v for k, v in ctx.items() if k != "$body"} if isinstance(ctx, dict) else {}
        parts.append(EventPart(name=str(kind) if isinstance(kind, str) and kind else "unmapped",
                               data={"event": raw}))
    name = _text(settings.sender_name.search(ctx)) if settings.sender_name is not None else None
    recipient = _text(settings.recipient.search(ctx)) if settings.recipient is not None else None
    thread = _text(settings.thread.search(ctx)) if settings.thread is not None else None
    reply = _text(settings.reply_to.search(ctx)) if settings.reply_to is not None else None
    metadata = {key: path.search(ctx) for key, path in settings.metadata.items()}
    channel = settings.channel
    return InboundMessage(
        external_id=external_id,
        sender=Address(channel=channel, handle=sender, display_name=name),
        recipients=[Address(channel=channel, handle=recipient)] if recipient else [],
        parts=parts,
        subject=_text(settings.subject.search(ctx)) if settings.subject is not None else None,
        created_at=_time(settings.created_at.search(ctx)) if settings.created_at is not None else None,
        thread_key=thread,
        references=[reply] if reply else [],
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


def _media(rule: MediaRule, ctx: Any) -> list[MediaPart]:
    if rule.when is not None and not _truthy(rule.when.search(ctx)):
        return []
    if rule.each is not None:
        elements = rule.each.search(ctx)
        scopes = elements if isinstance(elements, list) else []
    else:
        scopes = [ctx]
    parts = []
    for scope in scopes:
        if rule.url is not None:
            found = rule.url.search(scope)
            urls = found if isinstance(found, list) else [found]
        elif rule.url_template is not None:
            urls = [rule.url_template.render(scope, quote=_quote)]
        else:  # the settings require one of the two
            urls = []
        for url in urls:
            text = _text(url)
            if not text:
                continue
            ctype = _text(rule.content_type.search(scope)) if rule.content_type is not None else None
            kind: str = rule.kind
            if kind == "auto":
                kind = media_kind(ctype)
            parts.append(MediaPart(
                kind=kind, url=text, content_type=ctype,
                filename=_text(rule.filename.search(scope)) if rule.filename is not None else None,
                caption=_text(rule.caption.search(scope)) if rule.caption is not None else None))
    return parts


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
