"""The hub: configuration, the inbound pipeline, ``send``, events and lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import pluggy

from . import _contacts
from ._adapter import AdapterContext, ChannelAdapter, InboundMessage, ParseResult
from ._blobs import BlobStore, blobs_from_url
from ._bus import EventBus, bus_from_url
from ._config import ChannelConfig, HubSettings, load_config
from ._delivery import Delivery
from ._errors import (
    ConfigurationError,
    NotFoundError,
    OptedOutError,
    PayloadError,
    RetryLaterError,
    StoreDataError,
    UnsupportedFeatureError,
    WindowClosedError,
)
from ._events import (
    ChannelSignal,
    ContactUpdated,
    ConversationOpened,
    Event,
    MessageQueued,
    MessageReceived,
    MessageSent,
    MessageUpdated,
    StatusChanged,
)
from ._feed import Feed
from ._http import make_http_client
from ._ids import new_id
from ._jobs import defer_job
from ._logging import forget_secrets, install_redaction, remember_secrets, secret_values
from ._logging import redact_url as redact_log_url
from ._metrics import HubMetrics
from ._models import (
    Address,
    Author,
    Contact,
    ContactMerge,
    Conversation,
    DeadLetter,
    MergeProposal,
    Message,
    Part,
    StatusUpdate,
    TextPart,
)
from ._plugins import AdapterRegistry, build_plugin_manager
from ._redact import redact_headers, redact_url, storable_text
from ._render import Rendered, render_parts
from ._replay import ReplayReport, replay_dead_letters
from ._service_levels import ServiceLevelReport, compute_service_levels
from ._services import HubServices
from ._store import IngestItem, IngestOutcome, Job, RawPayload, SqlStore, store_from_url
from ._store._feed import contact_events
from ._store._sql import early_receipt_key, status_moves
from ._timeline import ContactTimeline
from ._webhook import WebhookRequest, WebhookResponse

__all__ = ["Hub", "ReplayReport"]

log = logging.getLogger("omnichannel_sdk.hub")


class Hub:
    """Speaks every configured channel: receives webhooks, stores, publishes, sends.

    Build it with :meth:`from_config`, then ``async with hub:`` to open the store, the HTTP pool,
    the event bus and the delivery worker.
    """

    def __init__(
        self,
        settings: HubSettings | None = None,
        channels: Mapping[str, ChannelConfig] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        registry: AdapterRegistry | None = None,
        store: SqlStore | None = None,
        bus: EventBus | None = None,
        blobs: BlobStore | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings or HubSettings()
        if plugin_manager is None or registry is None:
            plugin_manager, registry = build_plugin_manager()
        self.pm = plugin_manager
        self.registry = registry
        self.store: SqlStore = store or store_from_url(self.settings.store)
        self.bus: EventBus = bus or bus_from_url(self.settings.bus)
        self.blobs: BlobStore = blobs or blobs_from_url(self.settings.blob_url())
        self.metrics = HubMetrics()
        """Prometheus metrics of this hub (its own registry; served at ``/metrics``)."""
        self._own_http = http is None
        self.http: httpx.AsyncClient = http  # type: ignore[assignment]  # set in __aenter__
        self.public_url = (self.settings.public_url or "http://127.0.0.1:8000").rstrip("/")
        self.channels = dict(channels or {})
        for key, config in self.channels.items():
            joined = config.settings.thread_with
            if joined is not None and (joined not in self.channels or joined == key):
                raise ConfigurationError(f"{joined!r} is not another configured channel",
                                         channel_key=key, field="thread_with")
        self.adapters: dict[str, ChannelAdapter] = {}
        for key, config in self.channels.items():
            context = AdapterContext(key=key, public_url=self.public_url, http=http,  # type: ignore[arg-type]
                                     kv=self.store, blobs=self.blobs,
                                     services=HubServices(self, key), extras={"hub": self})
            self.adapters[key] = config.adapter(config.settings, context)
        self.delivery = Delivery(self, self.settings.delivery)
        self._feed = Feed(self)
        self._outgoing: asyncio.Queue[Event] | None = None
        self._workers: list[asyncio.Task[Any]] = []
        self._hook_tasks: set[asyncio.Future[Any]] = set()
        self._unobserved: set[str] = set()
        self._secrets: set[str] = set()
        self._media_unfetched: set[str] = set()
        self._open = False
        self._starting = False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        plugins: Sequence[object] = (),
        entry_points: bool = True,
        **kwargs: Any,
    ) -> Hub:
        """A hub from a TOML file or a dict of the same shape.

        ``plugins`` are registered beside the installed ones (found by the ``omnichannel``
        entry point). ``kwargs`` go to :class:`Hub` (``store=``, ``http=``…). Raises one
        :class:`~omnichannel_sdk.ConfigurationError` that names the channel key and field.
        """
        pm, registry = build_plugin_manager(plugins, entry_points=entry_points)
        settings, channels = load_config(source, registry)
        return cls(settings, channels, plugin_manager=pm, registry=registry, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Hub:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open store, HTTP pool, bus, adapters and workers (``async with hub`` calls this)."""
        if self._open:
            return
        install_redaction()  # vendor URLs carry tokens: no log line the hub causes shows one
        self._secrets = set().union(*(secret_values(c.settings) for c in self.channels.values()))
        remember_secrets(self._secrets)
        await self.store.open()
        _log_locations(self.settings, self.blobs)
        if self.http is None:
            self.http = make_http_client(self.settings.http_transport,
                                         timeout=self.settings.http_timeout,
                                         per_host=self.settings.http_max_per_host)
        for adapter in self.adapters.values():
            adapter.context.http = self.http
        await self.bus.open()
        await self._feed.start()
        self._outgoing = asyncio.Queue()
        self._workers = [asyncio.create_task(self._pump_events(), name="omnichannel-events")]
        self._starting = True  # adapters' services are running from their start() on
        try:
            for adapter in self.adapters.values():
                await adapter.start()
            await self.delivery.start()
        finally:
            self._starting = False
        self._open = True
        await self._call_observers(self.pm.hook.omni_hub_started, hub=self)

    async def close(self) -> None:
        """Stop workers, let in-flight sends finish, close everything the hub opened."""
        if not self._open:
            return
        self._open = False
        await self._call_observers(self.pm.hook.omni_hub_stopping, hub=self)
        await self.delivery.stop()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.stop()
        if self._outgoing is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._outgoing.join(), timeout=5)
        for worker in self._workers:
            worker.cancel()
        pending: list[asyncio.Future[Any]] = [*self._workers, *self._hook_tasks]
        for future in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(future, timeout=5)
        await self._feed.stop()
        await self.bus.close()
        if self._own_http and self.http is not None:
            await self.http.aclose()
            self.http = None  # type: ignore[assignment]
        await self.store.close()
        forget_secrets(self._secrets)

    @property
    def is_open(self) -> bool:
        """Whether the hub is open."""
        return self._open

    def asgi(self, *, lifespan: bool = True) -> Any:
        """The webhook gateway as an ASGI app (mount anywhere).

        With ``lifespan`` the app opens and closes the hub on ASGI lifespan events when it is
        not already open (for ``uvicorn`` and ``omnichannel serve``).
        """
        from ._gateway import Gateway

        return Gateway(self, lifespan=lifespan)

    def adapter(self, channel_key: str) -> ChannelAdapter:
        """The adapter configured under ``channel_key``."""
        try:
            return self.adapters[channel_key]
        except KeyError:
            raise NotFoundError(f"no channel {channel_key!r}") from None

    # -- events -------------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        if self._outgoing is not None:
            self._outgoing.put_nowait(event)
            self._feed.observe(event)

    def signal(self, channel_key: str, conversation_id: str, name: str,
               data: Mapping[str, Any] | None = None) -> None:
        """Publish a passing, unstored signal (typing, seen) to every process's subscribers."""
        self._publish(ChannelSignal(channel_key=channel_key, conversation_id=conversation_id,
                                    name=name, data=dict(data or {})))

    async def events(self) -> AsyncIterator[Event]:
        """Every event the hub (and, on a NATS bus, every hub) publishes from now on."""
        async for event in self.bus.subscribe():
            yield event

    def feed(self, name: str) -> AsyncIterator[Event]:
        """The durable feed for consumer ``name``: every event (each with its ``seq``) it has not
        acknowledged, then new ones as they happen, until the hub closes.

        At least once per name, in order per conversation; processes reading one name share
        the events, different names each get all of them. Acknowledge with :meth:`ack`.
        """
        return self._feed.read(name)

    async def ack(self, name: str, seq: int) -> None:
        """Acknowledge event ``seq`` of consumer ``name`` and every earlier one this hub gave it;
        a consumer that comes back resumes after what it acknowledged."""
        await self._feed.ack(name, seq)

    async def _pump_events(self) -> None:
        assert self._outgoing is not None
        while True:
            event = await self._outgoing.get()
            try:
                self._dispatch_hooks(event)
                await self.bus.publish(event)
            except Exception:
                log.exception("publishing %s failed", event.type)
            finally:
                self._outgoing.task_done()

    def _dispatch_hooks(self, event: Event) -> None:
        hook = self.pm.hook
        if event.type in self._unobserved:
            return
        if isinstance(event, MessageReceived):
            caller, kwargs = hook.omni_inbound_received, {
                "hub": self, "message": event.message, "conversation": event.conversation}
        elif isinstance(event, ConversationOpened):
            caller, kwargs = hook.omni_conversation_opened, {
                "hub": self, "conversation": event.conversation}
        elif isinstance(event, MessageSent):
            caller, kwargs = hook.omni_outbound_sent, {"hub": self, "message": event.message}
        elif isinstance(event, StatusChanged):
            caller, kwargs = hook.omni_status_changed, {
                "hub": self, "message": event.message, "previous": event.previous}
        elif isinstance(event, MessageUpdated):
            caller, kwargs = hook.omni_message_updated, {"hub": self, "message": event.message}
        else:
            return
        if not caller.get_hookimpls():
            self._unobserved.add(event.type)  # no plugin watches this: skip it from now on
            return
        try:
            results = caller(**kwargs)  # synchronous observers run here, in order
        except Exception:
            log.exception("hook %s failed", caller.name)
            return
        for result in results:
            if inspect.isawaitable(result):  # async observers run beside the pump
                task = asyncio.ensure_future(self._await_observer(caller.name, result))
                self._hook_tasks.add(task)
                task.add_done_callback(self._hook_tasks.discard)

    async def _await_observer(self, name: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("hook %s failed", name)

    async def _call_observers(self, caller: Any, **kwargs: Any) -> None:
        try:
            results = caller(**kwargs)
        except Exception:
            log.exception("hook %s failed", caller.name)
            return
        for result in results:
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:
                    log.exception("hook %s failed", caller.name)

    # -- inbound ------------------------------------------------------------------------------

    def request_url(self, channel_key: str, query_string: str = "") -> str:
        """The URL a vendor signs for ``channel_key``: ``public_url/webhooks/{key}[?query]``."""
        url = f"{self.public_url}/webhooks/{channel_key}"
        return f"{url}?{query_string}" if query_string else url

    async def handle_webhook(
        self, channel_key: str, request: WebhookRequest, *, trusted: bool = False
    ) -> WebhookResponse:
        """Run the inbound pipeline on one request and return the vendor's answer.

        verify → persist raw → parse → de-duplicate → thread → store → publish → answer.
        Raises :class:`NotFoundError` (404) and :class:`SignatureError` (403); a verified
        request that cannot be parsed is dead-lettered and answered as the vendor expects.
        ``trusted`` skips verification, for payloads an adapter received over its own
        authenticated transport (an SMTP listener, an IMAP mailbox).
        """
        adapter = self.adapter(channel_key)
        if request.method in ("GET", "HEAD"):
            response = adapter.handshake(request)
            if response is not None:
                return response
            if not adapter.inbound_get or request.method == "HEAD":
                return WebhookResponse(405, b"method not allowed")
        if not trusted:
            adapter.verify(request)
            await adapter.check_replay(request)
        raw = RawPayload(id=new_id("raw"), channel_key=channel_key,
                         received_at=datetime.now(UTC), method=request.method,
                         url=redact_url(request.url, adapter.secret_query),
                         headers=self._storable_headers(adapter, request.headers),
                         body=adapter.storable_body(request))
        # nothing verified is ever lost: from here on every failure but "try again later"
        # (a certificate being fetched, the store unreachable) ends in a dead letter with the
        # raw request, and the vendor is answered so it stops retrying
        try:
            result = await adapter.complete(request, await adapter.parse_request(request))
            stored = await self._store_result(adapter, result, raw, raw.received_at)
        except RetryLaterError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept as a dead letter, never a 500
            error = exc.detail if isinstance(exc, PayloadError) else f"{type(exc).__name__}: {exc}"
            await self._keep_dead_letter(adapter, raw, error)
            self.metrics.record_dead_letter(channel_key, "inbound")
            return adapter.acknowledge(request, None)
        if adapter.capabilities.passive_reply and stored:
            try:
                passive = await self._passive_reply(adapter, request, stored)
            except RetryLaterError:
                raise
            except Exception:  # the inbound message is stored: answer as usual
                log.exception("passive reply on %s failed", channel_key)
                passive = None
            if passive is not None:
                return passive
        return result.response or adapter.acknowledge(request, result)

    async def _keep_dead_letter(self, adapter: ChannelAdapter, raw: RawPayload, error: str) -> None:
        """Dead-letter a verified request with its raw payload (the raw row may already be
        stored: the store keeps the first copy)."""
        error = storable_text(error)
        letter = DeadLetter(id=new_id("dl"), channel_key=raw.channel_key, adapter=adapter.name,
                            error=error, created_at=raw.received_at, raw_id=raw.id)
        try:
            await self.store.add_dead_letter(letter, raw)
        except StoreDataError:
            # the request line itself holds what the store refuses (U+0000 in the URL or a
            # header): keep it escaped; the body, stored as bytes, stays exact
            raw = dataclasses.replace(
                raw, url=storable_text(raw.url),
                headers={storable_text(k): storable_text(v) for k, v in raw.headers.items()})
            await self.store.add_dead_letter(letter, raw)
        log.warning("dead-lettered a %s payload on %s: %s", adapter.name, raw.channel_key, error)

    async def _passive_reply(
        self, adapter: ChannelAdapter, request: WebhookRequest, stored: list[Message]
    ) -> WebhookResponse | None:
        inbound = next((m for m in stored if m.direction == "inbound"), None)
        if inbound is None or not self.pm.hook.omni_inbound_passive_reply.get_hookimpls():
            return None
        conversation = await self.store.get_conversation(inbound.conversation_id)
        if conversation is None:
            return None
        try:
            parts = self.pm.hook.omni_inbound_passive_reply(
                hub=self, adapter=adapter, message=inbound, conversation=conversation)
        except Exception:
            log.exception("passive reply hook failed")
            return None
        if not parts:
            return None
        rendered = self._render(adapter, parts)
        now = datetime.now(UTC)
        reply = Message(
            id=new_id("msg"), channel=adapter.channel, channel_key=adapter.context.key,
            adapter=adapter.name, direction="outbound", conversation_id=conversation.id,
            sender=inbound.recipients[0] if inbound.recipients else inbound.sender,
            recipients=[inbound.sender], parts=list(parts), reply_to=inbound.id,
            created_at=now, received_at=now, status="sent", author=Author(kind="bot"),
            metadata={"passive_reply": True, **rendered.metadata})
        response = adapter.passive_response(request, inbound, reply, rendered.parts)
        if response is None:
            return None
        await self.store.add_message(reply)
        self._publish(MessageSent(message=reply))
        return response

    async def _store_result(
        self, adapter: ChannelAdapter, result: ParseResult, raw: RawPayload | None,
        received_at: datetime,
    ) -> list[Message]:
        key = adapter.context.key
        items: list[IngestItem] = []
        statuses: list[StatusUpdate] = []
        for entry in result.items:
            if isinstance(entry, InboundMessage):
                items.append(self._ingest_item(adapter, entry, received_at,
                                               raw.id if raw else None))
            else:
                statuses.append(entry)
        if items or raw is not None:
            try:
                outcomes = await self.store.ingest(items, raw)
            except StoreDataError:
                if len(items) < 2:
                    raise
                # one item the store cannot hold must not take the others of the request down
                outcomes = await self._ingest_each(adapter, items, raw, received_at)
        else:
            outcomes = []
        for failure in result.failures:
            letter = DeadLetter(id=new_id("dl"), channel_key=key, adapter=adapter.name,
                                error=failure.error, created_at=received_at,
                                raw_id=raw.id if raw else None)
            await self.store.add_dead_letter(letter, None, failure.fragment)
            self.metrics.record_dead_letter(key, "inbound")
        self.metrics.record_duplicates(key, sum(o.duplicate for o in outcomes))
        for follow_up in result.jobs:  # stored before the vendor is answered: durable
            await defer_job(self, key, follow_up.task, follow_up.data, delay=follow_up.delay,
                            raw_id=raw.id if raw else None)
        stored = self._announce(outcomes)
        for update in statuses:
            await self._apply_status(key, update)
        return stored

    async def _ingest_each(
        self, adapter: ChannelAdapter, items: list[IngestItem], raw: RawPayload | None,
        received_at: datetime,
    ) -> list[IngestOutcome]:
        """Store a batch item by item; an item the store refuses becomes a dead letter of its
        own (pointing at the raw request, which replay parses again)."""
        if raw is not None:
            await self.store.save_raw(raw)
        outcomes: list[IngestOutcome] = []
        for item in items:
            try:
                outcomes.extend(await self.store.ingest([item], None))
            except StoreDataError as exc:
                letter = DeadLetter(id=new_id("dl"), channel_key=adapter.context.key,
                                    adapter=adapter.name, error=storable_text(str(exc)),
                                    created_at=received_at, raw_id=raw.id if raw else None)
                await self.store.add_dead_letter(letter)
                log.warning("dead-lettered one %s item on %s: %s", adapter.name,
                            adapter.context.key, letter.error)
        return outcomes

    @staticmethod
    def _storable_headers(adapter: ChannelAdapter, headers: Mapping[str, str]) -> dict[str, str]:
        # signatures stay (replay needs none, audits want them); credentials and bearer-like
        # secrets the adapter declares never reach the disk
        return redact_headers(headers, adapter.secret_headers)

    def _ingest_item(self, adapter: ChannelAdapter, draft: InboundMessage,
                     received_at: datetime, raw_id: str | None) -> IngestItem:
        customer = draft.sender if draft.direction == "inbound" else (
            draft.recipients[0] if draft.recipients else draft.sender)
        addresses = [customer, *draft.contact_hints]
        for extra in self.pm.hook.omni_contact_identify(adapter=adapter, message=draft):
            if extra:
                addresses.extend(extra)
        thread_key = (self.pm.hook.omni_inbound_thread_key(adapter=adapter, message=draft)
                      or adapter.thread_key(draft))
        caps = adapter.capabilities
        joined = adapter.settings.thread_with
        thread_channel = (self.adapters[joined].channel, joined) if joined in self.adapters else None
        return IngestItem(
            message_id=new_id("msg"), channel=adapter.channel, channel_key=adapter.context.key,
            adapter=adapter.name, draft=draft, thread_key=thread_key,
            contact_addresses=addresses, received_at=received_at, window=caps.session_window,
            raw_id=raw_id, fetch_media=self._fetches_media(adapter, draft),
            thread_channel=thread_channel)

    def _fetches_media(self, adapter: ChannelAdapter, draft: InboundMessage) -> bool:
        """Whether media of ``draft`` are downloaded: the adapter declares hosts (in its
        capabilities, its ``media_hosts`` setting or its ``api_base``). Says once per channel
        when media arrive that will not be fetched, so a mapping without hosts is visible."""
        declared = bool(adapter.capabilities.media_hosts
                        or getattr(adapter.settings, "media_hosts", None)
                        or adapter.settings.api_base)
        key = adapter.context.key
        if not declared and key not in self._media_unfetched and any(
                p.type == "media" for p in draft.parts):
            self._media_unfetched.add(key)
            log.warning("media of channel %s are not downloaded: it declares no media host "
                        "(set media_hosts)", key)
        return declared

    async def _apply_status(self, channel_key: str, update: StatusUpdate) -> None:
        outcomes = await self.store.apply_status(channel_key, update)
        if not outcomes and update.external_id:
            # the receipt may be quicker than the vendor's answer to our send: keep the most
            # advanced one a while (a "delivered" arriving after a "read" must not replace it)
            key = early_receipt_key(channel_key, update.external_id)
            waiting = await self.store.kv_get(key)
            if waiting is not None:
                kept = StatusUpdate.model_validate_json(waiting)
                if not status_moves(kept.status, update.status):
                    return
            await self.store.kv_set(key, update.model_dump_json(), ttl=3600)
        for outcome in outcomes:
            self._publish(StatusChanged(message=outcome.message, previous=outcome.previous))

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Change a contact atomically (by id, or by one of its addresses) and publish
        ``contact.updated`` with ``change=reason`` when it changed.

        ``change`` receives the contact as stored and returns the new version (or ``None`` to
        leave it); it runs inside the store's transaction, so it must be quick and do no I/O.
        Found by address inside the transaction, it is right even if contacts were just merged.
        """
        before: list[Contact] = []

        def tracked(current: Contact) -> Contact | None:
            before.append(current)
            return change(current)

        result = await self.store.modify_contact(contact, tracked)
        if result is not None and before and result != before[-1]:
            self._publish(ContactUpdated(contact=result, change=reason))
        return result

    async def dead_letter(self, channel_key: str, request: WebhookRequest, error: str) -> DeadLetter:
        """Keep a verified request that could not be completed (for adapters whose background
        work on a request failed): stored with its raw payload, replayable, never lost."""
        adapter = self.adapter(channel_key)
        now = datetime.now(UTC)
        raw = RawPayload(id=new_id("raw"), channel_key=channel_key, received_at=now,
                         method=request.method, url=redact_url(request.url, adapter.secret_query),
                         headers=self._storable_headers(adapter, request.headers),
                         body=adapter.storable_body(request))
        letter = DeadLetter(id=new_id("dl"), channel_key=channel_key, adapter=adapter.name,
                            error=storable_text(error), created_at=now, raw_id=raw.id)
        await self.store.add_dead_letter(letter, raw)
        self.metrics.record_dead_letter(channel_key, "inbound")
        log.warning("dead-lettered a %s request on %s: %s", adapter.name, channel_key, error)
        return letter

    # -- contacts: merges and the whole story (logic in _contacts.py) -------------------------

    async def merge_proposals(
        self, status: Literal["open", "confirmed", "rejected"] | None = "open",
    ) -> list[MergeProposal]:
        """Merge proposals with ``status`` (``None``: all), oldest first: contacts that may be
        one person, by an address one of them only claimed (a web chat pre-chat email) or by
        verified addresses naming the same person on two channels (one phone number on SMS and
        WhatsApp). Open ones whose contacts merged otherwise are left out."""
        return await _contacts.merge_proposals(self, status)

    async def confirm_merge(self, proposal_id: str, *, by: str | None = None) -> Contact:
        """Confirm an open :class:`~omnichannel_sdk.MergeProposal`: its two contacts become
        one (the older id stays), recorded so :meth:`unmerge` can undo it; publishes
        ``contact.merged`` and ``contact.updated`` (``change="merged"``). ``by`` names who
        decided. Unproven addresses are never merged without this. :class:`NotFoundError`
        for an unknown proposal, :class:`MergeConflictError` for a decided one."""
        return await _contacts.confirm_merge(self, proposal_id, by=by)

    async def reject_merge(self, proposal_id: str, *, by: str | None = None) -> None:
        """Reject an open merge proposal: nothing merges, and the pair is not proposed again.
        :class:`NotFoundError` / :class:`MergeConflictError` as for :meth:`confirm_merge`."""
        await _contacts.reject_merge(self, proposal_id, by=by)

    async def merge_contacts(self, contact_id: str, other_id: str, *,
                             by: str | None = None) -> Contact:
        """Merge two contacts the helpdesk knows are one person (no proposal needed); the
        older id stays. Recorded and reversible like a confirmed proposal."""
        return await _contacts.merge_contacts(self, contact_id, other_id, by=by)

    async def merges(self, contact_id: str) -> list[ContactMerge]:
        """The merge records naming ``contact_id`` (kept or absorbed), oldest first, undone
        ones included: who merged whom, when, by whom, which addresses and conversations moved."""
        return await _contacts.merges(self, contact_id)

    async def unmerge(self, merge_id: str, *, by: str | None = None) -> tuple[Contact, Contact]:
        """Undo a merge: returns ``(kept, restored)``. The absorbed contact comes back with its
        id, addresses, profile and conversations as before the merge; conversations begun since
        from one of its addresses go with it; the kept contact keeps only what was its own and
        what changed after the merge. Publishes ``contact.unmerged``. :class:`NotFoundError`
        for an unknown merge, :class:`MergeConflictError` when already undone or when the kept
        contact was merged into another since (undo that merge first)."""
        return await _contacts.unmerge(self, merge_id, by=by)

    async def contact_timeline(self, contact_id: str, *, limit: int = 50,
                               before: str | None = None) -> ContactTimeline:
        """The customer's whole story: the contact, every address, the profile, its
        conversations, and the messages of all of them on every channel merged by
        ``created_at`` (oldest first), each naming its conversation and channel. A page holds
        the newest ``limit`` (at most 500) messages; pass ``next_before`` as ``before`` for
        older ones. :class:`NotFoundError` for an unknown contact."""
        return await _contacts.contact_timeline(self, contact_id, limit=limit, before=before)

    async def update_message(self, message: Message) -> None:
        """Store a changed message (same id) and publish ``message.updated`` — for plugins
        that enrich messages later. Prefer :meth:`modify_message` when others may change the
        same message concurrently."""
        await self.store.update_message(message)
        self._publish(MessageUpdated(message=message))

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Change a stored message atomically and publish ``message.updated`` if it changed.

        ``change`` receives the message as stored and returns the new version (or ``None`` to
        leave it); it runs inside the store's transaction, so it must be quick and do no I/O.
        Two plugins adding a transcript and a downloaded file never overwrite each other.
        """
        before: list[Message] = []

        def tracked(current: Message) -> Message | None:
            before.append(current)
            return change(current)

        result = await self.store.modify_message(message_id, tracked)
        if result is not None and before and result != before[-1]:
            self._publish(MessageUpdated(message=result))
        return result

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run background work the hub tracks: errors are logged, and closing the hub waits
        for it (up to a few seconds) — for adapters whose parsing needs network or store I/O."""
        task = asyncio.create_task(self._guarded(coroutine), name=name)
        self._hook_tasks.add(task)
        task.add_done_callback(self._hook_tasks.discard)
        return task

    async def _guarded(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background work failed")
            return None

    async def apply_status(self, channel_key: str, update: StatusUpdate) -> None:
        """Apply a receipt that arrived outside a webhook (forward-only)."""
        await self._apply_status(channel_key, update)

    async def ingest(self, channel_key: str, messages: Sequence[InboundMessage]) -> list[Message]:
        """Store messages an adapter received by other means than a webhook (SMTP, IMAP,
        WebSocket), through the same de-duplication, threading and events."""
        adapter = self.adapter(channel_key)
        now = datetime.now(UTC)
        items = [self._ingest_item(adapter, m, now, None) for m in messages]
        outcomes = await self.store.ingest(items, None)
        self.metrics.record_duplicates(channel_key, sum(o.duplicate for o in outcomes))
        return self._announce(outcomes)

    def _announce(self, outcomes: Sequence[IngestOutcome]) -> list[Message]:
        """Publish what storing inbound messages did; return the new messages."""
        stored = []
        for outcome in outcomes:
            if outcome.duplicate or outcome.message is None or outcome.conversation is None:
                continue
            stored.append(outcome.message)
            if outcome.conversation_created:
                self._publish(ConversationOpened(conversation=outcome.conversation))
            if outcome.message.direction == "inbound":
                self._publish(MessageReceived(message=outcome.message,
                                              conversation=outcome.conversation))
            else:
                self._publish(MessageSent(message=outcome.message))
            if outcome.opt_change and outcome.contact is not None:
                self._publish(ContactUpdated(contact=outcome.contact, change=outcome.opt_change))
            if outcome.merged and outcome.contact is not None:
                self._publish(ContactUpdated(contact=outcome.contact, change="merged",
                                             merged=outcome.merged))
            for event in contact_events(outcome):
                self._publish(event)
        if any(p.type == "media" for m in stored for p in m.parts):
            self.delivery.poke()
        return stored

    # -- outbound -----------------------------------------------------------------------------

    async def start_conversation(
        self, channel_key: str, to: Address | str, *, subject: str | None = None
    ) -> Conversation:
        """The open conversation with ``to`` on ``channel_key``, created if needed (for
        messages we start, like a proactive SMS)."""
        adapter = self.adapter(channel_key)
        customer = to if isinstance(to, Address) else adapter.customer_address(to)
        own = adapter.own_address()
        participants = [customer, *([own] if own else [])]
        conversation, created = await self.store.open_conversation(
            adapter.channel, channel_key, adapter.thread_key_for(customer), [customer],
            participants, subject)
        if created:
            self._publish(ConversationOpened(conversation=conversation))
        return conversation

    async def send(
        self,
        conversation_id: str,
        text: str | None = None,
        *,
        parts: Sequence[Part] | None = None,
        author: Author | None = None,
        reply_to: str | None = None,
        subject: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        wait: bool = False,
    ) -> Message:
        """Queue a reply in a conversation and return the stored outbound message.

        Renders ``text`` / ``parts`` to the channel, refuses (typed errors, nothing stored)
        when the contact opted out or the reply window is closed without an allowed fallback,
        then hands the message to the durable outbox. ``wait=True`` returns only once the
        vendor accepted it or it failed for good (``status`` says which). A repeated
        ``idempotency_key`` returns the message queued the first time.
        """
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFoundError(f"no conversation {conversation_id!r}")
        adapter = self.adapter(conversation.channel_key)
        all_parts: list[Part] = [TextPart(text=text)] if text else []
        all_parts.extend(parts or [])
        if not all_parts:
            raise UnsupportedFeatureError("nothing to send: give text or parts")
        if idempotency_key:
            existing = await self.store.kv_get(f"idem:{idempotency_key}")
            if existing:
                found = await self.store.get_message(existing)
                if found is not None:
                    return found
        contact = await self.store.get_contact(conversation.contact_id)
        if contact is not None and adapter.channel in contact.opted_out:
            raise OptedOutError(f"contact {contact.id} opted out of {adapter.channel}")
        extra: dict[str, Any] = {}
        window = adapter.capabilities.session_window
        now = datetime.now(UTC)
        if window is not None and (conversation.window_expires_at is None
                                   or conversation.window_expires_at <= now):
            allowed = adapter.outside_window(all_parts, author, conversation,
                                             metadata=dict(metadata or {}))
            if allowed is None:
                raise WindowClosedError(
                    f"the {adapter.channel} reply window of conversation {conversation.id} "
                    f"closed at {conversation.window_expires_at} and no fallback is allowed",
                    expired_at=conversation.window_expires_at)
            extra.update(allowed)
        rendered = self._render(adapter, all_parts)
        handles = {(a.channel, a.handle) for a in (contact.addresses if contact else [])}
        recipients = [a for a in conversation.participants if (a.channel, a.handle) in handles] \
            or conversation.participants[:1]
        own = adapter.own_address()
        sender = own or next((a for a in conversation.participants
                              if (a.channel, a.handle) not in handles),
                             Address(channel=adapter.channel, handle=conversation.channel_key))
        message = Message(
            id=new_id("msg"), channel=adapter.channel, channel_key=conversation.channel_key,
            adapter=adapter.name, direction="outbound", conversation_id=conversation.id,
            sender=sender, recipients=recipients, parts=all_parts,
            subject=subject if subject is not None else conversation.subject,
            reply_to=reply_to, created_at=now, received_at=now, status="queued", author=author,
            metadata={**dict(metadata or {}), **rendered.metadata, **extra})
        if idempotency_key and not await self.store.kv_add(
                f"idem:{idempotency_key}", message.id, ttl=7 * 86400):
            existing = await self.store.kv_get(f"idem:{idempotency_key}")
            found = await self.store.get_message(existing or "")
            if found is not None:
                return found
        job = Job(id=new_id("job"), kind="send", channel_key=conversation.channel_key,
                  message_id=message.id, payload={
                      "parts": [p.model_dump(mode="json") for p in rendered.parts],
                      "contact_id": conversation.contact_id})
        await self.store.create_outbound(message, job, lease=self.settings.delivery.lease)
        self._publish(MessageQueued(message=message))
        waiter = self.delivery.wait_for(message.id) if wait else None
        self.delivery.submit(job, message)
        if waiter is not None:
            return await waiter
        return message

    def _render(self, adapter: ChannelAdapter, parts: Sequence[Part]) -> Rendered:
        custom = self.pm.hook.omni_outbound_render(
            adapter=adapter, parts=list(parts), capabilities=adapter.capabilities)
        if isinstance(custom, Rendered):
            return custom
        if custom is not None:
            # keep what the default renderer records about the same input (the numbered
            # actions), so a customer's "2" still maps back to the action
            try:
                metadata = render_parts(parts, adapter.capabilities, adapter=adapter.name).metadata
            except UnsupportedFeatureError:  # the custom renderer carried what ours cannot
                metadata = {}
            return Rendered(list(custom), metadata)
        return render_parts(parts, adapter.capabilities, adapter=adapter.name)

    async def close_conversation(self, conversation_id: str) -> Conversation:
        """Close a conversation; the customer's next message opens a new one."""
        return await self.store.set_conversation_status(conversation_id, "closed")

    # -- dead letters -------------------------------------------------------------------------

    async def service_levels(
        self, *, since: datetime | None = None, until: datetime | None = None,
        targets: Mapping[str, float] | None = None, goal: float = 0.8,
        channel_key: str | None = None,
    ) -> ServiceLevelReport:
        """First-response and response times per conversation and channel, the share answered
        within target (default 80% within 40 s on chat channels, 4 h on email; bot replies
        counted apart) and open conversations per agent, computed from the store. ``targets``
        maps a channel kind to seconds."""
        return await compute_service_levels(self.store, since=since, until=until, targets=targets,
                                            goal=goal, channel_key=channel_key)

    async def replay(
        self, letter_ids: Sequence[str] | None = None,
        progress: Callable[[DeadLetter, bool], None] | None = None,
    ) -> ReplayReport:
        """Process dead letters again (all not yet replayed, or ``letter_ids``).

        Inbound payloads are parsed again from the stored raw request (their items that were
        stored the first time are de-duplicated); outbound sends are queued again. A letter
        that fails again stays in the dead-letter store.
        """
        return await replay_dead_letters(self, letter_ids, progress)


def _log_locations(settings: HubSettings, blobs: BlobStore) -> None:
    """Say at start-up where customer data lands (the database and the media)."""
    from ._blobs import FileBlobStore

    store = settings.store
    if store.startswith("sqlite:///"):
        path = store[len("sqlite:///"):] or ":memory:"
        where = path if path == ":memory:" else str(Path(path).resolve())
    else:
        where = redact_log_url(store)  # the DSN may carry a password
    media = str(blobs.root.resolve()) if isinstance(blobs, FileBlobStore) else type(blobs).__name__
    log.info("store: %s; media: %s", where, media)


_SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization",
                             "x-telegram-bot-api-secret-token"})  # Telegram's is a shared secret


def _storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # signatures stay (replay needs none, audits want them); credentials never hit the disk
    return {k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in headers.items()}
