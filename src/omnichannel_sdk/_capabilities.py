"""What a channel can show, and its limits, as one declarative object."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Capabilities"]

MediaKind = Literal["image", "audio", "video", "file", "sticker"]


class Capabilities(BaseModel):
    """Declared once per adapter class; the renderer and the window check read it."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    max_text_length: int | None = None
    """Longest text one vendor message may carry (characters), or ``None`` for no limit."""
    text_overflow: Literal["split", "truncate", "vendor"] = "split"
    """What to do past ``max_text_length``: split into several messages, truncate, or let the
    vendor handle it (SMS concatenation)."""
    formats: frozenset[Literal["plain", "markdown", "html"]] = frozenset({"plain"})
    """Text formats the channel renders; others are converted to plain text."""
    media_kinds: frozenset[MediaKind] = frozenset()
    """Media kinds the channel can send; others become a link."""
    max_media_size: int | None = None
    """Largest outbound media in bytes."""
    buttons: bool = False
    """Whether actions can be shown as buttons (else a numbered list)."""
    max_buttons: int = 0
    """How many buttons fit in one message; more become a numbered list."""
    max_button_title: int | None = None
    """Longest button title (characters)."""
    quick_replies: bool = False
    """Whether the channel has quick replies."""
    max_quick_replies: int = 0
    """How many quick replies fit."""
    locations: bool = False
    """Whether a location can be sent natively."""
    templates: bool = False
    """Whether template parts can be sent (the window fallback)."""
    session_window: timedelta | None = None
    """How long after the customer's last message free-form replies are allowed."""
    typing: bool = False
    """Whether typing indicators can be sent."""
    read_receipts: bool = False
    """Whether the channel reports reads."""
    passive_reply: bool = False
    """Whether a reply can ride on the webhook's own HTTP answer (WeChat, Twilio TwiML)."""
    rate_limit: float | None = None
    """Default sends per second per channel (settings may override)."""
    media_hosts: frozenset[str] = frozenset()
    """Hosts inbound media may be downloaded from (suffix match: ``twilio.com`` allows
    ``api.twilio.com``). Empty: no downloads."""
