"""The inbound pipeline: webhooks and messages received otherwise, dead letters, passive replies.

verify → persist raw → parse → de-duplicate → thread → store → publish → answer. Nothing
verified is lost: what cannot be completed becomes a dead letter with its raw request.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pluggy

from ._adapter import ChannelAdapter, InboundMessage, ParseResult
from ._channels import ChannelRegistry
from ._delivery import Delivery
from ._errors import PayloadError, RetryLaterError, StoreDataError
from ._events import (
    ContactUpdated,
    MessageSent,
    StatusChanged,
    conversation_opened,
    message_received,
)
from ._ids import new_id
from ._jobs import defer_job
from ._metrics import HubMetrics
from ._models import Author, DeadLetter, Message, StatusUpdate
from ._outbound import render
from ._plugins import implemented
from ._publisher import Publisher
from ._redact import redact_lowered_headers, redact_url, storable_text
from ._store import IngestItem, IngestOutcome, RawPayload, SqlStore
from ._store._feed import contact_events
from ._store._sql import early_receipt_key, status_moves
from ._webhook import WebhookRequest, WebhookResponse

__all__ = ["Inbound"]

log = logging.getLogger("omnichannel_sdk.hub")


class Inbound:
    """Receives for every channel: ``handle_webhook``, ``ingest``, ``apply_status``,
    ``dead_letter``. ``hub`` is what the passive-reply hook receives as its ``hub``."""

    def __init__(self, store: SqlStore, channels: ChannelRegistry, pm: pluggy.PluginManager,
                 publisher: Publisher, delivery: Delivery, metrics: HubMetrics,
                 hub: object) -> None:
        self.store = store
        self.channels = channels
        self.pm = pm
        self.publisher = publisher
        self.delivery = delivery
        self.metrics = metrics
        self.hub = hub
        self._media_unfetched: set[str] = set()

    async def handle_webhook(
        self, channel_key: str, request: WebhookRequest, *, trusted: bool = False
    ) -> WebhookResponse:
        """Run the pipeline on one request; see :meth:`omnichannel_sdk.Hub.handle_webhook`."""
        adapter = self.channels.adapter(channel_key)
        if request.method in ("GET", "HEAD"):
            response = adapter.handshake(request)
            if response is not None:
                return response
            if not adapter.inbound_get or request.method == "HEAD":
                return WebhookResponse(405, b"method not allowed")
        steps = _steps(adapter)
        if not trusted:
            adapter.verify(request)
            if steps.check_replay:  # the base class's check finds nothing: no coroutine for it
                await adapter.check_replay(request)
        raw = RawPayload(id=new_id("raw"), channel_key=channel_key,
                         received_at=datetime.now(UTC), method=request.method,
                         url=redact_url(request.url, adapter.secret_query),
                         headers=_storable_headers(adapter, request.headers),
                         body=adapter.storable_body(request))
        # nothing verified is ever lost: from here on every failure but "try again later"
        # (a certificate being fetched, the store unreachable) ends in a dead letter with the
        # raw request, and the vendor is answered so it stops retrying
        try:
            limit = adapter.parse_in_thread_above
            # the base class's parse_request calls parse on the loop for a small body, and its
            # complete returns the result as it is: the same without two coroutines
            result = (adapter.parse(request)
                      if not steps.parse_request and (limit is None or len(request.body) <= limit)
                      else await adapter.parse_request(request))
            if steps.complete:
                result = await adapter.complete(request, result)
            stored = await self.store_result(adapter, result, raw, raw.received_at)
        except RetryLaterError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept as a dead letter, never a 500
            error = exc.detail if isinstance(exc, PayloadError) else f"{type(exc).__name__}: {exc}"
            await self._keep_dead_letter(adapter, raw, error)
            self.metrics.record_dead_letter(channel_key, "inbound")
            return adapter.acknowledge(request, None)
        # no plugin answers in the vendor's response: not even a coroutine for it
        if (adapter.capabilities.passive_reply and stored
                and implemented(self.pm.hook.omni_inbound_passive_reply)):
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
        if inbound is None:
            return None
        conversation = await self.store.get_conversation(inbound.conversation_id)
        if conversation is None:
            return None
        try:
            parts = self.pm.hook.omni_inbound_passive_reply(
                hub=self.hub, adapter=adapter, message=inbound, conversation=conversation)
        except Exception:
            log.exception("passive reply hook failed")
            return None
        if not parts:
            return None
        rendered = render(self.pm, adapter, parts)
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
        self.publisher.publish(MessageSent(message=reply))
        return response

    async def store_result(
        self, adapter: ChannelAdapter, result: ParseResult, raw: RawPayload | None,
        received_at: datetime,
    ) -> list[Message]:
        """Store what a parse found (messages, receipts, failures, follow-up jobs), publish
        it, and return the newly stored messages. Replay calls it with ``raw=None``."""
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
        duplicates = 0
        for outcome in outcomes:  # (no generator for the common one outcome)
            duplicates += outcome.duplicate
        self.metrics.record_duplicates(key, duplicates)
        for follow_up in result.jobs:  # stored before the vendor is answered: durable
            await defer_job(self.store, self.delivery.poke, key, follow_up.task, follow_up.data,
                            delay=follow_up.delay, raw_id=raw.id if raw else None)
        stored = self._announce(outcomes)
        for update in statuses:
            await self.apply_status(key, update)
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

    def _ingest_item(self, adapter: ChannelAdapter, draft: InboundMessage,
                     received_at: datetime, raw_id: str | None) -> IngestItem:
        customer = draft.sender if draft.direction == "inbound" else (
            draft.recipients[0] if draft.recipients else draft.sender)
        addresses = [customer, *draft.contact_hints]
        hook = self.pm.hook
        # a hook nobody implements answers nothing: not calling it saves pluggy's dispatch
        if implemented(hook.omni_contact_identify):
            for extra in hook.omni_contact_identify(adapter=adapter, message=draft):
                if extra:
                    addresses.extend(extra)
        thread_key = ((hook.omni_inbound_thread_key(adapter=adapter, message=draft)
                       if implemented(hook.omni_inbound_thread_key) else None)
                      or draft.thread_key or adapter.thread_key_for(customer, draft))
        return IngestItem(
            message_id=new_id("msg"), channel=adapter.channel, channel_key=adapter.context.key,
            adapter=adapter.name, draft=draft, thread_key=thread_key,
            contact_addresses=addresses, received_at=received_at,
            window=adapter.capabilities.session_window, raw_id=raw_id,
            fetch_media=self._fetches_media(adapter, draft),
            thread_channel=self.channels.thread_channel(adapter))

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

    async def apply_status(self, channel_key: str, update: StatusUpdate) -> None:
        """Apply a receipt (forward-only); one quicker than our send's answer waits a while."""
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
            self.publisher.publish(StatusChanged(message=outcome.message, previous=outcome.previous))

    async def dead_letter(self, channel_key: str, request: WebhookRequest, error: str) -> DeadLetter:
        """Keep a verified request whose background completion failed (replayable)."""
        adapter = self.channels.adapter(channel_key)
        now = datetime.now(UTC)
        raw = RawPayload(id=new_id("raw"), channel_key=channel_key, received_at=now,
                         method=request.method, url=redact_url(request.url, adapter.secret_query),
                         headers=_storable_headers(adapter, request.headers),
                         body=adapter.storable_body(request))
        letter = DeadLetter(id=new_id("dl"), channel_key=channel_key, adapter=adapter.name,
                            error=storable_text(error), created_at=now, raw_id=raw.id)
        await self.store.add_dead_letter(letter, raw)
        self.metrics.record_dead_letter(channel_key, "inbound")
        log.warning("dead-lettered a %s request on %s: %s", adapter.name, channel_key, error)
        return letter

    async def ingest(self, channel_key: str, messages: Sequence[InboundMessage]) -> list[Message]:
        """Store messages received by other means than a webhook, de-duplicated and threaded."""
        adapter = self.channels.adapter(channel_key)
        now = datetime.now(UTC)
        items = [self._ingest_item(adapter, m, now, None) for m in messages]
        outcomes = await self.store.ingest(items, None)
        self.metrics.record_duplicates(channel_key, sum(o.duplicate for o in outcomes))
        return self._announce(outcomes)

    def _announce(self, outcomes: Sequence[IngestOutcome]) -> list[Message]:
        """Publish what storing inbound messages did; return the new messages."""
        publish = self.publisher.publish
        stored = []
        media = False
        for outcome in outcomes:
            if outcome.duplicate or outcome.message is None or outcome.conversation is None:
                continue
            stored.append(outcome.message)
            if outcome.events is not None:  # built and logged with the message in the feed
                for event in outcome.events:
                    publish(event)
                media = media or any(p.type == "media" for p in outcome.message.parts)
                continue
            # an event is built only when someone hears it: an observer that declared it
            # watches other channels or parts (``observes``) does not count
            heard, about = self.publisher.heard, self.publisher.heard_about
            key = outcome.message.channel_key
            if outcome.conversation_created and about("conversation.opened",
                                                      outcome.conversation.channel_key, None):
                publish(conversation_opened(outcome.conversation))
            if outcome.message.direction == "inbound":
                if about("message.received", key, outcome.message.parts):
                    publish(message_received(outcome.message, outcome.conversation))
            elif heard("message.sent"):
                publish(MessageSent(message=outcome.message))
            if outcome.opt_change and outcome.contact is not None:
                publish(ContactUpdated(contact=outcome.contact, change=outcome.opt_change))
            if outcome.merged and outcome.contact is not None:
                publish(ContactUpdated(contact=outcome.contact, change="merged",
                                       merged=outcome.merged))
            if outcome.proposals or outcome.merges:  # rare: no list built for none
                for event in contact_events(outcome):
                    publish(event)
            if not media and any(p.type == "media" for p in outcome.message.parts):
                media = True
        if media:
            self.delivery.poke()
        return stored


