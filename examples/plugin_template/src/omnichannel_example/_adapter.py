"""The adapter of an imaginary vendor: HMAC-signed JSON webhooks, a JSON send API."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import ClassVar

from pydantic import SecretStr

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    InboundMessage,
    Message,
    ParseResult,
    Part,
    SendResult,
    SignatureError,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
    constant_time_equals,
)


class ExampleAdapter(ChannelAdapter):
    """The Example vendor's chat channel."""

    name: ClassVar[str] = "example"
    channel: ClassVar[str] = "example"
    capabilities: ClassVar[Capabilities] = Capabilities(max_text_length=1000)
    default_api_base: ClassVar[str | None] = "https://api.example.invalid"

    class Settings(AdapterSettings):
        """Settings of the Example channel."""

        webhook_secret: SecretStr
        """Signs webhooks (hex HMAC-SHA256 of the body in X-Example-Signature)."""
        api_token: SecretStr
        """Bearer token of the send API."""

    settings: Settings

    def verify(self, request: WebhookRequest) -> None:
        """Check X-Example-Signature."""
        given = request.header("x-example-signature") or ""
        expected = hmac.new(self.settings.webhook_secret.get_secret_value().encode(),
                            request.body, hashlib.sha256).hexdigest()
        if not given or not constant_time_equals(given, expected):
            raise SignatureError("bad or missing X-Example-Signature", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """One message per webhook: {"id", "from", "text"}."""
        data = request.json()
        if not isinstance(data, dict) or "id" not in data or "from" not in data:
            raise UnparseablePayloadError("expected id and from", adapter=self.name)
        return ParseResult(items=[InboundMessage(
            external_id=str(data["id"]),
            sender=Address(channel=self.channel, handle=str(data["from"])),
            parts=[TextPart(text=str(data.get("text", "")))],
        )])

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """POST the text to /messages."""
        text = "\n\n".join(p.text for p in parts if isinstance(p, TextPart))
        response = await self.request(
            "POST", f"{self.api_base}/messages",
            json={"to": message.recipients[0].handle, "text": text},
            headers={"authorization": f"Bearer {self.settings.api_token.get_secret_value()}",
                     "idempotency-key": message.id})
        self.raise_for_status(response)
        return SendResult(external_ids=[str(response.json()["id"])])
