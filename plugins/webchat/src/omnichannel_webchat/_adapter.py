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
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from omnichannel_sdk import (
    AdapterContext,
    AdapterServices,
    Address,
    Capabilities,
    ChannelAdapter,
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
from ._wire import wire_message

__all__ = ["SESSION_HEADER", "SIGNAL_TTL", "WebchatAdapter", "wire_message"]

log = logging.getLogger("omnichannel_webchat")

SESSION_HEADER = "x-webchat-session"
"""The header that carries the visitor's session token on HTTP requests."""

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

SIGNAL_TTL = 5.0
"""Seconds a typing / seen signal is kept for visitors on the long-poll fallback."""
_SIGNALS = {"typing": "typing", "typing_stopped": "typing", "seen": "seen"}
_CUSTOMER = ("visitor", "customer")
_TYPING_REPEAT = 2.0  # seconds: a visitor's repeated typing signal is published at most this often

class WebchatAdapter(ChannelAdapter[WebchatSettings]):
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
    def services(self) -> AdapterServices:
        """The hub's services for this channel (``running`` is ``False`` outside a hub)."""
        return self.context.services

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

    # -- live signals (typing, seen) ---------------------------------------------------------------
    #
    # Every signal is published once with ``hub.signal`` (a ``channel.signal`` event, delivered to
    # every process by the bus) and delivered at once in this process; ``data["origin"]`` names
    # this adapter instance, so the listener skips the echo of its own signals.

    async def signals(self) -> AsyncIterator[dict[str, Any]]:
        """Visitor signals from every process, for an agent UI that does not read
        ``hub.events()``: ``{"type": "typing", "channel_key", "conversation_id", "visitor",
        "on"}`` and ``{"type": "seen", ..., "up_to"}`` (the last message the visitor read)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1000)
        self._signal_queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._signal_queues.discard(queue)

    def _publish_signal(self, conversation_id: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
        data = {**data, "origin": self.origin_id, "t": time.time()}
        if self.services.running:
            self.services.signal(conversation_id, name, data)
        return data

    def _to_inbox(self, conversation_id: str, name: str, data: dict[str, Any]) -> None:
        item: dict[str, Any] = {"type": name, "channel_key": self.context.key,
                                "conversation_id": conversation_id, "visitor": data.get("visitor")}
        if name == "typing":
            item["on"] = bool(data.get("on"))
        else:
            item["up_to"] = data.get("up_to") if isinstance(data.get("up_to"), str) else None
        for queue in self._signal_queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

    def _to_visitor(self, conversation_id: str, visitor: str | None, name: str,
                    data: dict[str, Any]) -> int:
        """Push an agent signal to the visitor's connections here, and keep it for long-polls."""
        out: dict[str, Any] = {"type": name, "t": data["t"]}
        if name == "typing":
            who = data.get("name") or data.get("agent")
            out["on"] = bool(data.get("on"))
            out["name"] = who[:80] if isinstance(who, str) else None
        else:
            out["up_to"] = data.get("up_to") if isinstance(data.get("up_to"), str) else None
        self.signal_buffer.add(conversation_id, data["t"], out)
        if visitor is None:
            return 0
        return self.registry.push(visitor, frame(out))

    async def _on_signal(self, event: ChannelSignal) -> None:
        """A ``channel.signal`` event of this channel (from any process)."""
        data = event.data
        name = _SIGNALS.get(event.name)
        if name is None or data.get("origin") == self.origin_id:
            return
        t = data.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            t = event.at.timestamp()
        data = {**data, "t": float(t)}
        if event.name == "typing_stopped":
            data["on"] = False
        if data.get("from") in _CUSTOMER:
            self._to_inbox(event.conversation_id, name, data)
            return
        visitor = data.get("visitor")
        if not isinstance(visitor, str) or "origin" not in data:  # named by a webchat adapter only
            visitor = await self._visitor_of_conversation(event.conversation_id)
        self._to_visitor(event.conversation_id, visitor, name, data)

    async def visitor_typing(self, session: Session, on: bool) -> None:
        """Tell agent inboxes (in every process) that the visitor is (not) typing."""
        conversation_id = await self.conversation_of(session.visitor)
        if conversation_id is None:
            return  # nothing written yet: no conversation for an inbox to show
        now = time.monotonic()
        last = self._typing.pop(session.visitor, None)
        self._typing[session.visitor] = (bool(on), now)
        if len(self._typing) > 100_000:
            self._typing.popitem(last=False)
        if last is not None and last[0] == bool(on) and now - last[1] < _TYPING_REPEAT:
            self._typing[session.visitor] = last  # a repeat: not worth a bus message
            return
        data = self._publish_signal(conversation_id, "typing", {
            "from": "visitor", "visitor": session.visitor, "on": bool(on)})
        self._to_inbox(conversation_id, "typing", data)

    def visitor_seen(self, session: Session, conversation_id: str, up_to: str) -> None:
        """Tell agent inboxes that the visitor read the agent's messages up to ``up_to``."""
        data = self._publish_signal(conversation_id, "seen", {
            "from": "visitor", "visitor": session.visitor, "up_to": up_to})
        self._to_inbox(conversation_id, "seen", data)

    async def _visitor_of_conversation(self, conversation_id: str) -> str | None:
        cached = self._visitors.get(conversation_id)
        if cached is not None:
            return cached
        if not self.services.running:
            return None
        conversation = await self.services.store.get_conversation(conversation_id)
        if conversation is None or conversation.channel_key != self.context.key:
            return None
        for address in conversation.participants:
            if address.channel == self.channel and address.handle != self.context.key:
                self._note(address.handle, conversation_id)
                return address.handle
        return None

    def _note(self, visitor: str, conversation_id: str) -> None:
        """Remember which visitor a conversation belongs to (bounded)."""
        self._visitors[conversation_id] = visitor
        self._visitors.move_to_end(conversation_id)
        if len(self._visitors) > 100_000:
            self._visitors.popitem(last=False)

    async def agent_typing(self, conversation_id: str, on: bool, name: str | None = None) -> int:
        """Show (or hide) "agent is typing" to the visitor of a conversation, in every process.

        Returns how many of the visitor's connections in this process got it at once (the
        other processes deliver it from the ``channel.signal`` event)."""
        visitor = await self._visitor_of_conversation(conversation_id)
        if visitor is None:
            return 0
        data = self._publish_signal(conversation_id, "typing", {
            "from": "agent", "visitor": visitor, "on": bool(on), "name": name})
        return self._to_visitor(conversation_id, visitor, "typing", data)

    async def agent_seen(self, conversation_id: str, up_to: str | None = None) -> int:
        """Tell the visitor the agent has read their messages (up to message id ``up_to``), in
        every process; returns how many connections in this process got it at once."""
        visitor = await self._visitor_of_conversation(conversation_id)
        if visitor is None:
            return 0
        data = self._publish_signal(conversation_id, "seen", {
            "from": "agent", "visitor": visitor, "up_to": up_to})
        return self._to_visitor(conversation_id, visitor, "seen", data)

    def signals_since(self, conversation_id: str, cursor: float | None) -> list[dict[str, Any]]:
        """Signal frames for the visitor of a conversation published after ``cursor`` (the
        ``t`` of the newest one a long-poll has seen), from the last :data:`SIGNAL_TTL` seconds."""
        return self.signal_buffer.since(conversation_id, cursor)

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
