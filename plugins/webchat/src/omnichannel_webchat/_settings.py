"""The settings of a ``webchat`` channel: session signing, embedding origins, visitor limits."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from omnichannel_sdk import AdapterSettings

__all__ = ["DEFAULT_UPLOAD_TYPES", "WebchatSettings"]

DEFAULT_UPLOAD_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                        "text/plain")


class WebchatSettings(AdapterSettings):
    """Settings of a web chat channel."""

    secret: SecretStr = Field(min_length=16)
    """Signs visitor session tokens (HMAC-SHA256). Changing it signs every visitor out."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Pages that may embed the widget (``https://shop.example.com``); ``*`` allows any.
    Empty: only the gateway's own origin."""
    session_ttl: float = Field(default=30 * 86400, gt=0)
    """Seconds a visitor session lasts after its last use."""
    upload_max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    """Largest file a visitor may upload."""
    upload_types: list[str] = Field(default_factory=lambda: list(DEFAULT_UPLOAD_TYPES))
    """MIME types a visitor may upload (``image/*`` allows every image type)."""
    visitor_rate: float = Field(default=1.0, gt=0)
    """Messages (and uploads) per second one visitor may send, sustained."""
    visitor_burst: int = Field(default=8, ge=1)
    """How many messages a visitor may send at once before ``visitor_rate`` applies."""
    max_visitor_text: int = Field(default=4000, gt=0)
    """Longest message a visitor may send (characters)."""
    prechat: Literal["off", "optional", "required"] = "optional"
    """The pre-chat form (name, email): not shown, skippable, or required."""
    title: str | None = None
    """Title of the chat panel (default: the widget's localized "Chat with us")."""
    history_limit: int = Field(default=200, gt=0)
    """How many past messages a resumed session shows."""

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for origin in value:
            origin = origin.strip().rstrip("/")
            if origin != "*" and not re.match(r"^https?://[^/?#\s]+$", origin):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
            out.append(origin.lower())
        return out