@dataclasses.dataclass(frozen=True)
class _Steps:
    """Which of the base class's async inbound steps an adapter overrides."""

    check_replay: bool
    parse_request: bool
    complete: bool


_BASE_STEPS = _Steps(check_replay=False, parse_request=False, complete=False)


def _steps(adapter: ChannelAdapter) -> _Steps:
    """What ``adapter`` itself resolves each step to: its class's method, or one set on the
    instance (a test's monkeypatch, a wrapper a plugin installs), decided on every request so
    that a step replaced after registration is run too. The common case (the base steps, no
    instance attribute of those names) costs three type look-ups and three dict probes."""
    cls = type(adapter)
    if (cls.check_replay is _BASE_CHECK_REPLAY and cls.parse_request is _BASE_PARSE_REQUEST
            and cls.complete is _BASE_COMPLETE):
        own = adapter.__dict__  # (ChannelAdapter has no __slots__: every instance has one)
        if "check_replay" not in own and "parse_request" not in own and "complete" not in own:
            return _BASE_STEPS
    return _Steps(check_replay=_overridden(adapter, "check_replay", _BASE_CHECK_REPLAY),
                  parse_request=_overridden(adapter, "parse_request", _BASE_PARSE_REQUEST),
                  complete=_overridden(adapter, "complete", _BASE_COMPLETE))


def _overridden(adapter: ChannelAdapter, name: str, base: object) -> bool:
    """Whether ``adapter.<name>`` is anything but the base class's method bound to it."""
    resolved = getattr(adapter, name)
    return (getattr(resolved, "__func__", None) is not base
            or getattr(resolved, "__self__", None) is not adapter)


_BASE_CHECK_REPLAY = ChannelAdapter.check_replay
_BASE_PARSE_REQUEST = ChannelAdapter.parse_request
_BASE_COMPLETE = ChannelAdapter.complete


def _storable_headers(adapter: ChannelAdapter, headers: Mapping[str, str]) -> dict[str, str]:
    # signatures stay (replay needs none, audits want them); credentials and bearer-like
    # secrets the adapter declares never reach the disk
    # a WebhookRequest's header names are lower case: no lower() per header
    return redact_lowered_headers(headers, adapter.secret_headers)
