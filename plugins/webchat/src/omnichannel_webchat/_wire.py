"""The wire format: a message as the widget sees it."""

from __future__ import annotations

import html
from typing import Any

import nh3

from omnichannel_sdk import ActionsPart, EventPart, LocationPart, MediaPart, Message, TextPart

__all__ = ["wire_message"]


def _plain(part: TextPart) -> tuple[str, str]:
    if part.format == "html":
        return html.unescape(nh3.clean(part.text, tags=set())), "plain"
    return part.text, part.format


def wire_message(message: Message, base_url: str) -> dict[str, Any]:
    """A message as the widget sees it (JSON-ready). Text stays text: the widget renders the
    markdown subset itself, into DOM nodes, never through ``innerHTML``."""
    texts: list[dict[str, str]] = []
    media: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            text, fmt = _plain(part)
            texts.append({"text": text, "format": fmt})
        elif isinstance(part, MediaPart):
            url = f"{base_url}/media/{part.blob_key}" if part.blob_key else part.url
            if url and not url.startswith(("http://", "https://", "/")):
                url = None
            media.append({"kind": part.kind, "url": url, "name": part.filename,
                          "type": part.content_type, "size": part.size, "caption": part.caption})
        elif isinstance(part, ActionsPart):
            if part.prompt:
                texts.append({"text": part.prompt, "format": "plain"})
            actions.extend({"id": a.id, "title": a.title, "kind": a.kind,
                            "value": a.value if a.kind == "url" else None} for a in part.actions)
        elif isinstance(part, LocationPart):
            texts.append({"text": f"{part.label or ''} "
                                  f"https://www.openstreetmap.org/?mlat={part.latitude}"
                                  f"&mlon={part.longitude}".strip(), "format": "plain"})
        elif isinstance(part, EventPart):
            continue
    author = None
    if message.direction == "outbound":
        author = (message.author.name if message.author and message.author.name else None)
    return {"id": message.id, "dir": "in" if message.direction == "inbound" else "out",
            "texts": texts, "media": media, "actions": actions, "status": message.status,
            "at": message.created_at.isoformat(), "author": author,
            "client_id": message.metadata.get("client_id")}


