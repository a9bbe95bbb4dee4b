"""The ``messenger`` (Facebook Messenger) and ``instagram`` (Instagram messaging) adapters.

Both speak Meta's Messenger Platform: signed JSON webhooks (``X-Hub-Signature-256``), a GET
handshake (``hub.challenge``), and the Graph API Send API (``POST /{version}/me/messages``) with
a Page access token.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field, SecretStr

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Author,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    Conversation,
    InboundMessage,
    MediaPart,
    Message,
    ParseResult,
    Part,
    ProviderError,
    RejectedError,
    SendResult,
    SignatureError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    constant_time_equals,
)

from ._graph import graph_error
from ._inbound import ECHO_METADATA_PREFIX, PAGE_INBOX_APP_IDS, ParseOptions, parse_payload, thread_key
from ._outbound import OutboundLimits, build_messages
from ._signature import SIGNATURE_HEADER, appsecret_proof, signature_matches

__all__ = ["HUMAN_AGENT_WINDOW", "InstagramAdapter", "MessengerAdapter", "MetaAdapter", "MetaSettings"]

HUMAN_AGENT_WINDOW = timedelta(days=7)
"""How long after the customer's last message a human agent may answer with the HUMAN_AGENT tag."""

SenderAction = Literal["typing_on", "typing_off", "mark_seen"]
_SENT_TTL = 7 * 86400


class MetaSettings(AdapterSettings):
    """Settings of a Meta messaging channel (``[channels.<key>]``)."""

    app_secret: SecretStr
    """The Meta app's secret: verifies ``X-Hub-Signature-256`` and signs ``appsecret_proof``."""
    verify_token: SecretStr
    """The token you typed into the app dashboard; the GET handshake must present it."""
    page_access_token: SecretStr
    """Page access token used by the Send API."""
    api_version: str = Field(default="v21.0", pattern=r"^v\d{1,2}\.\d$")
    """Graph API version, e.g. ``v21.0``."""
    page_id: str | None = None
    """Our Page id (Instagram: the professional account id). Optional; set it so that
    conversations you start thread with the customer's own messages."""
    human_agent_tag: bool = False
    """Allow human agents to answer up to 7 days after the customer's last message with the
    ``HUMAN_AGENT`` tag (the page needs Meta's Human Agent permission). Never used for bots."""
    human_app_ids: list[str] = Field(default_factory=lambda: sorted(PAGE_INBOX_APP_IDS))
    """Echoes sent by these app ids were written by people (Meta's own inboxes by default)."""
    appsecret_proof: bool = True
    """Send ``appsecret_proof`` with every Graph call (required when the app enforces it)."""


