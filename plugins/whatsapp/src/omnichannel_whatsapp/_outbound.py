"""Rendered parts turned into Cloud API message objects (pure; no I/O).

Each object is the body of one ``POST /{version}/{phone-number-id}/messages`` without the
envelope (``messaging_product``, ``recipient_type``, ``to``, ``context``), which the adapter adds.
A prompt-less actions part rides on the text just before it (the text becomes the body of the
buttons or the list), as people expect on WhatsApp.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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

from ._inbound import media_id_of

__all__ = [
    "DEFAULT_PROMPT",
    "Built",
    "MEDIA_ID_SCHEME",
    "UPLOAD_KEY",
    "Limits",
    "build_messages",
    "public_url",
    "reply_id",
    "template_object",
]

DEFAULT_PROMPT = "Please choose:"
"""The body of buttons or a list offered without a prompt or a text before them."""
MEDIA_ID_SCHEME = "whatsapp-media:"
"""``MediaPart(url="whatsapp-media:<id>")`` sends media already uploaded to WhatsApp by its id.
Inbound media parts (URL ``{graph}/{media id}``) are sent again by id as well."""
UPLOAD_KEY = "_upload"
"""A built message whose media must first be uploaded (``POST /{phone-number-id}/media``) carries
the :class:`MediaPart` under this key; the adapter replaces it by the uploaded id."""

_TYPES = {"image": "image", "audio": "audio", "video": "video", "file": "document", "sticker": "sticker"}
_CAPTIONED = frozenset({"image", "video", "document"})
_URL = re.compile(r"https?://", re.IGNORECASE)
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


@dataclass(frozen=True)
class Limits:
    """The Cloud API's limits on what one message may carry."""

    max_text: int = 4096
    """Longest text body."""
    max_buttons: int = 3
    """Reply buttons of one interactive message."""
    max_button_title: int = 20
    """Longest reply button title."""
    max_rows: int = 10
    """Rows of one list message (over all sections)."""
    max_row_title: int = 24
    """Longest list row title."""
    max_interactive_body: int = 1024
    """Longest body text of an interactive message."""
    max_caption: int = 1024
    """Longest media caption."""
    max_reply_id: int = 200
    """Longest reply id we use (list rows allow 200, buttons 256)."""


def public_url(url: str | None) -> bool:
    """Whether WhatsApp could fetch ``url`` itself: http(s) and not a local or private host."""
    if not url or not _URL.match(url):
        return False
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    if not host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True


def reply_id(action: Action, limits: Limits = Limits()) -> str:
    """The id a reply button or a list row carries back: the action's own ``id`` (inbound
    ``button_reply`` / ``list_reply`` give it back as the ``action`` event's ``id``)."""
    if len(action.id) > limits.max_reply_id:
        raise UnsupportedFeatureError(f"action id of {len(action.id)} characters is over WhatsApp's "
                                      f"{limits.max_reply_id}")
    return action.id


def _parameter(value: Any) -> dict[str, Any]:
    """A template parameter: a dict is taken as a Graph parameter object, anything else as text."""
    if isinstance(value, dict):
        return value
    return {"type": "text", "text": str(value)}


def _parameters(value: Any, what: str) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):  # named parameters ({{first_name}})
        return [{"type": "text", "parameter_name": str(k), "text": str(v)} for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [_parameter(v) for v in value]
    raise UnsupportedFeatureError(f"template {what} parameters must be a list or an object")


def template_object(part: TemplatePart, default_language: str) -> dict[str, Any]:
    """The ``template`` object of a template message.

    ``params`` may hold ``components`` (Graph component objects, sent as they are), or any of
    ``header`` (a list of values or one parameter object such as ``{"type": "image", "image":
    {"link": …}}``), ``body`` (a list of values, or an object of named values) and ``buttons``
    (a list: a string is the payload of the quick reply button at that index, an object a
    Graph button component).
    """
    template: dict[str, Any] = {"name": part.name,
                                "language": {"code": part.language or default_language}}
    params = part.params
    if "components" in params:
        components = params["components"]
        if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
            raise UnsupportedFeatureError("template components must be a list of objects")
        template["components"] = components
        return template
    components = []
    if "header" in params:
        header = params["header"]
        parameters = [header] if isinstance(header, dict) and "type" in header else \
            _parameters(header, "header")
        components.append({"type": "header", "parameters": parameters})
    if "body" in params:
        components.append({"type": "body", "parameters": _parameters(params["body"], "body")})
    buttons = params.get("buttons", [])
    if not isinstance(buttons, list):
        raise UnsupportedFeatureError("template buttons must be a list")
    for index, button in enumerate(buttons):
        if isinstance(button, dict):
            components.append({"type": "button", **button})
        else:
            components.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                               "parameters": [{"type": "payload", "payload": str(button)}]})
    unknown = set(params) - {"header", "body", "buttons"}
    if unknown:
        raise UnsupportedFeatureError(f"unknown template params {sorted(unknown)}: use header, body, "
                                      "buttons or components")
    if components:
        template["components"] = components
    return template


def _text(text: str, limits: Limits, link_preview: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"body": text[: limits.max_text]}
    if link_preview and _URL.search(text):
        body["preview_url"] = True
    return {"type": "text", "text": body}


