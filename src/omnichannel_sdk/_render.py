"""Rendering outbound parts to what a channel can show (SPEC §7).

Actions become a numbered list where buttons do not fit (and the numbers are remembered so an
inbound "2" maps back), media the channel cannot carry becomes a link, long text is split or
truncated as the channel demands, formats it cannot render become plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._capabilities import Capabilities
from ._errors import UnsupportedFeatureError
from ._html_text import html_to_text
from ._models import (
    ActionsPart,
    EventPart,
    LocationPart,
    MediaPart,
    Part,
    TemplatePart,
    TextPart,
    TranscriptPart,
)

__all__ = ["Rendered", "html_to_text", "render_parts", "split_text"]



@dataclass
class Rendered:
    """Parts ready for the adapter, and what the hub must remember about them."""

    parts: list[Part]
    metadata: dict[str, Any] = field(default_factory=dict)


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, at paragraph, line or word
    boundaries where possible; never loses or reorders a character other than the whitespace
    the split falls on."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            pos = window.rfind(sep)
            if pos > limit // 3:
                cut = pos
                chunks.append(rest[:cut])
                rest = rest[cut + len(sep):]
                break
        if cut == -1:
            chunks.append(rest[:limit])
            rest = rest[limit:]
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def _action_line(index: int, title: str, kind: str, value: str | None) -> str:
    if kind in ("url", "call") and value:
        return f"{index}. {title}: {value}"
    return f"{index}. {title}"


def _fits_natively(part: ActionsPart, caps: Capabilities) -> bool:
    n = len(part.actions)
    titles_fit = caps.max_button_title is None or all(
        len(a.title) <= caps.max_button_title for a in part.actions)
    if caps.buttons and n <= caps.max_buttons and titles_fit:
        return True
    return (caps.quick_replies and n <= caps.max_quick_replies and titles_fit
            and all(a.kind in ("reply", "postback") for a in part.actions))


def render_parts(parts: Sequence[Part], caps: Capabilities, *, adapter: str = "") -> Rendered:
    """Render ``parts`` to ``caps``; raise :class:`UnsupportedFeatureError` for what cannot be
    carried even degraded (a template on a channel without templates)."""
    out: list[Part] = []
    metadata: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, TextPart):
            out.extend(_render_text(part, caps))
        elif isinstance(part, MediaPart):
            if part.kind in caps.media_kinds or (part.kind == "sticker" and "image" in caps.media_kinds):
                out.append(part)
            elif part.url and part.url.startswith(("http://", "https://")):
                label = part.caption or part.filename or part.kind
                out.extend(_render_text(TextPart(text=f"{label}: {part.url}"), caps))
            else:
                raise UnsupportedFeatureError(
                    f"{adapter or 'channel'} cannot send {part.kind} media and it has no public URL")
        elif isinstance(part, ActionsPart):
            if _fits_natively(part, caps):
                out.append(part)
                continue
            lines = [part.prompt] if part.prompt else []
            lines += [_action_line(i, a.title, a.kind, a.value)
                      for i, a in enumerate(part.actions, start=1)]
            metadata["numbered_actions"] = [a.model_dump() for a in part.actions]
            out.extend(_render_text(TextPart(text="\n".join(lines)), caps))
        elif isinstance(part, LocationPart):
            if caps.locations:
                out.append(part)
            else:
                label = ", ".join(x for x in (part.label, part.address) if x)
                link = (f"https://www.openstreetmap.org/?mlat={part.latitude}"
                        f"&mlon={part.longitude}")
                out.extend(_render_text(TextPart(text=f"{label}\n{link}" if label else link), caps))
        elif isinstance(part, TemplatePart):
            if not caps.templates:
                raise UnsupportedFeatureError(f"{adapter or 'channel'} has no templates")
            out.append(part)
        elif isinstance(part, TranscriptPart):
            text = "\n".join(f"{s.speaker + ': ' if s.speaker else ''}{s.text}" for s in part.segments)
            out.extend(_render_text(TextPart(text=text), caps))
        elif isinstance(part, EventPart):
            raise UnsupportedFeatureError("event parts describe inbound happenings; they are not sent")
    if not out:
        raise UnsupportedFeatureError("nothing to send")
    return Rendered(out, metadata)


def _render_text(part: TextPart, caps: Capabilities) -> list[Part]:
    text, fmt = part.text, part.format
    if fmt not in caps.formats:
        if fmt == "html":
            text = html_to_text(text)
        fmt = "plain" if "plain" in caps.formats or not caps.formats else next(iter(caps.formats))
    limit = caps.max_text_length
    if limit is None or len(text) <= limit or caps.text_overflow == "vendor":
        return [TextPart(text=text, format=fmt)]
    if caps.text_overflow == "truncate":
        return [TextPart(text=text[: limit - 1] + "…", format=fmt)]
    return [TextPart(text=chunk, format=fmt) for chunk in split_text(text, limit)]