class MetaAdapter(ChannelAdapter):
    """Shared code of the Messenger and Instagram adapters (not registered itself)."""

    name: ClassVar[str] = "meta"
    channel: ClassVar[str] = "messenger"
    object_name: ClassVar[str] = "page"
    """The webhook ``object`` this adapter accepts."""
    limits: ClassVar[OutboundLimits] = OutboundLimits()
    """Send API limits."""
    default_api_base: ClassVar[str | None] = "https://graph.facebook.com"

    class Settings(MetaSettings):
        """Settings of a Meta messaging channel."""

    settings: MetaSettings

    # -- inbound ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """``X-Hub-Signature-256`` must be the HMAC-SHA256 of the exact body with the app secret."""
        header = request.header(SIGNATURE_HEADER)
        if not header:
            raise SignatureError("missing X-Hub-Signature-256", adapter=self.name)
        if not signature_matches(self.settings.app_secret.get_secret_value(), request.body, header):
            raise SignatureError("bad X-Hub-Signature-256", adapter=self.name)

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Answer Meta's subscription check: ``hub.mode=subscribe`` with our ``hub.verify_token``
        gets ``hub.challenge`` back; anything else is refused (403)."""
        mode = request.query.get("hub.mode")
        token = request.query.get("hub.verify_token")
        if mode != "subscribe" or token is None or not constant_time_equals(
                token, self.settings.verify_token.get_secret_value()):
            raise SignatureError("webhook verification refused", adapter=self.name)
        challenge = request.query.get("hub.challenge", "")
        if not challenge or len(challenge) > 512:
            return WebhookResponse(400, b"missing hub.challenge")
        return WebhookResponse(200, challenge)

    def parse_options(self) -> ParseOptions:
        """What the pure parser needs to know about this channel."""
        page_id = getattr(self.settings, "page_id", None)
        human = getattr(self.settings, "human_app_ids", None)
        return ParseOptions(adapter=self.name, channel=self.channel, object_name=self.object_name,
                            page_id=page_id, human_app_ids=frozenset(human or PAGE_INBOX_APP_IDS))

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Every event of every entry; one broken event fails alone (dead-lettered)."""
        return parse_payload(request.json(), self.parse_options())

    def own_address(self) -> Address | None:
        """Our page, when ``page_id`` is configured."""
        page_id = getattr(self.settings, "page_id", None)
        return Address(channel=self.channel, handle=page_id) if page_id else None

    def thread_key(self, message: InboundMessage) -> str:
        """Customer (PSID / IGSID) + our page, whichever way the message went."""
        if message.thread_key:
            return message.thread_key
        customer = message.sender if message.direction == "inbound" else (
            message.recipients[0] if message.recipients else message.sender)
        return thread_key(customer.handle, getattr(self.settings, "page_id", None))

    def thread_key_for(self, customer: Address) -> str:
        """The thread key of a conversation we start with ``customer``."""
        return thread_key(customer.handle, getattr(self.settings, "page_id", None))

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """A plain GET: attachment URLs (lookaside.fbsbx.com, *.fbcdn.net) are signed by Meta
        and expire, so the core downloads them at once; the page token is never sent there."""
        return await super().media_request(part)

    # -- outbound --------------------------------------------------------------------------

    def outside_window(
        self, parts: Sequence[Part], author: Author | None, conversation: Conversation
    ) -> dict[str, Any] | None:
        """After 24 hours only a human agent may answer, with the ``HUMAN_AGENT`` tag, when it is
        enabled and the customer wrote within 7 days. A bot's or an author-less message never."""
        if not self.settings.human_agent_tag or author is None or author.kind != "human":
            return None
        last = conversation.last_inbound_at
        if last is None or datetime.now(UTC) - last > HUMAN_AGENT_WINDOW:
            return None
        return {"tag": "HUMAN_AGENT"}

    def _tag(self, message: Message) -> str | None:
        """The message tag to send with: HUMAN_AGENT only for a human's message, when enabled."""
        if message.metadata.get("tag") != "HUMAN_AGENT" or not self.settings.human_agent_tag:
            return None
        if message.author is None or message.author.kind != "human":
            return None
        return "HUMAN_AGENT"

    @property
    def messages_url(self) -> str:
        """The Send API endpoint."""
        return f"{self.api_base}/{self.settings.api_version}/me/messages"

    def _auth(self) -> tuple[dict[str, str], dict[str, str]]:
        token = self.settings.page_access_token.get_secret_value()
        params = {"appsecret_proof": appsecret_proof(self.settings.app_secret.get_secret_value(), token)} \
            if self.settings.appsecret_proof else {}
        return {"authorization": f"Bearer {token}"}, params

    def raise_for_status(self, response: httpx.Response) -> None:
        """Map a Graph API error answer to the typed errors (see ``_graph``)."""
        if response.status_code < 400:
            return
        raise self.error_for_response(response)

    def error_for_response(self, response: httpx.Response) -> ChannelError:
        """The typed error of a failed Graph API answer."""
        secrets = (self.settings.page_access_token.get_secret_value(),
                   self.settings.app_secret.get_secret_value())
        return graph_error(self.name, response, secrets=secrets)

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers, params = self._auth()
        response = await self.request("POST", self.messages_url, json=body, headers=headers,
                                      params=params)
        self.raise_for_status(response)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: the Send API answered with no JSON",
                                retryable=True, status_code=response.status_code) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name}: unexpected Send API answer", retryable=True,
                                status_code=response.status_code)
        return data

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """One Send API call per rendered piece (text, attachment, template, quick replies).

        ``messaging_type`` is ``RESPONSE``, or ``MESSAGE_TAG`` + ``HUMAN_AGENT`` for a human's
        message the window check allowed. Pieces already accepted in an earlier try are not sent
        again (their mids are kept in the shared key-value store).
        """
        if not message.recipients:
            raise RejectedError(f"{self.name}: message {message.id} has no recipient")
        pieces = build_messages(parts, self.limits)
        tag = self._tag(message)
        base: dict[str, Any] = {"recipient": {"id": message.recipients[0].handle},
                                "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE"}
        if tag:
            base["tag"] = tag
        kv = self.context.kv
        ids: list[str] = []
        for index, piece in enumerate(pieces):
            key = f"{self.name}:sent:{self.context.key}:{message.id}:{index}"
            done = await kv.kv_get(key)
            if done:
                ids.append(done)
                continue
            data = await self._post({**base, "message": {
                **piece, "metadata": f"{ECHO_METADATA_PREFIX}{message.id}"}})
            mid = data.get("message_id")
            if not isinstance(mid, str) or not mid:
                raise ProviderError(f"{self.name}: the Send API answered without a message_id",
                                    retryable=False, status_code=200)
            await kv.kv_set(key, mid, ttl=_SENT_TTL)
            ids.append(mid)
        metadata: dict[str, Any] = {"messaging_type": base["messaging_type"]}
        if tag:
            metadata["tag"] = tag
        return SendResult(external_ids=ids, status="sent", metadata=metadata)

    async def sender_action(self, recipient: Address | str, action: SenderAction) -> None:
        """Show ``typing_on`` / ``typing_off`` or mark the customer's messages seen
        (``mark_seen``). Raises the same typed errors as :meth:`send`."""
        if action not in ("typing_on", "typing_off", "mark_seen"):
            raise UnsupportedFeatureError(f"{self.name}: unknown sender action {action!r}")
        handle = recipient.handle if isinstance(recipient, Address) else recipient
        await self._post({"recipient": {"id": handle}, "sender_action": action})


