"""The ``messenger`` (Facebook Messenger) and ``instagram`` (Instagram messaging) adapters.

Both speak Meta's Messenger Platform: signed JSON webhooks (``X-Hub-Signature-256``), a GET
handshake (``hub.challenge``), and the Graph API Send API (``POST /{version}/me/messages``) with
a Page access token.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
import orjson

from omnichannel_sdk import (
    Address,
    AuthenticationError,
    Author,
    Capabilities,
    ChannelAdapter,
    ChannelError,
    Contact,
    Conversation,
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
from omnichannel_sdk.meta import appsecret_proof

from ._graph import graph_error
from ._inbound import ECHO_METADATA_PREFIX, PAGE_INBOX_APP_IDS, ParseOptions, parse_payload, thread_key
from ._outbound import UPLOAD_KEY, OutboundLimits, build_messages
from ._profile import (
    INSTAGRAM_FIELDS,
    MESSENGER_BASIC_FIELDS,
    MESSENGER_FIELDS,
    apply_profile,
    is_user_ref,
    normalize_profile,
    recipient_object,
)
from ._settings import (
    HUMAN_AGENT_WINDOW,
    MESSAGE_TAGS,
    TAG_METADATA,
    InstagramSettings,
    MessageTag,
    MessengerSettings,
    MetaSettings,
    MetaSettingsT,
)

__all__ = [
    "HUMAN_AGENT_WINDOW",
    "MESSAGE_TAGS",
    "TAG_METADATA",
    "InstagramAdapter",
    "MessageTag",
    "MessengerAdapter",
    "MetaAdapter",
    "MetaSettings",
]

SenderAction = Literal["typing_on", "typing_off", "mark_seen"]
_SENT_TTL = 7 * 86400
_PROFILE_TTL = 7 * 86400
_NO_PROFILE_TTL = 3600
_ATTACHMENT_TTL = 80 * 86400  # Meta's attachment ids expire after 90 days
_MAX_UPLOAD = 25 * 1024 * 1024
_WINDOW_MARK = "messenger_window"
_TAG_REQUIRED = "tag_required"
_AUTH_CODES = ("190", "102", "463", "467")
log = logging.getLogger("omnichannel_messenger")


class MetaAdapter(ChannelAdapter[MetaSettingsT]):
    """Shared code of the Messenger and Instagram adapters (not registered itself)."""

    name: ClassVar[str] = "meta"
    channel: ClassVar[str] = "messenger"
    object_name: ClassVar[str] = "page"
    """The webhook ``object`` this adapter accepts."""
    limits: ClassVar[OutboundLimits] = OutboundLimits()
    """Send API limits."""
    uploads: ClassVar[bool] = False
    """Whether stored media is sent through the Attachment Upload API (Messenger only)."""
    profile_fields: ClassVar[str] = MESSENGER_FIELDS
    """Fields asked from the profile API."""
    default_api_base: ClassVar[str | None] = "https://graph.facebook.com"

    # -- inbound ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """``X-Hub-Signature-256`` must be the HMAC-SHA256 of the exact body with the app secret."""
        meta.verify_signature(request, self.settings.app_secret.get_secret_value(), adapter=self.name)

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Meta's subscription check: ``hub.mode=subscribe`` with our ``hub.verify_token`` gets
        ``hub.challenge`` back; anything else is refused (403)."""
        return meta.answer_handshake(request, self.settings.verify_token.get_secret_value(),
                                     adapter=self.name)

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

    def thread_key_for(self, customer: Address, message: InboundMessage | None = None) -> str:
        """Customer (PSID / IGSID) + our page, whichever way the message went."""
        return thread_key(customer.handle, getattr(self.settings, "page_id", None))

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """A plain GET: attachment URLs (lookaside.fbsbx.com, *.fbcdn.net) are signed by Meta
        and expire, so the core downloads them at once; the page token is never sent there."""
        return await super().media_request(part)

    # -- outbound --------------------------------------------------------------------------

    def outside_window(
        self, parts: Sequence[Part], author: Author | None, conversation: Conversation,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """What lets a message out after the 24-hour window closed, or ``None`` to refuse.

        - ``metadata["messenger_tag"]`` naming one of the channel's ``message_tags``: that tag,
          for any author (non-promotional updates).
        - A human agent's message, with ``human_agent_tag`` on and the customer's last message
          at most 7 days old: ``HUMAN_AGENT``. A bot's or an author-less message never.

        ``hub.send`` passes the message's ``metadata``; a caller that does not (``None``) on a
        channel with ``message_tags`` gets the message through marked ``tag_required``, and
        :meth:`send` refuses it with :class:`WindowClosedError` unless it carries an allowed tag.
        """
        if metadata is not None and metadata.get(TAG_METADATA) is not None:
            wanted = metadata.get(TAG_METADATA)
            return {"tag": wanted} if wanted in self.settings.message_tags else None
        if self._human_agent_allowed(author, conversation):
            return {"tag": "HUMAN_AGENT"}
        if metadata is None and self.settings.message_tags:
            return {_WINDOW_MARK: _TAG_REQUIRED}
        return None

    def _human_agent_allowed(self, author: Author | None, conversation: Conversation) -> bool:
        if not self.settings.human_agent_tag or author is None or author.kind != "human":
            return False
        last = conversation.last_inbound_at
        return last is not None and datetime.now(UTC) - last <= HUMAN_AGENT_WINDOW

    def _tag(self, message: Message) -> str | None:
        """The message tag to send with: an allowed ``messenger_tag``; else ``HUMAN_AGENT`` only
        for a human's message, when enabled."""
        wanted = message.metadata.get(TAG_METADATA)
        if isinstance(wanted, str) and wanted in self.settings.message_tags:
            return wanted
        if message.metadata.get("tag") != "HUMAN_AGENT" or not self.settings.human_agent_tag:
            return None
        if message.author is None or message.author.kind != "human":
            return None
        return "HUMAN_AGENT"

    @property
    def messages_url(self) -> str:
        """The Send API endpoint."""
        return f"{self.api_base}/{self.settings.api_version}/me/messages"

    @property
    def attachments_url(self) -> str:
        """The Attachment Upload API endpoint."""
        return f"{self.api_base}/{self.settings.api_version}/me/message_attachments"

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

    async def _graph(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                     **kwargs: Any) -> dict[str, Any]:
        """One authenticated Graph call; its JSON object answer, or a typed error."""
        headers, auth = self._auth()
        response = await self.request(method, url, headers=headers, params={**auth, **(params or {})},
                                      **kwargs)
        self.raise_for_status(response)
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"{self.name}: the Graph API answered with no JSON",
                                retryable=True, status_code=response.status_code) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name}: unexpected Graph API answer", retryable=True,
                                status_code=response.status_code)
        return data

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._graph("POST", self.messages_url, json=body)

    # -- attachment upload -----------------------------------------------------------------

    async def attachment_id(self, part: MediaPart, kind: str) -> str:
        """A reusable ``attachment_id`` for media we hold in the blob store: uploaded once
        through the Attachment Upload API, then cached in the shared key-value store by SHA-256
        (80 days; Meta keeps them 90)."""
        if not part.blob_key:
            raise UnsupportedFeatureError(f"{self.name}: nothing stored to upload")
        kv = self.context.kv
        prefix = f"{self.name}:attachment:{self.context.key}:{kind}:"
        if part.sha256 and (known := await kv.kv_get(prefix + part.sha256)):
            return known
        if self.context.blobs is None:
            raise UnsupportedFeatureError(f"{self.name}: no blob store to read media from")
        try:
            data = await self.context.blobs.get(part.blob_key)
        except NotFoundError:
            raise MediaError(f"{self.name}: the stored media {part.blob_key!r} is gone") from None
        if len(data) > _MAX_UPLOAD:
            raise MediaError(f"{self.name}: media of {len(data)} bytes is over Meta's 25 MB limit")
        digest = hashlib.sha256(data).hexdigest()
        if digest != part.sha256 and (known := await kv.kv_get(prefix + digest)):
            return known
        message = orjson.dumps({"attachment": {"type": kind, "payload": {"is_reusable": True}}}).decode()
        filename = part.filename or f"{kind}-{digest[:12]}"
        answer = await self._graph("POST", self.attachments_url, data={"message": message}, files={
            "filedata": (filename, data, part.content_type or "application/octet-stream")})
        found = answer.get("attachment_id")
        if isinstance(found, int) and not isinstance(found, bool):
            found = str(found)
        if not isinstance(found, str) or not found:
            raise ProviderError(f"{self.name}: the Attachment Upload API answered without an "
                                "attachment_id", retryable=False, status_code=200)
        await kv.kv_set(prefix + digest, found, ttl=_ATTACHMENT_TTL)
        return found

    async def _resolve_uploads(self, piece: dict[str, Any]) -> dict[str, Any]:
        part = piece.get(UPLOAD_KEY)
        if not isinstance(part, MediaPart):
            return piece
        kind = piece["attachment"]["type"]
        found = await self.attachment_id(part, kind)
        return {"attachment": {"type": kind, "payload": {"attachment_id": found}}}

    # -- profiles --------------------------------------------------------------------------

    async def fetch_profile(self, handle: str) -> dict[str, Any]:
        """The customer's profile (see :func:`normalize_profile`), cached in the shared
        key-value store for 7 days; ``{}`` when Meta has none for this person.

        Raises the typed Graph errors for a failed call (answers without a profile are cached
        for an hour).
        """
        if is_user_ref(handle) or not handle.isdigit():  # PSIDs and IGSIDs are numbers
            return {}
        kv = self.context.kv
        key = f"{self.name}:profile:{self.context.key}:{handle}"
        cached = await kv.kv_get(key)
        if cached is not None:
            value = orjson.loads(cached)
            return value if isinstance(value, dict) else {}
        url = f"{self.api_base}/{self.settings.api_version}/{handle}"
        try:
            try:
                data = await self._graph("GET", url, params={"fields": self.profile_fields})
            except (RejectedError, AuthenticationError) as exc:
                code = (exc.vendor_code or "").split("/")[0]
                if self.profile_fields != MESSENGER_FIELDS or code in _AUTH_CODES:
                    raise
                # locale and timezone need permissions beyond profile access: ask for less
                data = await self._graph("GET", url, params={"fields": MESSENGER_BASIC_FIELDS})
        except ChannelError as exc:
            if not exc.retryable:
                await kv.kv_set(key, "{}", ttl=_NO_PROFILE_TTL)
            raise
        profile = normalize_profile(self.channel, data)
        await kv.kv_set(key, orjson.dumps(profile).decode(), ttl=_PROFILE_TTL if profile else _NO_PROFILE_TTL)
        return profile

    async def refresh_profile(self, conversation: Conversation) -> Contact | None:
        """Fetch the conversation's customer's profile and store it into their contact
        (``display_name``, ``profile.locale`` / ``profile.timezone``, ``profile[channel]``).

        Background work: every failure is logged and ``None`` returned; nothing is raised.
        """
        services = self.context.services
        if not services.running:
            return None
        try:
            contact = await services.store.get_contact(conversation.contact_id)
            seen = {(a.channel, a.handle) for a in conversation.participants}
            customer = next((a for a in (contact.addresses if contact else [])
                             if a.channel == self.channel and (a.channel, a.handle) in seen
                             and a.handle != getattr(self.settings, "page_id", None)), None)
            if customer is None or is_user_ref(customer.handle):
                return None
            profile = await self.fetch_profile(customer.handle)
            if not profile:
                return None
            updated = await services.modify_contact(customer, lambda c: apply_profile(
                c, self.channel, customer.handle, profile), reason="profile")
        except ChannelError as exc:
            log.warning("%s: no profile for conversation %s: %s", self.context.key, conversation.id, exc)
            return None
        except Exception:
            log.exception("%s: storing the profile of conversation %s failed", self.context.key,
                          conversation.id)
            return None
        return updated

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """One Send API call per rendered piece (text, attachment, template, quick replies).

        ``messaging_type`` is ``RESPONSE``, or ``MESSAGE_TAG`` + ``HUMAN_AGENT`` for a human's
        message the window check allowed. Pieces already accepted in an earlier try are not sent
        again (their mids are kept in the shared key-value store).
        """
        if not message.recipients:
            raise RejectedError(f"{self.name}: message {message.id} has no recipient")
        tag = self._tag(message)
        if tag is None and message.metadata.get(_WINDOW_MARK) == _TAG_REQUIRED:
            raise WindowClosedError(
                f"{self.name}: message {message.id} was queued after the 24-hour window without an "
                f"allowed {TAG_METADATA}")
        pieces = build_messages(parts, self.limits, uploads=self.uploads,
                                vendor_hosts=self.capabilities.media_hosts)
        base: dict[str, Any] = {"recipient": recipient_object(message.recipients[0].handle),
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
            piece = await self._resolve_uploads(piece)
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
        await self._post({"recipient": recipient_object(handle), "sender_action": action})


_COMMON = {"text_overflow": "split", "buttons": True, "max_buttons": 3, "max_button_title": 20,
           "quick_replies": True, "max_quick_replies": 13, "session_window": timedelta(hours=24),
           "typing": True, "read_receipts": True}


class MessengerAdapter(MetaAdapter[MessengerSettings]):
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
    uploads: ClassVar[bool] = True
    profile_fields: ClassVar[str] = MESSENGER_FIELDS


class InstagramAdapter(MetaAdapter[InstagramSettings]):
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
    uploads: ClassVar[bool] = False
    profile_fields: ClassVar[str] = INSTAGRAM_FIELDS
