"""Rendered parts turned into Send API ``message`` objects (pure; no I/O).

One part usually becomes one Send API call: text, an attachment by URL, a button template or a
text with quick replies. A prompt-less actions part rides on the text just before it (quick
replies attach to it; a button template takes it as its text), as people expect on Messenger.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from omnichannel_sdk import (
    Action,
    ActionsPart,
    EventPart,
    LocationPart,
    MediaPart,
    Part,
    TemplatePart,
    TextPart,
    TranscriptPart,
    UnsupportedFeatureError,
)

__all__ = ["DEFAULT_PROMPT", "UPLOAD_KEY", "OutboundLimits", "action_payload", "build_messages", "public_url"]

DEFAULT_PROMPT = "Please choose:"
"""Text shown with choices that came without a prompt or a text before them."""

UPLOAD_KEY = "_upload"
"""A built message whose media must first go through the Attachment Upload API carries the
:class:`MediaPart` under this key (removed before the Send API call)."""

_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")

_ATTACHMENT_TYPES = {"image": "image", "sticker": "image", "audio": "audio", "video": "video",
                     "file": "file"}


@dataclass(frozen=True)
class OutboundLimits:
    """The Send API's limits for one channel (Messenger or Instagram)."""

    max_text: int = 2000
    """Longest text of one message."""
    max_buttons: int = 3
    """Buttons of a button template."""
    max_quick_replies: int = 13
    """Quick replies of one message."""
    max_title: int = 20
    """Longest button / quick reply title."""
    max_template_text: int = 640
    """Longest text of a button template."""


def action_payload(action: Action) -> str:
    """The payload a button or quick reply carries back: the value of a ``postback`` action, else
    the action id. Inbound ``postback`` events carry it as ``data["payload"]``."""
    if action.kind == "postback" and action.value:
        return action.value
    return action.id


def public_url(url: str | None, vendor_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether Meta could fetch ``url`` itself: http(s), not a local or private address, and not
    one of the vendor's own expiring CDN hosts (``vendor_hosts``, matched with subdomains)."""
    if not url or not url.startswith(("https://", "http://")):
        return False
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if not host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return False
    if any(host == h or host.endswith("." + h) for h in vendor_hosts):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return address.is_global


def _button(action: Action, limits: OutboundLimits) -> dict[str, Any]:
    title = action.title[: limits.max_title]
    if action.kind == "url" and action.value:
        return {"type": "web_url", "url": action.value, "title": title}
    if action.kind == "call" and action.value:
        return {"type": "phone_number", "title": title, "payload": action.value}
    return {"type": "postback", "title": title, "payload": action_payload(action)}


def _numbered(part: ActionsPart) -> str:
    lines = [part.prompt] if part.prompt else []
    for index, action in enumerate(part.actions, start=1):
        extra = f": {action.value}" if action.kind in ("url", "call") and action.value else ""
        lines.append(f"{index}. {action.title}{extra}")
    return "\n".join(lines)


def build_messages(parts: Sequence[Part], limits: OutboundLimits, *, uploads: bool = False,
                   vendor_hosts: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The Send API ``message`` objects for ``parts``, in order.

    Media with a public URL goes by URL. With ``uploads``, media we hold in the blob store
    (``blob_key``) whose URL is absent or not public (see :func:`public_url`) is marked for the
    Attachment Upload API (:data:`UPLOAD_KEY`). Raises :class:`UnsupportedFeatureError` for what
    cannot be carried (other media, templates, events).
    """
    out: list[dict[str, Any]] = []
    host: int | None = None  # index of a plain text message that choices may ride on

    def text(value: str) -> None:
        nonlocal host
        out.append({"text": value[: limits.max_text]})
        host = len(out) - 1

    for part in parts:
        if isinstance(part, TextPart):
            text(part.text)
        elif isinstance(part, MediaPart):
            kind = _ATTACHMENT_TYPES[part.kind]
            if uploads and part.blob_key and not public_url(part.url, vendor_hosts):
                out.append({"attachment": {"type": kind, "payload": {}}, UPLOAD_KEY: part})
            elif public_url(part.url):
                out.append({"attachment": {"type": kind,
                                           "payload": {"url": part.url, "is_reusable": True}}})
            else:
                raise UnsupportedFeatureError(
                    "this media part has neither a public URL nor bytes in the blob store to upload")
            host = None
            if part.caption:
                text(part.caption)
        elif isinstance(part, ActionsPart):
            _actions(part, limits, out, host)
            host = None
        elif isinstance(part, LocationPart):
            label = ", ".join(x for x in (part.label, part.address) if x)
            link = f"https://www.openstreetmap.org/?mlat={part.latitude}&mlon={part.longitude}"
            text(f"{label}\n{link}" if label else link)
        elif isinstance(part, TranscriptPart):
            text("\n".join(f"{s.speaker + ': ' if s.speaker else ''}{s.text}" for s in part.segments))
        elif isinstance(part, (TemplatePart, EventPart)):
            raise UnsupportedFeatureError(f"Messenger cannot send {part.type} parts")
    if not out:
        raise UnsupportedFeatureError("nothing to send")
    return out


def _actions(part: ActionsPart, limits: OutboundLimits, out: list[dict[str, Any]],
             host: int | None) -> None:
    actions = part.actions
    repliable = all(a.kind in ("reply", "postback") for a in actions)
    wants_quick = repliable and len(actions) <= limits.max_quick_replies and (
        len(actions) > limits.max_buttons or all(a.kind == "reply" for a in actions))
    riding = host if part.prompt is None and host is not None and "quick_replies" not in out[host] \
        else None
    if wants_quick:
        replies = [{"content_type": "text", "title": a.title[: limits.max_title],
                    "payload": action_payload(a)} for a in actions]
        if riding is not None:
            out[riding]["quick_replies"] = replies
        else:
            out.append({"text": (part.prompt or DEFAULT_PROMPT)[: limits.max_text],
                        "quick_replies": replies})
        return
    if len(actions) <= limits.max_buttons:
        prompt = part.prompt
        if prompt is None and riding is not None and len(out[riding]["text"]) <= limits.max_template_text:
            prompt = out.pop(riding)["text"]
        if prompt is not None and len(prompt) > limits.max_template_text:
            out.append({"text": prompt[: limits.max_text]})
            prompt = None
        out.append({"attachment": {"type": "template", "payload": {
            "template_type": "button", "text": prompt or DEFAULT_PROMPT,
            "buttons": [_button(a, limits) for a in actions]}}})
        return
    # the renderer turns these into numbered lists already; this keeps a direct call safe
    out.append({"text": _numbered(part)[: limits.max_text]})
