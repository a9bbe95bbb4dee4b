"""``json-mapping``: map an unknown vendor's webhook (JSON, or a form) to messages without a plugin.

Fields are named by dotted paths into each event (``message.from.id``, ``entries.0.text``). The
request is authenticated with an HMAC-SHA256 of the raw body (hex, optional prefix) or a shared
token header; replies can be POSTed as JSON to ``send_url``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from ._adapter import (
    AdapterSettings,
    ChannelAdapter,
    InboundMessage,
    ParseFailure,
    ParseResult,
    SendResult,
    constant_time_equals,
)
from ._capabilities import Capabilities
from ._errors import SignatureError, UnparseablePayloadError, UnsupportedFeatureError
from ._models import Address, MediaPart, Message, Part, TextPart
from ._webhook import WebhookRequest

__all__ = ["JsonMappingAdapter", "lookup"]

_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted ``path`` (list indices as numbers); ``None`` when absent."""
    if not path:
        return data
    current = data
    for key in path.split("."):
        if isinstance(current, dict):
            current = current.get(key, _MISSING)
        elif isinstance(current, list) and key.lstrip("-").isdigit():
            index = int(key)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            current = _MISSING
        if current is _MISSING:
            return None
    return current


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds
            number /= 1000
        return datetime.fromtimestamp(number, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


class JsonMappingAdapter(ChannelAdapter):
    """Declarative adapter for JSON webhooks (for integrators)."""

    name: ClassVar[str] = "json-mapping"
    channel: ClassVar[str] = "custom"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4096, media_kinds=frozenset({"image", "file", "audio", "video"}))

    class Settings(AdapterSettings):
        """Where each normalized field is found in the vendor's JSON."""

        channel: str = "custom"
        """Channel kind written into addresses and messages."""
        auth: Literal["hmac-sha256", "token", "none"] = "hmac-sha256"
        """How requests are authenticated; ``none`` only for local experiments."""
        secret: SecretStr | None = None
        """HMAC key or shared token."""
        signature_header: str = "x-signature"
        """Header carrying the signature or token."""
        signature_prefix: str = ""
        """Prefix before the hex digest (e.g. ``sha256=``)."""
        body: Literal["auto", "json", "form"] = "auto"
        """How the body is encoded: JSON, a form (``application/x-www-form-urlencoded``, one
        event whose field names are the paths), or ``auto`` by the content type."""
        items: str = ""
        """Path to the list of events in the body; empty: the body is one event."""
        external_id: str = "id"
        """Path to the vendor's message id."""
        sender: str = "from"
        """Path to the sender's handle."""
        sender_name: str = ""
        """Path to the sender's display name."""
        recipient: str = ""
        """Path to our handle (account, number)."""
        text: str = "text"
        """Path to the text."""
        subject: str = ""
        """Path to a subject."""
        created_at: str = ""
        """Path to the time (ISO 8601 or epoch seconds/milliseconds)."""
        media_url: str = ""
        """Path to a media URL."""
        media_type: str = ""
        """Path to the media's MIME type."""
        send_url: str | None = None
        """Where replies are POSTed as JSON ``{"id", "to", "text"}``."""
        send_token: SecretStr | None = None
        """Bearer token for ``send_url``."""
        response_id: str = "id"
        """Path to the vendor id in the send response."""
        media_hosts: list[str] = Field(default_factory=list)
        """Hosts media may be downloaded from."""

    settings: Settings

    def __init__(self, settings: AdapterSettings, context: Any) -> None:
        super().__init__(settings, context)
        self.channel = self.settings.channel  # type: ignore[misc]

    def verify(self, request: WebhookRequest) -> None:
        """Check the HMAC or token header."""
        s = self.settings
        if s.auth == "none":
            return
        given = request.header(s.signature_header)
        if not given or s.secret is None:
            raise SignatureError(f"missing {s.signature_header} header", adapter=self.name)
        secret = s.secret.get_secret_value()
        if s.auth == "token":
            expected = secret
        else:
            expected = s.signature_prefix + hmac.new(
                secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not constant_time_equals(given.strip(), expected):
            raise SignatureError("signature does not match", adapter=self.name)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Messages from the configured paths; an event without sender or id fails alone."""
        s = self.settings
        form = s.body == "form" or (
            s.body == "auto" and request.content_type == "application/x-www-form-urlencoded")
        body: Any = request.form() if form else request.json()
        events = lookup(body, s.items) if s.items else body
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list):
            raise UnparseablePayloadError(f"no event list at {s.items!r}", adapter=self.name)
        result = ParseResult()
        for event in events:
            try:
                result.items.append(self._message(event))
            except (ValueError, TypeError) as exc:
                result.failures.append(ParseFailure(error=str(exc), fragment=event))
        return result

    def _message(self, event: Any) -> InboundMessage:
        s = self.settings
        ext, sender = lookup(event, s.external_id), lookup(event, s.sender)
        if ext is None or sender is None:
            raise ValueError(f"event lacks {s.external_id!r} or {s.sender!r}")
        parts: list[Part] = []
        text = lookup(event, s.text)
        if text:
            parts.append(TextPart(text=str(text)))
        url = lookup(event, s.media_url) if s.media_url else None
        if url:
            ctype = str(lookup(event, s.media_type) or "") or None
            kind = "image" if ctype and ctype.startswith("image/") else "file"
            parts.append(MediaPart(kind=kind, url=str(url), content_type=ctype))
        name = lookup(event, s.sender_name) if s.sender_name else None
        recipient = lookup(event, s.recipient) if s.recipient else None
        return InboundMessage(
            external_id=str(ext),
            sender=Address(channel=s.channel, handle=str(sender),
                           display_name=str(name) if name else None),
            recipients=[Address(channel=s.channel, handle=str(recipient))] if recipient else [],
            parts=parts,
            subject=str(lookup(event, s.subject)) if s.subject and lookup(event, s.subject) else None,
            created_at=_time(lookup(event, s.created_at)) if s.created_at else None,
        )

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """POST ``{"id", "to", "text", "media"}`` to ``send_url``."""
        s = self.settings
        if not s.send_url:
            raise UnsupportedFeatureError(f"{self.name}: no send_url configured")
        text = "\n\n".join(p.text for p in parts if isinstance(p, TextPart))
        media = [p.url for p in parts if isinstance(p, MediaPart) and p.url]
        headers = {"idempotency-key": message.id}
        if s.send_token is not None:
            headers["authorization"] = f"Bearer {s.send_token.get_secret_value()}"
        response = await self.request("POST", s.send_url, headers=headers, json={
            "id": message.id, "to": [r.handle for r in message.recipients], "text": text,
            "media": media})
        self.raise_for_status(response)
        try:
            ext = lookup(response.json(), s.response_id)
        except ValueError:
            ext = None
        return SendResult(external_ids=[str(ext or message.id)])
