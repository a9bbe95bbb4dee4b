"""The ``webchat`` adapter: visitors on our own widget, over WebSocket or HTTP long-poll.

Inbound visitor messages go through ``hub.ingest`` (the same de-duplication, threading and
events as webhooks); the webhook form (``POST /webhooks/{key}`` with the session token in
``X-Webchat-Session``) runs through the ordinary gateway. Outbound, :meth:`WebchatAdapter.send`
pushes to the visitor's connections in this process; on a NATS bus every process also listens to
``hub.events()`` and pushes what another process sent. A visitor who is away gets every message
from the store when the widget reconnects.

Typing and "seen" travel as :class:`~omnichannel_sdk.ChannelSignal` events (``hub.signal``), so
they cross processes too: the visitor's reach every agent inbox, an agent's (from
:meth:`WebchatAdapter.agent_typing` or any ``hub.signal(key, conversation_id, "typing",
{"from": "agent", "on": True})``) reach the visitor wherever the widget is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from omnichannel_sdk import (
    AdapterContext,
    Address,
    Capabilities,
    ChannelSignal,
    InboundMessage,
    Message,
    MessageReceived,
    MessageSent,
    MessageUpdated,
    OmnichannelError,
    ParseFailure,
    ParseResult,
    Part,
    RejectedError,
    SendResult,
    SignatureError,
    StatusUpdate,
    TextPart,
    TokenBucket,
    UnparseablePayloadError,
    WebhookRequest,
    WebhookResponse,
)

from ._registry import Connection, Registry, SignalBuffer, frame
from ._session import EMAIL, Session, peek_session, sign_session, verify_session
from ._settings import WebchatSettings
from ._signals import SIGNAL_TTL, WebchatSignals
from ._wire import wire_message

__all__ = ["SESSION_HEADER", "SIGNAL_TTL", "WebchatAdapter", "wire_message"]

log = logging.getLogger("omnichannel_webchat")

SESSION_HEADER = "x-webchat-session"
"""The header that carries the visitor's session token on HTTP requests."""

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

