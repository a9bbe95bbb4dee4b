"""Rendered parts turned into Bot API method calls (``sendMessage``, ``sendPhoto``…). Pure.

Our markdown becomes Telegram's HTML parse mode, built from markdown-it tokens: only the tags
Telegram knows, every ``<``, ``>`` and ``&`` of the text escaped, entities never nested where
Telegram forbids it (no code or link inside a link or a quote).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from omnichannel_sdk import (
    Action,
    ActionsPart,
    LocationPart,
    MediaPart,
    Part,
    TextPart,
    TranscriptPart,
    UnsupportedFeatureError,
    split_text,
)

__all__ = ["DEFAULT_PROMPT", "MAX_CALLBACK_DATA", "MAX_TEXT", "Call", "build_calls", "callback_data",
           "markdown_to_html", "visible_length"]

MAX_TEXT = 4096
"""Longest message text, counted after entity parsing in UTF-16 code units."""
MAX_CAPTION = 1024
"""Longest media caption."""
MAX_CALLBACK_DATA = 64
"""Longest ``callback_data`` of an inline keyboard button, in bytes."""
DEFAULT_PROMPT = "Please choose:"
"""Text of a keyboard that has no prompt and no text before it."""

_MD = MarkdownIt("commonmark", {"html": False}).enable("strikethrough")
_INLINE_TAGS = {"strong": "b", "em": "i", "s": "s"}
_MEDIA_METHODS = {"image": ("sendPhoto", "photo"), "file": ("sendDocument", "document"),
                  "video": ("sendVideo", "video"), "sticker": ("sendSticker", "sticker")}
_VOICE_TYPES = ("audio/ogg", "audio/opus", "audio/mpeg", "audio/mp3", "audio/mp4", "audio/m4a",
                "audio/x-m4a")
_TAG = re.compile(r"<[^>]*>")


@dataclass
class Call:
    """One Bot API method call."""

    method: str
    """``sendMessage``, ``sendPhoto``…"""
    payload: dict[str, Any]
    """Its JSON parameters (``chat_id`` added by the adapter)."""
    upload: MediaPart | None = None
    """Media to upload from the blob store as multipart field ``param`` (no public URL)."""
    param: str = ""
    """The parameter that names the media."""
    actions: list[Action] = field(default_factory=list)
    """Actions of the keyboard on this call (their callback data is recorded first)."""


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(tokens: Sequence[Token], plain: bool) -> str:
    """Inline tokens as HTML; ``plain`` inside a quote, where code and links may not nest."""
    out: list[str] = []
    in_link, href = False, ""
    for tok in tokens:
        kind = tok.type
        if kind == "text":
            out.append(_esc(tok.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind.endswith("_open") and kind[:-5] in _INLINE_TAGS:
            out.append(f"<{_INLINE_TAGS[kind[:-5]]}>")
        elif kind.endswith("_close") and kind[:-6] in _INLINE_TAGS:
            out.append(f"</{_INLINE_TAGS[kind[:-6]]}>")
        elif kind == "code_inline":
            out.append(_esc(tok.content) if plain or in_link else f"<code>{_esc(tok.content)}</code>")
        elif kind == "link_open":
            href = str(tok.attrs.get("href", ""))
            in_link = not plain and href.startswith(("http://", "https://", "tg://"))
            out.append(f'<a href="{html.escape(href)}">' if in_link else "")
        elif kind == "link_close":
            out.append("</a>" if in_link else f" ({_esc(href)})" if href else "")
            in_link, href = False, ""
        elif kind == "image":
            out.append(_esc(f"{tok.content or 'image'} ({tok.attrs.get('src', '')})"))
        else:  # html_inline and anything new: shown as written
            out.append(_esc(tok.content))
    return "".join(out)


def markdown_to_html(text: str) -> str:
    """Our markdown as Telegram HTML (``parse_mode=HTML``): bold, italic, strikethrough, code,
    pre with language, links, quotes; lists become bullets and numbers, headings bold."""
    out: list[str] = []
    lists: list[int] = []  # per open list: the next number, or 0 for bullets
    quote = 0
    for tok in _MD.parse(text):
        kind = tok.type
        if kind == "inline":
            out.append(_inline(tok.children or [], plain=quote > 0))
        elif kind == "paragraph_close" and not tok.hidden:
            out.append("\n\n")
        elif kind == "heading_open":
            out.append("<b>")
        elif kind == "heading_close":
            out.append("</b>\n\n")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            lists.append(int(tok.attrs.get("start", 1)) if kind == "ordered_list_open" else 0)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            out.append("" if lists else "\n")
        elif kind == "list_item_open":
            marker = f"{lists[-1]}." if lists[-1] else "•"
            if lists[-1]:
                lists[-1] += 1
            out.append("  " * (len(lists) - 1) + marker + " ")
        elif kind == "list_item_close":
            if not "".join(out[-1:]).endswith("\n"):
                out.append("\n")
        elif kind == "blockquote_open":
            quote += 1
            out.append("<blockquote>" if quote == 1 else "")
        elif kind == "blockquote_close":
            quote -= 1
            if quote == 0:
                out.append(_strip_end(out) + "</blockquote>\n\n")
        elif kind in ("fence", "code_block"):
            body = _esc(tok.content.rstrip("\n"))
            lang = tok.info.split()[0] if tok.info.strip() else ""
            if quote:
                out.append(body + "\n")
            else:
                attr = f' class="language-{html.escape(lang)}"' if lang else ""
                out.append(f"<pre><code{attr}>{body}</code></pre>\n\n")
        elif kind == "hr":
            out.append("———\n\n")
        elif kind == "html_block":
            out.append(_esc(tok.content))
    return "".join(out).strip()


def _strip_end(out: list[str]) -> str:
    """Drop the blank lines at the end of ``out`` (before a closing tag); returns ``""``."""
    while out and out[-1].endswith("\n"):
        out[-1] = out[-1].rstrip("\n")
    return ""


def visible_length(text_or_html: str, *, is_html: bool) -> int:
    """What Telegram counts against :data:`MAX_TEXT`: UTF-16 code units of the visible text."""
    text = html.unescape(_TAG.sub("", text_or_html)) if is_html else text_or_html
    return len(text.encode("utf-16-le")) // 2


def _texts(part: TextPart) -> list[dict[str, Any]]:
    """``sendMessage`` payloads of a text, split again where UTF-16 length makes it too long."""
    is_md = part.format == "markdown"
    pending, done = [part.text], []
    while pending:
        source = pending.pop(0)
        body = markdown_to_html(source) if is_md else source
        if visible_length(body, is_html=is_md) <= MAX_TEXT or len(source) < 2:
            if body.strip():
                done.append({"text": body, **({"parse_mode": "HTML"} if is_md else {})})
            continue
        pending[:0] = split_text(source, max(1, len(source) // 2))
    return done


def callback_data(action: Action) -> str:
    """The ``callback_data`` of an action's button: its id when it fits 64 bytes, else ``#``
    and a digest of it (the adapter keeps the digest → action mapping in the kv store)."""
    if len(action.id.encode("utf-8")) <= MAX_CALLBACK_DATA and not action.id.startswith("#"):
        return action.id
    digest = hashlib.sha256(action.id.encode("utf-8")).digest()
    return "#" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _keyboard(actions: Sequence[Action]) -> dict[str, Any]:
    rows = []
    for action in actions:
        if action.kind == "url" and action.value and action.value.startswith(("http://", "https://")):
            rows.append([{"text": action.title, "url": action.value}])
        else:
            rows.append([{"text": action.title, "callback_data": callback_data(action)}])
    return {"inline_keyboard": rows}


def _media(part: MediaPart) -> list[Call]:
    if part.kind == "audio":
        voice = (part.content_type or "").split(";")[0].strip().lower() in _VOICE_TYPES
        method, name = ("sendVoice", "voice") if voice else ("sendAudio", "audio")
    else:
        method, name = _MEDIA_METHODS[part.kind]
    public = part.url is not None and part.url.startswith(("https://", "http://"))
    if not public and not part.blob_key:
        raise UnsupportedFeatureError("this media part has neither a URL nor bytes in the blob store")
    payload: dict[str, Any] = {name: part.url} if public else {}
    calls = [Call(method, payload, upload=None if public else part, param=name)]
    if part.caption and part.kind != "sticker":
        if len(part.caption) <= MAX_CAPTION:
            payload["caption"] = part.caption
        else:
            calls.extend(Call("sendMessage", p) for p in _texts(TextPart(text=part.caption)))
    return calls


def build_calls(parts: Sequence[Part], *, prompt: str = DEFAULT_PROMPT) -> list[Call]:
    """The method calls for ``parts``, in order. A keyboard rides on the text just before it
    when it has no prompt of its own. Raises :class:`UnsupportedFeatureError` for what Telegram
    cannot carry."""
    calls: list[Call] = []
    add_text: Callable[[TextPart], None] = lambda p: calls.extend(  # noqa: E731
        Call("sendMessage", payload) for payload in _texts(p))
    for part in parts:
        if isinstance(part, TextPart):
            add_text(part)
        elif isinstance(part, MediaPart):
            calls.extend(_media(part))
        elif isinstance(part, ActionsPart):
            host = calls[-1] if calls and calls[-1].method == "sendMessage" and not calls[-1].actions \
                and part.prompt is None else None
            if host is None:
                host = Call("sendMessage", {"text": (part.prompt or prompt)[:MAX_TEXT]})
                calls.append(host)
            host.payload["reply_markup"] = _keyboard(part.actions)
            host.actions = list(part.actions)
        elif isinstance(part, LocationPart):
            place: dict[str, Any] = {"latitude": part.latitude, "longitude": part.longitude}
            if part.label and part.address:
                calls.append(Call("sendVenue", {**place, "title": part.label, "address": part.address}))
            else:
                calls.append(Call("sendLocation", place))
                if part.label or part.address:
                    add_text(TextPart(text=part.label or part.address or ""))
        elif isinstance(part, TranscriptPart):
            add_text(TextPart(text="\n".join(f"{s.speaker + ': ' if s.speaker else ''}{s.text}"
                                             for s in part.segments)))
        else:
            raise UnsupportedFeatureError(f"Telegram cannot send {part.type} parts")
    if not calls:
        raise UnsupportedFeatureError("nothing to send")
    return calls
