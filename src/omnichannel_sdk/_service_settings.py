"""Settings of the durable feed (``[omnichannel.feed]``) and the service API (``[api]``)."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ApiSettings", "FeedSettings", "WebhookEndpoint"]


class FeedSettings(BaseModel):
    """The durable feed (``[omnichannel.feed]``): ``hub.feed(name)`` / ``hub.ack(name, seq)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = None
    """Keep the feed. ``None`` (default): on when the config has ``[api]``, or the bus is NATS
    (whose stream keeps the events anyway)."""
    engine: Literal["auto", "store", "nats"] = "auto"
    """``auto``: NATS JetStream durable consumers when the bus is NATS, else a log in the store."""
    retention: float = Field(default=7 * 86400, gt=0)
    """Seconds an event stays in the store's log at most; one every consumer acknowledged goes
    sooner. (On NATS the stream's own age limit applies.)"""
    lease: float = Field(default=60.0, gt=0)
    """Seconds an event given to a process stays its own without a renewal. A live reader renews
    the leases of the events it holds (not handed out yet, or not acknowledged) every third of
    this, so only a process that died (or a reader that ended) gives its unacknowledged events to
    another process, after this long."""
    batch: int = Field(default=100, ge=1, le=5000)
    """Events a process takes at a time."""
    poll_interval: float = Field(default=0.5, gt=0)
    """How often a reader looks for events other processes appended (its own wake it at once)."""


class WebhookEndpoint(BaseModel):
    """One ``[[api.webhooks]]`` endpoint: events signed per Standard Webhooks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Where events are POSTed."""
    secret: str | list[str] = Field(repr=False)
    """``whsec_…`` signing secret; a list while rotating (each one signs every delivery)."""
    events: list[str] = Field(default_factory=list)
    """Event types delivered (``message.received``…); empty: all."""
    max_attempts: int = Field(default=10, ge=1)
    """Tries before a delivery is dead-lettered (replayable)."""
    base_delay: float = Field(default=2.0, gt=0)
    """First retry delay in seconds; doubles each try."""
    max_delay: float = Field(default=3600.0, gt=0)
    """Longest retry delay."""
    timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for the endpoint's answer."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _secrets(cls, value: str | list[str]) -> str | list[str]:
        secrets = [value] if isinstance(value, str) else value
        if not 1 <= len(secrets) <= 2:
            raise ValueError("give one signing secret, or two while rotating")
        for secret in secrets:
            raw = secret.removeprefix("whsec_")
            try:
                key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
            except ValueError:
                raise ValueError("a secret is whsec_ followed by base64") from None
            if len(key) < 24:
                raise ValueError("a secret needs 24 random bytes or more")
        return value

    @property
    def secrets(self) -> list[str]:
        """Every signing secret."""
        return [self.secret] if isinstance(self.secret, str) else list(self.secret)


class ApiSettings(BaseModel):
    """The service API (``[api]``) that ``omnichannel serve`` adds under ``/api/v1``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[str] = Field(default_factory=list, repr=False)
    """Accepted API keys (``Authorization: Bearer <key>``); several while rotating; none: every
    request is refused."""
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)
    """Endpoints that receive signed events."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (CORS is off when empty)."""
    max_page: int = Field(default=200, ge=1, le=1000)
    """Largest ``limit`` of a list."""
    sse_keepalive: float = Field(default=15.0, gt=0)
    """Seconds between keep-alive comments on an idle event stream."""
    sse_max_clients: int = Field(default=32, ge=1)
    """Event streams open at once per process (more get 429)."""
    sse_buffer: int = Field(default=200, ge=1)
    """Events read ahead for one event stream at most."""

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        if any(len(k) < 16 for k in value):
            raise ValueError("API keys need 16 characters or more")
        return value
