"""The Example adapter: HMAC-signed JSON webhooks in, a JSON send API out.

Inbound body: ``{"id", "from": {"id", "name"}, "text", "media": [{"url", "type"}], "button"}``
(``button``: the id of a button the customer pressed), signed in ``X-Example-Signature``
(hex HMAC-SHA256 of the body). Outbound: ``POST {api_base}/messages`` with a bearer token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
from omnichannel_sdk import (
    ActionsPart,
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    EventPart,
    InboundMessage,
    MediaPart,
    Message,
    ParseResult,
    Part,
    SendResult,
    SignatureError,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
    hmac_matches,
    media_kind,
)
from pydantic import SecretStr

SIGNATURE_HEADER = "x-example-signature"
"""The header the vendor signs webhook bodies in."""


class ExampleSettings(AdapterSettings):
    """Settings of a Example channel (``[channels.<key>]`` with ``adapter = "example"``)."""

    webhook_secret: SecretStr
    """Signs webhooks (hex HMAC-SHA256 of the body in ``X-Example-Signature``)."""
    api_token: SecretStr
    """Bearer token of the send API."""


class ExampleAdapter(ChannelAdapter[ExampleSettings]):
    """A Example chat channel: text, media and buttons both ways."""

    name: ClassVar[str] = "example"
    channel: ClassVar[str] = "example"
    default_api_base: ClassVar[str | None] = "https://api.example.invalid"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4096, media_kinds=frozenset({"image", "audio", "video", "file"}),
        buttons=True, max_buttons=3, media_hosts=frozenset({"media.example.invalid"}))

    # -- inbound (sans-IO) --------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """``X-Example-Signature`` must be the HMAC-SHA256 of the exact body."""
        secret = self.settings.webhook_secret.get_secret_value()
        if not hmac_matches(request.header(SIGNATURE_HEADER), secret, request.body):
            raise SignatureError("bad or missing X-Example-Signature", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """One message per webhook: its text, its media and the button pressed."""
        data = request.json()
        sender = data.get("from") if isinstance(data, dict) else None
        if not isinstance(sender, dict) or "id" not in data or "id" not in sender:
            raise UnparseablePayloadError("expected id and from.id", adapter=self.name)
        parts: list[Part] = []
        if data.get("text"):
            parts.append(TextPart(text=str(data["text"])))
        for item in data.get("media") or []:
            if isinstance(item, dict) and item.get("url"):
                parts.append(MediaPart(kind=media_kind(item.get("type")), url=str(item["url"]),
                                       content_type=item.get("type")))
        if data.get("button"):
            parts.append(EventPart(name="action", data={"id": str(data["button"])}))
        return ParseResult(items=[InboundMessage(
            external_id=str(data["id"]), parts=parts,
            sender=Address(channel=self.channel, handle=str(sender["id"]),
                           display_name=sender.get("name")))])

    # -- outbound -----------------------------------------------------------------------

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """One API call per part; ``message.id`` is the idempotency key."""
        ids = []
        for index, part in enumerate(parts):
            body: dict[str, Any] = {"to": message.recipients[0].handle}
            if isinstance(part, TextPart):
                body["text"] = part.text
            elif isinstance(part, ActionsPart):
                body["text"] = part.prompt or ""
                body["buttons"] = [{"id": a.id, "title": a.title} for a in part.actions]
            elif isinstance(part, MediaPart):
                body["media"] = {"url": part.url, "type": part.content_type, "caption": part.caption}
            else:
                continue  # the renderer only hands us what the capabilities declare
            response = await self.request(
                "POST", f"{self.api_base}/messages", json=body,
                headers={"authorization": f"Bearer {self.settings.api_token.get_secret_value()}",
                         "idempotency-key": f"{message.id}:{index}"})
            self.raise_for_status(response)
            ids.append(str(response.json()["id"]))
        return SendResult(external_ids=ids)

    def raise_for_status(self, response: httpx.Response) -> None:
        """Errors come as ``{"error": {"code", "message"}}`` (or ``{"error": "text"}``): the
        vendor's code and message ride on the typed error chosen by the HTTP status."""
        if response.status_code < 400:
            return
        try:
            error = response.json().get("error")
        except (ValueError, AttributeError):  # not JSON, not an object
            error = None
        if not isinstance(error, dict):
            error = {"message": error} if isinstance(error, str) else {}
        raise self.error_for_status(response.status_code, response, error.get("code"),
                                    str(error.get("message") or "")[:200] or None)
