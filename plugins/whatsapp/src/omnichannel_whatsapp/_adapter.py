"""The ``whatsapp`` adapter: the WhatsApp Business Platform's Cloud API.

Inbound: signed JSON webhooks (``X-Hub-Signature-256``) of a WhatsApp Business Account, with a
GET handshake (``hub.challenge``). Outbound: ``POST /{version}/{phone-number-id}/messages`` with
a system-user access token; media through ``/{phone-number-id}/media`` and ``/{media-id}``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    EventPart,
    InboundMessage,
    MediaError,
    MediaPart,
    Message,
    NotFoundError,
    ParseResult,
    Part,
    ProviderError,
    RejectedError,
    SendResult,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    WindowClosedError,
    meta,
)

from ._errors import graph_error
from ._inbound import CHANNEL, ParseOptions, media_id_of, parse_payload, thread_key
from ._outbound import UPLOAD_KEY, Limits, build_messages

__all__ = ["OFFERED_METADATA", "SERVICE_WINDOW", "WhatsAppAdapter", "WhatsAppSettings"]

OFFERED_METADATA = "whatsapp_actions"
"""Metadata key of a sent message: the actions it offered as reply buttons or list rows."""

SERVICE_WINDOW = timedelta(hours=24)
"""The customer service window: free-form messages up to 24 hours after the customer's last
message (its vendor timestamp); after that only templates."""

_SENT_TTL = 7 * 86400
_UPLOAD_TTL = 25 * 86400  # uploaded media ids live 30 days at Meta
_MAX_UPLOAD = 100 * 1024 * 1024  # documents; images 5 MB, audio and video 16 MB (Meta checks)
_MEDIA_HOSTS = frozenset({"fbsbx.com", "whatsapp.net"})
log = logging.getLogger("omnichannel_whatsapp")


class WhatsAppSettings(AdapterSettings):
    """Settings of a WhatsApp channel (``[channels.<key>]`` with ``adapter = "whatsapp"``)."""

    app_secret: SecretStr
    """The Meta app's secret: verifies ``X-Hub-Signature-256``."""
    verify_token: SecretStr
    """The token you typed into the app dashboard's webhook form; the GET handshake must show it."""
    access_token: SecretStr
    """A (system user) access token with ``whatsapp_business_messaging`` permission."""
    phone_number_id: str = Field(pattern=r"^[0-9]{1,32}$")
    """The id of our business phone number (WhatsApp Manager / API Setup), not the number."""
    api_version: str = Field(default="v21.0", pattern=r"^v\d{1,2}\.\d$")
    """Graph API version, e.g. ``v21.0``."""
    template_language: str = Field(default="en_US", min_length=2, max_length=16)
    """Language of template parts that name none."""
    link_preview: bool = True
    """Ask WhatsApp to show a preview of the first link in a text."""