_COMMON = {"text_overflow": "split", "buttons": True, "max_buttons": 3, "max_button_title": 20,
           "quick_replies": True, "max_quick_replies": 13, "session_window": timedelta(hours=24),
           "typing": True, "read_receipts": True}


class MessengerAdapter(MetaAdapter):
    """Facebook Messenger through a Page (Messenger Platform webhooks and the Send API)."""

    name: ClassVar[str] = "messenger"
    channel: ClassVar[str] = "messenger"
    object_name: ClassVar[str] = "page"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=2000,
        media_kinds=frozenset({"image", "audio", "video", "file"}),
        media_hosts=frozenset({"fbsbx.com", "fbcdn.net"}),
        **_COMMON,
    )
    limits: ClassVar[OutboundLimits] = OutboundLimits(max_text=2000)

    class Settings(MetaSettings):
        """Settings of a Messenger channel: ``app_secret``, ``verify_token``,
        ``page_access_token``, ``api_version``, optional ``page_id`` and ``human_agent_tag``."""


class InstagramAdapter(MetaAdapter):
    """Instagram messaging of a professional account linked to a Page (same platform, same
    Send API; text up to 1,000 characters)."""

    name: ClassVar[str] = "instagram"
    channel: ClassVar[str] = "instagram"
    object_name: ClassVar[str] = "instagram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=1000,
        media_kinds=frozenset({"image", "audio", "video"}),
        media_hosts=frozenset({"fbsbx.com", "fbcdn.net", "cdninstagram.com"}),
        **_COMMON,
    )
    limits: ClassVar[OutboundLimits] = OutboundLimits(max_text=1000)

    class Settings(MetaSettings):
        """Settings of an Instagram channel (as Messenger's; ``page_id`` is the Instagram
        professional account id)."""
