"""Shaping a reply the way a mapped vendor's API wants it: URL, auth, body, the vendor's id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from .._adapter import ChannelAdapter, SendResult
from .._errors import UnsupportedFeatureError
from .._models import Conversation, MediaPart, Message, Part, TextPart
from ._paths import Path
from ._settings import MappingSettings, OutboundSettings

__all__ = ["send_mapped", "template_context"]


def template_context(settings: MappingSettings, message: Message,
                     conversation: Conversation | None) -> dict[str, Any]:
    """What URL and body placeholders can name: ``message``, ``conversation``, ``contact``,
    ``vars``."""
    recipient = message.recipients[0] if message.recipients else None
    return {
        "message": {"id": message.id, "conversation_id": message.conversation_id,
                    "subject": message.subject, "metadata": message.metadata},
        "conversation": ({"id": conversation.id, "thread_key": conversation.thread_key,
                          "subject": conversation.subject} if conversation is not None else None),
        "contact": ({"handle": recipient.handle, "display_name": recipient.display_name}
                    if recipient is not None else None),
        "vars": dict(settings.vars),
    }


def _rendered_parts(out: OutboundSettings, parts: Sequence[Part], base: dict[str, Any]) -> list[Any]:
    rendered: list[Any] = []
    text_template = out.parts.get("text")
    for part in parts:
        if isinstance(part, TextPart):
            if text_template is not None:
                rendered.append(text_template.render({**base, "text": part.text}))
            continue
        if isinstance(part, MediaPart):
            template = out.parts.get(part.kind) or out.parts.get("media")
            values = {"url": part.url, "kind": part.kind, "content_type": part.content_type,
                      "filename": part.filename, "caption": part.caption}
            if template is not None:
                rendered.append(template.render({**base, **values}))
            elif text_template is not None and part.url:
                # no template for this kind: the link, as text
                link = f"{part.caption}: {part.url}" if part.caption else part.url
                rendered.append(text_template.render({**base, "text": link}))
            continue
        raise UnsupportedFeatureError(f"json-mapping: no template for a {part.type} part")
    return rendered


def _idempotency(out: OutboundSettings, key: str) -> dict[str, str]:
    if not out.idempotency_header:
        return {}
    value = str(uuid.uuid5(uuid.NAMESPACE_URL, f"omnichannel:{key}")) if (
        out.idempotency_format == "uuid") else key
    return {out.idempotency_header: value}


def _missing(path: Path) -> None:
    raise UnsupportedFeatureError(f"json-mapping: outbound placeholder {path.expression!r} "
                                  "matched nothing")


async def send_mapped(adapter: ChannelAdapter, settings: MappingSettings, out: OutboundSettings,
                      message: Message, parts: Sequence[Part],
                      conversation: Conversation | None) -> SendResult:
    """Send ``parts`` with the mapped request(s) of ``adapter`` (whose ``settings`` they are);
    one request, or one per part."""
    base = template_context(settings, message, conversation)
    texts = [p.text for p in parts if isinstance(p, TextPart)]
    media = [p.url for p in parts if isinstance(p, MediaPart) and p.url]
    base["text"] = "\n\n".join(texts)
    base["media"] = media
    headers = {**out.headers, **out.auth.headers()}
    url_template = out.url
    if url_template is None:  # the settings require it
        raise UnsupportedFeatureError(f"{adapter.name}: no outbound url configured")
    url = url_template.render(base, quote=lambda v: quote(v, safe=""), missing=_missing)
    if out.body is None:
        # 0.1.0's fixed shape (``to`` is the one recipient's handle)
        recipient = base["contact"]["handle"] if base["contact"] else None
        bodies = [{"id": message.id, "to": recipient, "text": base["text"], "media": media}]
    else:
        rendered = _rendered_parts(out, parts, base)
        if out.per_part:
            bodies = [out.body.render({**base, "part": item}, _missing) for item in rendered]
        else:
            bodies = [out.body.render({**base, "parts": rendered}, _missing)]
    external_ids: list[str] = []
    for index, body in enumerate(bodies):
        key = message.id if len(bodies) == 1 else f"{message.id}:{index}"
        response = await adapter.request(out.method, url, headers={**headers, **_idempotency(out, key)},
                                         json=body)
        adapter.raise_for_status(response)
        try:
            found = out.response_id.search(response.json())
        except ValueError:
            found = None
        external_ids.append(str(found) if found not in (None, "") else key)
    return SendResult(external_ids=external_ids)
