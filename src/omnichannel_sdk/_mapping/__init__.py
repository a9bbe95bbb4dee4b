"""``json-mapping``: map an unknown vendor's webhook (JSON, or a form) to messages, and replies
back to its API, without writing a plugin.

Paths are JMESPath expressions; a mapping can iterate and filter an events array, map event types
to ``event`` parts, take several media per event (URLs from the event or from a template, fetched
with the channel's credentials), map delivery receipts, verify HMAC (hex/base64, sha1/sha256/
sha512, over the body or timestamp + body), static-token or Basic signatures, and shape the
outbound request (URL template, JSON body template, basic/bearer/header auth, the vendor's id from
the answer). See docs/integrators.md for the LINE and Sunshine Conversations walk-throughs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from .._adapter import AdapterContext, ChannelAdapter, ParseResult, SendResult
from .._capabilities import Capabilities
from .._errors import UnparseablePayloadError, UnsupportedFeatureError
from .._models import MediaPart, Message, Part
from .._webhook import WebhookRequest
from ._inbound import explain, parse_events
from ._outbound import send_mapped
from ._paths import compile_path
from ._settings import MappingSettings
from ._signature import verify_signature

__all__ = ["JsonMappingAdapter", "lookup"]


def lookup(data: Any, path: str) -> Any:
    """The value at ``path`` (JMESPath, or a 0.1.0 dotted path) in ``data``; ``None`` when it
    matches nothing; ``""`` is the data itself."""
    if not path:
        return data
    return compile_path(path).search(data)


class JsonMappingAdapter(ChannelAdapter[MappingSettings]):
    """Declarative adapter for JSON (or form) webhooks, both ways (for integrators)."""

    name: ClassVar[str] = "json-mapping"
    channel: ClassVar[str] = "custom"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4096, media_kinds=frozenset({"image", "file", "audio", "video"}))

    def __init__(self, settings: MappingSettings, context: AdapterContext) -> None:
        super().__init__(settings, context)
        self.channel = self.settings.channel  # type: ignore[misc]
        outbound = self.settings.effective_outbound()
        # origins whose media are fetched with the outbound credentials
        self._authed_origins: frozenset[tuple[str, str, int | None]] = frozenset(
            _origin(rule.url_template.literal_prefix)
            for rule in self.settings.effective_media()
            if rule.auth == "outbound" and rule.url_template is not None
            and _origin(rule.url_template.literal_prefix)[1]) if outbound is not None else frozenset()

    def verify(self, request: WebhookRequest) -> None:
        """Check the configured signature scheme (the error says what was expected)."""
        verify_signature(self.name, self.settings.effective_signature(), request)

    def _body(self, request: WebhookRequest) -> Any:
        s = self.settings
        form = s.body == "form" or (
            s.body == "auto" and request.content_type == "application/x-www-form-urlencoded")
        return request.form() if form else request.json()

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Messages and receipts from the configured paths; an event whose required path matches
        nothing fails alone, naming the path."""
        return parse_events(self.settings, self._body(request), self.name)

    def explain(self, request: WebhookRequest) -> list[str]:
        """Notes on which paths matched nothing in the first events (``omnichannel normalize``)."""
        try:
            body = self._body(request)
        except UnparseablePayloadError as exc:
            return [str(exc)]
        return explain(self.settings, body, self.name)

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Send with the ``outbound`` request (or 0.1.0's ``send_url``)."""
        outbound = self.settings.effective_outbound()
        if outbound is None:
            raise UnsupportedFeatureError(f"{self.name}: no outbound request configured")
        conversation = None
        if self.context.services.running:
            conversation = await self.context.services.store.get_conversation(message.conversation_id)
        return await send_mapped(self, self.settings, outbound, message, parts, conversation)

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """A GET of the media URL, with the outbound credentials for rules that ask for them."""
        request = await super().media_request(part)
        if request is None or not part.url or _origin(part.url) not in self._authed_origins:
            return request
        outbound = self.settings.effective_outbound()
        if outbound is not None:
            request.headers.update(outbound.auth.headers())
        return request


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.scheme, parts.hostname or "", port)
