"""A small, complete adapter for tests and for plugin authors to read: ``fake``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import SecretStr

from .._adapter import (
    AdapterSettings,
    ChannelAdapter,
    InboundMessage,
    ParseFailure,
    ParseResult,
    SendResult,
    constant_time_equals,
)
from .._capabilities import Capabilities
from .._errors import SignatureError, UnparseablePayloadError
from .._models import (
    ActionsPart,
    Address,
    EventPart,
    MediaPart,
    Message,
    Part,
    StatusUpdate,
    TemplatePart,
    TextPart,
)
from .._webhook import WebhookRequest

__all__ = ["FakeAdapter", "fake_signature"]


def fake_signature(secret: str, body: bytes) -> str:
    """The ``X-Fake-Signature`` header value for ``body``: hex HMAC-SHA256."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeSettings(AdapterSettings):
    """Settings of the fake vendor."""

    secret: SecretStr
    """Signs webhooks (HMAC-SHA256 of the body)."""
    api_key: SecretStr = SecretStr("fake-key")
    """Bearer token for the send API."""
    number: str = "fake-us"
    """Our own handle."""


class FakeAdapter(ChannelAdapter[FakeSettings]):
    """A vendor-shaped adapter: HMAC-signed JSON in, JSON POST out, 24-hour window.

    Inbound body: ``{"events": [{"id", "from", "to", "text", "media_url", "status", "for",
    "event"}]}`` — an event with ``status`` and ``for`` is a receipt for outbound id ``for``.
    """

    name: ClassVar[str] = "fake"
    channel: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=160,
        media_kinds=frozenset({"image"}),
        buttons=True,
        max_buttons=3,
        templates=True,
        session_window=timedelta(hours=24),
        media_hosts=frozenset({"media.fake.test"}),
    )
    default_api_base: ClassVar[str | None] = "https://api.fake.test"

    def own_address(self) -> Address:
        """Our handle."""
        return Address(channel=self.channel, handle=self.settings.number)

    def verify(self, request: WebhookRequest) -> None:
        """HMAC-SHA256 of the body in ``X-Fake-Signature``."""
        given = request.header("x-fake-signature")
        if not given:
            raise SignatureError("missing X-Fake-Signature", adapter=self.name)
        expected = fake_signature(self.settings.secret.get_secret_value(), request.body)
        if not constant_time_equals(given, expected):
            raise SignatureError("bad X-Fake-Signature", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Messages and receipts from ``events``; a broken event fails alone."""
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise UnparseablePayloadError("no events list", adapter=self.name)
        result = ParseResult()
        for event in body["events"]:
            try:
                result.items.append(self._item(event))
            except (KeyError, TypeError, ValueError) as exc:
                result.failures.append(ParseFailure(f"{type(exc).__name__}: {exc}", event))
        return result

    def _item(self, event: dict[str, Any]) -> InboundMessage | StatusUpdate:
        if "status" in event:
            return StatusUpdate(external_id=str(event["for"]), status=event["status"])
        parts: list[Part] = []
        if event.get("text"):
            parts.append(TextPart(text=str(event["text"])))
        if event.get("media_url"):
            parts.append(MediaPart(kind="image", url=str(event["media_url"])))
        if event.get("event"):
            parts.append(EventPart(name=str(event["event"])))
        return InboundMessage(
            external_id=str(event["id"]),
            sender=Address(channel=self.channel, handle=str(event["from"])),
            recipients=[Address(channel=self.channel, handle=str(event.get("to") or self.settings.number))],
            parts=parts,
            references=[str(event["reply_to"])] if event.get("reply_to") else [],
        )

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """POST the rendered parts as JSON to ``{api_base}/messages``."""
        payload: dict[str, Any] = {"to": message.recipients[0].handle if message.recipients else None}
        for part in parts:
            if isinstance(part, TextPart):
                payload.setdefault("texts", []).append(part.text)
            elif isinstance(part, MediaPart):
                payload.setdefault("media", []).append(part.url)
            elif isinstance(part, ActionsPart):
                payload["buttons"] = [a.title for a in part.actions]
            elif isinstance(part, TemplatePart):
                payload["template"] = part.name
        response = await self.request(
            "POST", f"{self.api_base}/messages", json=payload,
            headers={"authorization": f"Bearer {self.settings.api_key.get_secret_value()}",
                     "idempotency-key": message.id})
        self.raise_for_status(response)
        return SendResult(external_ids=[str(response.json()["id"])])