class WhatsAppAdapter(ChannelAdapter[WhatsAppSettings]):
    """WhatsApp through the Cloud API: one business phone number per channel key."""

    name: ClassVar[str] = "whatsapp"
    channel: ClassVar[str] = CHANNEL
    default_api_base: ClassVar[str | None] = "https://graph.facebook.com"
    limits: ClassVar[Limits] = Limits()
    """The Cloud API's message limits."""
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4096, text_overflow="split",
        media_kinds=frozenset({"image", "audio", "video", "file", "sticker"}),
        max_media_size=_MAX_UPLOAD,
        buttons=True, max_buttons=3, max_button_title=20,
        quick_replies=True, max_quick_replies=10,  # lists: up to 10 rows
        locations=True, templates=True, session_window=SERVICE_WINDOW,
        typing=True, read_receipts=True, rate_limit=80.0,  # Meta's default throughput per number
        media_hosts=_MEDIA_HOSTS,
    )

    _options: ParseOptions | None = None

    # -- inbound ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """``X-Hub-Signature-256`` must be the HMAC-SHA256 of the exact body with the app secret."""
        meta.verify_signature(request, self.settings.app_secret.get_secret_value(), adapter=self.name)

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Meta's subscription check: ``hub.mode=subscribe`` with our ``hub.verify_token`` gets
        ``hub.challenge`` back; anything else is refused (403)."""
        return meta.answer_handshake(request, self.settings.verify_token.get_secret_value(),
                                     adapter=self.name)

    @property
    def graph(self) -> str:
        """The Graph API base with the version, e.g. ``https://graph.facebook.com/v21.0``."""
        return f"{self.api_base}/{self.settings.api_version}"

    def parse_options(self) -> ParseOptions:
        """What the pure parser needs to know about this channel (built once: settings are frozen)."""
        if self._options is None:
            self._options = ParseOptions(adapter=self.name, phone_number_id=self.settings.phone_number_id,
                                         graph=self.graph)
        return self._options

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Every message and status of every change; one broken item fails alone."""
        return parse_payload(request.json(), self.parse_options())

    def thread_key_for(self, customer: Address, message: InboundMessage | None = None) -> str:
        """Customer number + our phone number id."""
        return thread_key(customer.handle, self.settings.phone_number_id)

    # -- Graph calls -------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}

    def raise_for_status(self, response: httpx.Response) -> None:
        """Map a Graph API error answer to the typed errors (see ``_errors``)."""
        if response.status_code >= 400:
            raise self.error_for_response(response)

    def error_for_response(self, response: httpx.Response) -> ChannelError:
        """The typed error of a failed Graph API answer."""
        secrets = (self.settings.access_token.get_secret_value(),
                   self.settings.app_secret.get_secret_value())
        return graph_error(self.name, response, secrets=secrets)

    async def _graph(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated Graph call; its JSON object answer, or a typed error."""
        response = await self.request(method, url, headers=self._headers(), **kwargs)
        self.raise_for_status(response)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: the Graph API answered with no JSON", retryable=True,
                                status_code=response.status_code) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name}: unexpected Graph API answer", retryable=True,
                                status_code=response.status_code)
        return data

    @property
    def messages_url(self) -> str:
        """``POST`` here to send: ``{graph}/{phone-number-id}/messages``."""
        return f"{self.graph}/{self.settings.phone_number_id}/messages"

    # -- media -------------------------------------------------------------------------------

    def _vendor_host(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        api_host = (urlsplit(self.api_base).hostname or "").lower()
        hosts = self.capabilities.media_hosts | {api_host}
        return bool(host) and any(host == h or host.endswith("." + h) for h in hosts)

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """Inbound media: look the media id up (``GET /{media-id}``, authenticated) for its
        short-lived download URL, then a GET of that URL with the access token — sent only to
        Meta's own media hosts. Other URLs: a plain GET."""
        media_id = media_id_of(part.url, self.graph)
        if media_id is None:
            return await super().media_request(part)
        info = await self._graph("GET", f"{self.graph}/{media_id}",
                                 params={"phone_number_id": self.settings.phone_number_id})
        url = info.get("url")
        # https only, unless the configured API itself is plain http (a loopback stub, the demo)
        schemes = ("https://", "http://") if self.api_base.startswith("http://") else ("https://",)
        if not isinstance(url, str) or not url.startswith(schemes):
            raise MediaError(f"{self.name}: the media lookup of {media_id} gave no download URL")
        if not self._vendor_host(url):
            raise MediaError(f"{self.name}: media host of {urlsplit(url).hostname!r} is not Meta's")
        return self.context.http.build_request("GET", url, headers=self._headers())

    async def upload_media(self, data: bytes, content_type: str, filename: str = "file") -> str:
        """Upload bytes (``POST /{phone-number-id}/media``) and return the media id."""
        answer = await self._graph(
            "POST", f"{self.graph}/{self.settings.phone_number_id}/media",
            data={"messaging_product": "whatsapp", "type": content_type},
            files={"file": (filename, data, content_type)})
        found = answer.get("id")
        if isinstance(found, int) and not isinstance(found, bool):
            found = str(found)
        if not isinstance(found, str) or not found:
            raise ProviderError(f"{self.name}: the media upload answered without an id",
                                retryable=False, status_code=200)
        return found

    async def media_id(self, part: MediaPart) -> str:
        """A media id for bytes we hold in the blob store: uploaded once, then cached in the
        shared key-value store by SHA-256 (25 days; Meta keeps uploads 30)."""
        if not part.blob_key or self.context.blobs is None:
            raise UnsupportedFeatureError(f"{self.name}: nothing stored to upload")
        kv = self.context.kv
        prefix = f"{self.name}:media:{self.context.key}:"
        if part.sha256 and (known := await kv.kv_get(prefix + part.sha256)):
            return known
        try:
            data = await self.context.blobs.get(part.blob_key)
        except NotFoundError:
            raise MediaError(f"{self.name}: the stored media {part.blob_key!r} is gone") from None
        if len(data) > _MAX_UPLOAD:
            raise MediaError(f"{self.name}: media of {len(data)} bytes is over WhatsApp's limit")
        digest = hashlib.sha256(data).hexdigest()
        if digest != part.sha256 and (known := await kv.kv_get(prefix + digest)):
            return known
        content_type = part.content_type or "application/octet-stream"
        found = await self.upload_media(data, content_type, part.filename or f"{part.kind}-{digest[:12]}")
        await kv.kv_set(prefix + digest, found, ttl=_UPLOAD_TTL)
        return found

    # -- outbound ----------------------------------------------------------------------------

    async def _window_open(self, message: Message, parts: Sequence[Part]) -> None:
        """Refuse free-form parts once the 24-hour window closed (it may have closed while the
        message waited in the outbox): before any vendor call."""
        if all(p.type == "template" for p in parts) or not self.context.services.running:
            return
        conversation = await self.context.services.store.get_conversation(message.conversation_id)
        if conversation is None:
            return
        expires = conversation.window_expires_at
        if expires is None or expires <= datetime.now(UTC):
            raise WindowClosedError(
                f"{self.name}: the 24-hour customer service window of conversation "
                f"{conversation.id} is closed (since {expires}); only template messages may go out",
                expired_at=expires)

    async def _context(self, message: Message) -> dict[str, str] | None:
        """``context.message_id`` for a reply to a stored message with a WhatsApp id."""
        if not message.reply_to or not self.context.services.running:
            return None
        answered = await self.context.services.store.get_message(message.reply_to)
        if answered is None or not answered.external_id or not answered.external_id.startswith("wamid."):
            return None
        return {"message_id": answered.external_id}

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """One Cloud API call per built message (text, media, interactive, location, template).

        Raises :class:`WindowClosedError` before any call for free-form parts outside the
        24-hour window. Messages accepted in an earlier try are not sent again (their wamids
        are kept in the shared key-value store). Every accepted message is ``sent`` (Meta's
        ``accepted`` / ``held_for_quality_assessment`` mean it took the message).
        """
        if not message.recipients:
            raise RejectedError(f"{self.name}: message {message.id} has no recipient")
        await self._window_open(message, parts)
        built = build_messages(
            parts, graph=self.graph, limits=self.limits, link_preview=self.settings.link_preview,
            template_language=self.settings.template_language)
        base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                                "to": message.recipients[0].handle}
        context = await self._context(message)
        kv = self.context.kv
        ids: list[str] = []
        accepted: list[str] = []
        wa_id: str | None = None
        for index, piece in enumerate(built.messages):
            key = f"{self.name}:sent:{self.context.key}:{message.id}:{index}"
            if done := await kv.kv_get(key):
                ids.append(done)
                continue
            piece = dict(piece)
            upload = piece.pop(UPLOAD_KEY, None)
            if isinstance(upload, MediaPart):
                kind = piece["type"]
                piece[kind] = {**piece[kind], "id": await self.media_id(upload)}
            body = {**base, **piece}
            if context and index == 0:
                body["context"] = context
            answer = await self._graph("POST", self.messages_url, json=body)
            wamid, status, contact = _accepted(answer)
            if wamid is None:
                raise ProviderError(f"{self.name}: the Cloud API answered without a message id",
                                    retryable=False, status_code=200)
            await kv.kv_set(key, wamid, ttl=_SENT_TTL)
            ids.append(wamid)
            accepted.append(status or "accepted")
            wa_id = wa_id or contact
        metadata: dict[str, Any] = {}
        if accepted:
            metadata["message_status"] = accepted[-1]
        if wa_id:
            metadata["wa_id"] = wa_id
        if built.numbered:
            metadata["numbered_actions"] = built.numbered
        if built.offered:
            metadata[OFFERED_METADATA] = built.offered
        return SendResult(external_ids=ids, status="sent", metadata=metadata)

    async def resolve_action(self, message: Message) -> Message | None:
        """Complete the ``action`` event of a stored ``button_reply`` / ``list_reply`` with the
        action we offered (its ``kind`` and ``value``), found by id in the answered message's
        metadata. Returns the updated message, or ``None`` when there was nothing to complete.
        Background work started by the plugin when such a reply is received."""
        if not message.reply_to or not self.context.services.running:
            return None
        answered = await self.context.services.store.get_message(message.reply_to)
        offered = answered.metadata.get(OFFERED_METADATA) if answered is not None else None
        if not isinstance(offered, list):
            return None
        by_id = {a.get("id"): a for a in offered if isinstance(a, dict)}

        def complete(current: Message) -> Message | None:
            parts: list[Part] = []
            changed = False
            for part in current.parts:
                action = by_id.get(part.data.get("id")) if isinstance(part, EventPart) and \
                    part.name == "action" and "kind" not in part.data else None
                if isinstance(part, EventPart) and action is not None:
                    part = part.model_copy(update={"data": {**part.data, "kind": action.get("kind"),
                                                            "value": action.get("value"),
                                                            "offered_title": action.get("title")}})
                    changed = True
                parts.append(part)
            return current.model_copy(update={"parts": parts}) if changed else None

        return await self.context.services.modify_message(message.id, complete)

    def _recipient(self, message: Message) -> str:
        customer = message.sender if message.direction == "inbound" else (
            message.recipients[0] if message.recipients else None)
        if customer is None:
            raise RejectedError(f"{self.name}: message {message.id} has no customer")
        return customer.handle

    async def react(self, message: Message, emoji: str) -> str:
        """React to a stored message (the customer's or ours) with ``emoji``; ``""`` removes the
        reaction. Returns the reaction's wamid. Raises the same typed errors as :meth:`send`."""
        if not message.external_id:
            raise RejectedError(f"{self.name}: message {message.id} has no WhatsApp id to react to")
        answer = await self._graph("POST", self.messages_url, json={
            "messaging_product": "whatsapp", "recipient_type": "individual",
            "to": self._recipient(message), "type": "reaction",
            "reaction": {"message_id": message.external_id, "emoji": emoji}})
        wamid, _status, _contact = _accepted(answer)
        if wamid is None:
            raise ProviderError(f"{self.name}: the Cloud API answered without a message id",
                                retryable=False, status_code=200)
        return wamid

    async def mark_read(self, message: Message | str, *, typing: bool = False) -> None:
        """Mark a customer's message (a stored :class:`Message` or its wamid) and the ones
        before it read: blue ticks on the customer's phone. ``typing`` also shows the typing
        indicator (for up to 25 seconds, or until we answer)."""
        wamid = message if isinstance(message, str) else message.external_id
        if not wamid:
            raise RejectedError(f"{self.name}: no WhatsApp id to mark read")
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        answer = await self._graph("POST", self.messages_url, json=body)
        if answer.get("success") is not True:
            raise ProviderError(f"{self.name}: marking {wamid} read was not confirmed",
                                retryable=True, status_code=200)


def _accepted(answer: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(wamid, message_status, wa_id) of a send answer: ``{"messaging_product", "contacts":
    [{"input", "wa_id"}], "messages": [{"id", "message_status"}]}``."""
    messages = answer.get("messages")
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], dict) else {}
    wamid = first.get("id") if isinstance(first.get("id"), str) and first.get("id") else None
    status = first.get("message_status") if isinstance(first.get("message_status"), str) else None
    contacts = answer.get("contacts")
    contact = contacts[0] if isinstance(contacts, list) and contacts and isinstance(contacts[0], dict) else {}
    wa_id = contact.get("wa_id") if isinstance(contact.get("wa_id"), str) else None
    return wamid, status, wa_id