def _media(part: MediaPart, graph: str, limits: Limits) -> dict[str, Any]:
    kind = _TYPES[part.kind]
    media: dict[str, Any] = {}
    known = part.url[len(MEDIA_ID_SCHEME):] if part.url and part.url.startswith(MEDIA_ID_SCHEME) \
        else media_id_of(part.url, graph)
    out: dict[str, Any] = {"type": kind}
    if known:
        media["id"] = known
    elif public_url(part.url):
        media["link"] = part.url
    elif part.blob_key:
        out[UPLOAD_KEY] = part
    else:
        raise UnsupportedFeatureError(
            "this media part has neither a public URL, a WhatsApp media id nor stored bytes to upload")
    if part.caption and kind in _CAPTIONED:
        media["caption"] = part.caption[: limits.max_caption]
    if kind == "document" and part.filename:
        media["filename"] = part.filename[:240]
    out[kind] = media
    return out


def _numbered(part: ActionsPart, prompt: str | None) -> str:
    lines = [prompt] if prompt else []
    for index, action in enumerate(part.actions, start=1):
        extra = f": {action.value}" if action.kind in ("url", "call") and action.value else ""
        lines.append(f"{index}. {action.title}{extra}")
    return "\n".join(lines)


@dataclass
class Built:
    """What :func:`build_messages` made of some parts."""

    messages: list[dict[str, Any]]
    """The message objects, in order."""
    offered: list[dict[str, Any]] = field(default_factory=list)
    """Actions offered as reply buttons or list rows (``Action`` dumps): a ``button_reply`` /
    ``list_reply`` names one of them by id."""
    numbered: list[dict[str, Any]] = field(default_factory=list)
    """Actions shown as a numbered text (what an inbound "2" maps back to)."""


def build_messages(parts: Sequence[Part], *, graph: str, limits: Limits = Limits(),
                   link_preview: bool = True, template_language: str = "en_US") -> Built:
    """The message objects for ``parts`` in order, with the actions they offer.

    Raises :class:`UnsupportedFeatureError` for what WhatsApp cannot carry (events).
    """
    out: list[dict[str, Any]] = []
    numbered: list[dict[str, Any]] = []
    offered: list[dict[str, Any]] = []
    host: int | None = None  # index of a plain text that choices may take as their body

    def text(value: str) -> None:
        nonlocal host
        out.append(_text(value, limits, link_preview))
        host = len(out) - 1

    for part in parts:
        if isinstance(part, TextPart):
            text(part.text)
        elif isinstance(part, MediaPart):
            out.append(_media(part, graph, limits))
            host = None
            if part.caption and _TYPES[part.kind] not in _CAPTIONED:
                text(part.caption)
        elif isinstance(part, ActionsPart):
            prompt = part.prompt
            if prompt is None and host is not None and len(out[host]["text"]["body"]) <= \
                    limits.max_interactive_body:
                prompt = out.pop(host)["text"]["body"]
            built = _actions(part, prompt, limits)
            if built is None:
                numbered.extend(a.model_dump() for a in part.actions)
                text(_numbered(part, prompt))
            else:
                out.append(built)
                if built["interactive"]["type"] in ("button", "list"):
                    offered.extend(a.model_dump() for a in part.actions)
            host = None
        elif isinstance(part, LocationPart):
            location: dict[str, Any] = {"latitude": part.latitude, "longitude": part.longitude}
            if part.label:
                location["name"] = part.label
            if part.address:
                location["address"] = part.address
            out.append({"type": "location", "location": location})
            host = None
        elif isinstance(part, TemplatePart):
            out.append({"type": "template", "template": template_object(part, template_language)})
            host = None
        elif isinstance(part, TranscriptPart):
            text("\n".join(f"{s.speaker + ': ' if s.speaker else ''}{s.text}" for s in part.segments))
        elif isinstance(part, EventPart):
            raise UnsupportedFeatureError("WhatsApp cannot send event parts (use react() or mark_read())")
    if not out:
        raise UnsupportedFeatureError("nothing to send")
    return Built(out, offered, numbered)


def _actions(part: ActionsPart, prompt: str | None, limits: Limits) -> dict[str, Any] | None:
    """Reply buttons (≤ 3), a list (≤ 10 rows) or one link button; ``None``: a numbered text."""
    actions = part.actions
    body = {"text": (prompt or DEFAULT_PROMPT)[: limits.max_interactive_body]}
    replies = all(a.kind in ("reply", "postback") for a in actions)
    if replies and len(actions) <= limits.max_buttons and all(
            len(a.title) <= limits.max_button_title for a in actions):
        return {"type": "interactive", "interactive": {"type": "button", "body": body, "action": {
            "buttons": [{"type": "reply", "reply": {"id": reply_id(a, limits), "title": a.title}}
                        for a in actions]}}}
    if replies and len(actions) <= limits.max_rows and all(
            len(a.title) <= limits.max_row_title for a in actions):
        return {"type": "interactive", "interactive": {"type": "list", "body": body, "action": {
            "button": "Choose"[: limits.max_button_title],
            "sections": [{"rows": [{"id": reply_id(a, limits), "title": a.title} for a in actions]}]}}}
    if len(actions) == 1 and actions[0].kind == "url" and actions[0].value and \
            len(actions[0].title) <= limits.max_button_title:
        return {"type": "interactive", "interactive": {"type": "cta_url", "body": body, "action": {
            "name": "cta_url", "parameters": {"display_text": actions[0].title, "url": actions[0].value}}}}
    return None