class WebchatAdapter(WebchatSignals):
    """Web chat on our own widget: WebSocket + HTTP fallback, signed visitor sessions."""

    name: ClassVar[str] = "webchat"
    channel: ClassVar[str] = "webchat"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_text_length=4000,
        formats=frozenset({"plain", "markdown"}),
        media_kinds=frozenset({"image", "audio", "video", "file"}),
        buttons=True,
        max_buttons=8,
        max_button_title=60,
        quick_replies=True,
        max_quick_replies=8,
        typing=True,
        read_receipts=True,
    )

    def __init__(self, settings: WebchatSettings, context: AdapterContext) -> None:
        super().__init__(settings, context)
        self.registry = Registry()
        self.limiter = TokenBucket(self.settings.visitor_rate, self.settings.visitor_burst)
        self._app: Callable[..., Awaitable[None]] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._signal_queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._conversations: dict[str, str] = {}
        self._visitors: OrderedDict[str, str] = OrderedDict()  # conversation id -> visitor
        self._typing: OrderedDict[str, tuple[bool, float]] = OrderedDict()  # last visitor typing
        self.signal_buffer = SignalBuffer(SIGNAL_TTL)
        self.origin_id = secrets.token_hex(8)
        """Marks the signals this adapter instance published (its own echo is skipped)."""
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- configuration helpers -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the gateway serves this channel's app: ``public_url/channels/{key}``."""
        return f"{self.context.public_url}/channels/{self.context.key}"

    def _secret(self) -> str:
        return self.settings.secret.get_secret_value()

    def origin_allowed(self, origin: str | None, own_origin: str | None = None) -> bool:
        """Whether a request from page ``origin`` may use this channel.

        No ``Origin`` header (server-side clients, same-origin GETs) is allowed: the session
        token is what authenticates. The gateway's own origin is always allowed.
        """
        if not origin:
            return True
        origin = origin.strip().rstrip("/").lower()
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        public = urlsplit(self.context.public_url)
        mine = {f"{public.scheme}://{public.netloc}".lower()}
        if own_origin:
            mine.add(own_origin.lower())
        return origin in mine

    def issue(self, session: Session) -> str:
        """A signed token for ``session``."""
        return sign_session(session, self._secret())

    def check_token(self, token: str | None) -> Session:
        """The session of a token; :class:`SignatureError` when invalid or expired."""
        return verify_session(token, self._secret(), self.context.key)

    # -- inbound (sans-IO) -----------------------------------------------------------------

    def own_address(self) -> Address:
        """The channel itself: ``webchat:{key}``."""
        return Address(channel=self.channel, handle=self.context.key)

    def verify(self, request: WebhookRequest) -> None:
        """The visitor's session token (``X-Webchat-Session``) and the page's origin."""
        if not self.origin_allowed(request.header("origin")):
            raise SignatureError("origin not allowed", adapter=self.name)
        self.check_token(request.header(SESSION_HEADER))

    def parse(self, request: WebhookRequest) -> ParseResult:
        """Messages from the webhook form of the HTTP fallback.

        JSON ``{"messages": [{"id": client id, "text": ...}]}`` or a form ``id=…&text=…``.
        The visitor comes from the (already verified) session token.
        """
        token = request.header(SESSION_HEADER)
        if not token:
            raise UnparseablePayloadError("no session token", adapter=self.name)
        try:
            session = peek_session(token)
        except SignatureError as exc:
            raise UnparseablePayloadError(exc.detail, adapter=self.name) from None
        items: list[Any]
        if request.content_type == "application/x-www-form-urlencoded":
            items = [request.form()]
        else:
            body = request.json()
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise UnparseablePayloadError("no messages list", adapter=self.name)
            items = body["messages"]
        result = ParseResult()
        if not items:
            raise UnparseablePayloadError("empty messages list", adapter=self.name)
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise TypeError("a message is an object")
                result.items.append(self.inbound(session, item.get("id"), item.get("text")))
            except (TypeError, ValueError) as exc:
                result.failures.append(ParseFailure(f"{type(exc).__name__}: {exc}", item))
        return result

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """``{"ok": true}`` once the visitor's messages are stored (``false``: dead-lettered)."""
        return WebhookResponse.json({"ok": result is not None})

    def inbound(self, session: Session, client_id: Any, text: Any = None,
                parts: Sequence[Part] = (), metadata: dict[str, Any] | None = None) -> InboundMessage:
        """The :class:`InboundMessage` for a visitor's message (raises ``ValueError`` when bad).

        ``client_id`` is the widget's id for the message: a retry with the same id is
        de-duplicated. The pre-chat email rides along as a claimed (unproven) address: it never
        merges the visitor into the contact owning it, it only proposes the merge.
        """
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            raise ValueError("id must be 1-64 characters of A-Z a-z 0-9 _ -")
        all_parts: list[Part] = []
        if text is not None:
            if not isinstance(text, str):
                raise TypeError("text must be a string")
            text = text.replace("\r\n", "\n").strip()
            if len(text) > self.settings.max_visitor_text:
                raise ValueError(f"text longer than {self.settings.max_visitor_text} characters")
            if text:
                all_parts.append(TextPart(text=text))
        all_parts.extend(parts)
        if not all_parts:
            raise ValueError("empty message")
        hints = []
        if session.email and EMAIL.match(session.email):
            hints.append(Address(channel="email", handle=session.email,
                                 display_name=session.name))
        profile: dict[str, Any] = {}
        if session.name:
            profile["name"] = session.name
        if session.locale:
            profile["locale"] = session.locale
        if hints:  # shown to agents as typed, never used to find or merge a contact
            profile["unverified_email"] = hints[0].handle
        meta = {"client_id": client_id, **(metadata or {})}
        if session.email:
            meta["prechat_email"] = session.email
            meta["email_verified"] = False
        return InboundMessage(
            external_id=f"{session.visitor}:{client_id}",
            sender=Address(channel=self.channel, handle=session.visitor,
                           display_name=session.name),
            recipients=[self.own_address()], parts=all_parts, claimed_addresses=hints,
            profile=profile, metadata=meta)

    # -- outbound ----------------------------------------------------------------------------

    def _visitor_of(self, message: Message) -> str | None:
        addresses = message.recipients if message.direction == "outbound" else [message.sender]
        for address in addresses:
            if address.channel == self.channel and address.handle != self.context.key:
                return address.handle
        return None

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Push the message to the visitor's open connections in this process.

        A visitor who is not connected gets it from the store on reconnect, so this never
        fails for being offline; delivery and read receipts come back from the widget.
        """
        visitor = self._visitor_of(message)
        if visitor is None:
            raise RejectedError(f"{self.name}: the message has no visitor recipient")
        shown = message.model_copy(update={"parts": list(parts)})
        live = self.registry.push(visitor, frame({"type": "message", "message": wire_message(
            shown, self.base_url)}), message_id=message.id)
        self._conversations[visitor] = message.conversation_id
        self._note(visitor, message.conversation_id)
        return SendResult(external_ids=[message.id], status="sent", metadata={"webchat_live": live})

    def embed_snippet(self, base: str | None = None) -> str:
        """The one ``<script>`` tag that puts the widget on a page (``base``: where this
        channel's app is reachable from that page; default ``public_url/channels/{key}``)."""
        return f'<script src="{html.escape(base or self.base_url)}/widget.js" async></script>'

    # -- conversations and history -----------------------------------------------------------------

    async def conversation_of(self, visitor: str) -> str | None:
        """The id of the visitor's latest conversation on this channel, if any."""
        cached = self._conversations.get(visitor)
        if cached:
            return cached
        services = self.services
        if not services.running:
            return None
        stored = await self.context.kv.kv_get(f"webchat:{self.context.key}:conv:{visitor}")
        if stored:
            self._conversations[visitor] = stored
            return stored
        contact = await services.store.find_contact(Address(channel=self.channel, handle=visitor))
        if contact is None:
            return None
        prefix = f"{visitor}|"
        for conversation in await services.store.list_conversations(
                channel_key=self.context.key, contact_id=contact.id):
            if conversation.thread_key.startswith(prefix):
                self._conversations[visitor] = conversation.id
                return conversation.id
        return None

    async def remember_conversation(self, visitor: str, conversation_id: str) -> None:
        """Note the visitor's current conversation (shared through the KV store)."""
        if self._conversations.get(visitor) == conversation_id:
            return
        self._conversations[visitor] = conversation_id
        self._note(visitor, conversation_id)
        if len(self._conversations) > 100_000:
            self._conversations.pop(next(iter(self._conversations)))
        await self.context.kv.kv_set(f"webchat:{self.context.key}:conv:{visitor}", conversation_id,
                                     ttl=self.settings.session_ttl)

    async def history(self, visitor: str, after: str | None = None) -> list[Message]:
        """The visitor's last ``history_limit`` messages (after message id ``after``), oldest
        first; only those are read from the store."""
        conversation_id = await self.conversation_of(visitor)
        if not self.services.running or conversation_id is None:
            return []
        return await self.services.store.list_messages(conversation_id, after=after or None,
                                             last=self.settings.history_limit)

    async def receive(self, session: Session, client_id: Any, text: Any = None,
                      parts: Sequence[Part] = (), *, origin: Connection | None = None,
                      metadata: dict[str, Any] | None = None) -> Message | None:
        """Store a visitor's message through ``hub.ingest`` and show it on the visitor's other
        connections. Returns the stored message (``None`` for a duplicate)."""
        if not self.services.running:
            raise OmnichannelError("the webchat adapter runs inside a hub")
        draft = self.inbound(session, client_id, text, parts, metadata)
        stored = await self.services.ingest([draft])
        if not stored:
            return None
        message = stored[0]
        await self.remember_conversation(session.visitor, message.conversation_id)
        self.registry.push(session.visitor, frame({"type": "message", "message": wire_message(
            message, self.base_url)}), message_id=message.id, skip=origin)
        return message

    async def stored(self, session: Session, client_id: Any) -> Message | None:
        """The stored message of the visitor's ``client_id`` (what the ack of a repeat carries:
        the widget that sent it again never got the first ack)."""
        if not self.services.running or not isinstance(client_id, str):
            return None
        return await self.services.store.find_message_by_external(
            self.context.key, f"{session.visitor}:{client_id}")

    async def mark(self, session: Session, ids: Sequence[Any], status: str) -> int:
        """Apply ``delivered`` / ``read`` receipts the widget sent for agent messages.

        Only messages to this visitor count; returns how many receipts were applied.
        """
        services = self.services
        if not services.running or status not in ("delivered", "read"):
            return 0
        count = 0
        newest: Message | None = None
        for mid in list(dict.fromkeys(i for i in ids if isinstance(i, str)))[:100]:
            message = await services.store.get_message(mid)
            if (message is None or message.channel_key != self.context.key
                    or message.direction != "outbound" or self._visitor_of(message) != session.visitor):
                continue
            if status == "read" and (newest is None or message.id > newest.id):
                newest = message
            if message.status in ("failed", status) or (status == "delivered" and message.status == "read"):
                continue
            if message.status == "queued":
                # the widget can ack before the outbox recorded the send: apply once it has
                # (the hub keeps only one early receipt per message, so "read" could be lost)
                self._later(self._apply_when_sent(mid, status))
            else:
                await services.apply_status(StatusUpdate(external_id=mid, status=status))
            count += 1
        if newest is not None and count:
            self.visitor_seen(session, newest.conversation_id, newest.id)
        return count

    def _later(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply_when_sent(self, message_id: str, status: str) -> None:
        services = self.services
        for _ in range(100):
            await asyncio.sleep(0.05)
            message = await services.store.get_message(message_id)
            if message is None or message.status == "failed":
                return
            if message.status != "queued":
                break
        await services.apply_status(StatusUpdate(external_id=message_id, status=status))

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the hub's events to push what other processes (or tabs) produced."""
        if self.services.running and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name=f"webchat-{self.context.key}")

    async def stop(self) -> None:
        """Stop listening; close every connection (widgets reconnect elsewhere)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        for task in list(self._tasks):
            task.cancel()
        for visitor in list(self.registry._by_visitor):
            for conn in self.registry.connections(visitor):
                conn.closed = True
                conn.wake.set()

    async def _listen(self) -> None:
        key = self.context.key
        async for event in self.services.events():
            try:
                if isinstance(event, (MessageSent, MessageReceived)):
                    message = event.message
                    if message.channel_key != key:
                        continue
                    visitor = self._visitor_of(message)
                    if visitor is None or not self.registry.connected(visitor):
                        continue
                    self.registry.push(visitor, frame({"type": "message", "message": wire_message(
                        message, self.base_url)}), message_id=message.id)
                elif isinstance(event, ChannelSignal):
                    if event.channel_key == key:
                        await self._on_signal(event)
                elif isinstance(event, MessageUpdated) and event.message.channel_key == key:
                    visitor = self._visitor_of(event.message)
                    if visitor is not None and self.registry.connected(visitor):
                        self.registry.push(visitor, frame({"type": "update", "message": wire_message(
                            event.message, self.base_url)}))
            except Exception:
                log.exception("webchat fan-out failed for %s", event.type)

    def asgi_app(self) -> Callable[..., Awaitable[None]]:
        """The widget, the WebSocket endpoint and the HTTP fallback (see ``_server``)."""
        if self._app is None:
            from ._server import build_app

            self._app = build_app(self)
        return self._app

    def body_limit(self, path: str) -> int | None:
        """Uploads: the upload limit (plus room, so the widget gets its own ``size`` error);
        every other route takes a small JSON object."""
        if path.rstrip("/") == "/upload":
            return self.settings.upload_max_bytes + 64 * 1024
        return max(64 * 1024, 8 * self.settings.max_visitor_text)
