"""The durable feed (SPEC §11): ``hub.feed(name)`` and ``await hub.ack(name, seq)``.

Two engines behind one interface. On a NATS bus the events already live in the bus's JetStream
stream, and a consumer ``name`` is a durable pull consumer there (JetStream shares its events
among the processes that pull from it and redelivers what was not acknowledged in time). On
SQLite or PostgreSQL alone the feed is a log in the store (:mod:`._store._feed`).

Either way ``ack(name, seq)`` acknowledges ``seq`` and every earlier event this hub was given
for ``name``, a consumer that comes back resumes after what it acknowledged, and hooks still
run in the process that caused an event (the feed only adds a record of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from ._api._webhooks import WebhookHost, WebhookSender
from ._bus import NatsBus
from ._errors import ConfigurationError, OmnichannelError
from ._events import ChannelSignal, Event, event_adapter
from ._feed_holding import Holding
from ._ids import new_id
from ._store._feed import FeedRecord, StoreFeedLog, event_key

if TYPE_CHECKING:
    from ._bus import EventBus
    from ._config import HubSettings

__all__ = ["Feed", "FeedHost", "valid_consumer_name"]

log = logging.getLogger("omnichannel_sdk.feed")

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_consumer_name(name: str) -> str:
    """``name`` if it can name a consumer (letters, digits, ``-``, ``_``; 64 at most)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError("a feed consumer name is 1-64 letters, digits, '-' or '_'",
                                 field="name")
    return name


async def _in_progress(msgs: list[Any]) -> list[Any]:
    """Renew JetStream's ``ack_wait`` of messages a reader holds (none is lost: JetStream does
    not say whether it redelivered one meanwhile)."""
    for msg in msgs:
        await msg.in_progress()
    return []


async def _nak(msgs: list[Any]) -> None:
    for msg in msgs:
        with contextlib.suppress(Exception):
            await msg.nak()


def _stream_seq(msg: Any) -> int:
    return int(msg.metadata.sequence.stream)


def _event(record: FeedRecord) -> Event:
    event: Event = event_adapter.validate_json(record.data)
    return event.model_copy(update={"seq": record.seq})


class FeedHost(WebhookHost, Protocol):
    """What the feed needs of the hub (the Hub is one): its settings, bus and store, and what
    the webhook sender it starts needs."""

    @property
    def settings(self) -> HubSettings:
        """The hub's settings."""

    @property
    def bus(self) -> EventBus:
        """The event bus."""


class Feed:
    """A hub's durable feed. The hub owns one; use ``hub.feed()`` and ``hub.ack()``."""

    def __init__(self, hub: FeedHost) -> None:
        self.hub = hub
        settings = self.settings = hub.settings.feed
        nats = isinstance(hub.bus, NatsBus)
        enabled = settings.enabled
        if enabled is None:
            enabled = hub.settings.api is not None or nats
        engine = settings.engine
        if engine == "auto":
            engine = "nats" if nats else "store"
        if engine == "nats" and not nats:
            raise ConfigurationError("the NATS feed needs a NATS bus", field="omnichannel.feed.engine")
        self.engine: str | None = engine if enabled else None
        """``store``, ``nats``, or ``None`` when the feed is off."""
        self.owner = new_id("feed")
        """This hub's name as a holder of leased events."""
        self.log: StoreFeedLog | None = None
        if self.engine == "store":
            self.log = StoreFeedLog(hub.storage)
            hub.storage.feed_log = self.log
        self._pending: list[Event] = []
        self._changed = asyncio.Event()
        self._write_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._holdings: dict[Holding[Any], str] = {}  # the live readers' and their names
        self._nats_pending: dict[str, dict[int, Any]] = {}
        self._closed = True
        self._sender: Any = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer of events published after their commit, and retention."""
        self._closed = False
        api = self.hub.settings.api
        if api is not None and api.webhooks and self.engine is not None:
            self._sender = WebhookSender(self.hub, list(api.webhooks))
            await self._sender.start()
        if self.log is not None:
            self._tasks = [asyncio.create_task(self._writer(), name="omnichannel-feed-writer"),
                           asyncio.create_task(self._retention(), name="omnichannel-feed-retention")]

    async def stop(self) -> None:
        """Write what is pending, stop, end every reader."""
        self._closed = True
        self._notify()
        self._write_wake.set()
        if self._sender is not None:
            await self._sender.stop()
            self._sender = None
        for holding in list(self._holdings):  # a reader its consumer left open renews no more
            await holding.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._flush()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def observe(self, event: Event) -> None:
        """Record ``event`` (called for every event the hub publishes, after its commit)."""
        if self.log is None or isinstance(event, ChannelSignal):
            return
        if self.log.logged.take(event_key(event)):  # appended inside its own transaction
            self._notify()
            return
        self._pending.append(event)
        self._write_wake.set()

    async def _writer(self) -> None:
        while not self._closed:
            await self._write_wake.wait()
            self._write_wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        if self.log is None or not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self.log.append_now(batch)
        except Exception:
            log.exception("could not add %d events to the feed", len(batch))
            return
        self._notify()

    async def _retention(self) -> None:
        assert self.log is not None
        every = min(300.0, self.settings.retention / 10)
        while not self._closed:
            try:
                gone = await self.log.trim(self.settings.retention)
                if gone:
                    log.debug("feed retention removed %d events", gone)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed retention failed")
            await asyncio.sleep(every)

    def _require(self) -> str:
        if self.engine is None:
            raise ConfigurationError("the durable feed is off: set [omnichannel.feed] enabled = true "
                                     "(or configure [api])", field="omnichannel.feed.enabled")
        if self._closed:
            raise OmnichannelError("the hub is not open (use `async with hub`)")
        return self.engine

    # -- consumers -----------------------------------------------------------------------------

    async def read(self, name: str) -> AsyncIterator[Event]:
        """Events for consumer ``name``, each with its ``seq``, until the hub closes."""
        valid_consumer_name(name)
        if self._require() == "nats":
            async for event in self._read_nats(name):
                yield event
            return
        assert self.log is not None
        holding: Holding[FeedRecord] = Holding(
            lambda records: self._renew(name, records), self.settings.lease,
            lambda records: self._release(name, records),
            seq=lambda record: record.seq, group=lambda record: record.conversation_id,
            slim=lambda record: FeedRecord(record.seq, record.conversation_id, record.type, ""))
        self._holdings[holding] = name
        try:
            while not self._closed:
                changed = self._changed
                records = await self.log.claim(name, self.owner, self.settings.batch, self.settings.lease)
                if not records:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(changed.wait(), self.settings.poll_interval)
                    continue
                holding.extend(records)
                for record in holding.handed_out():
                    yield _event(record)
        finally:
            self._holdings.pop(holding, None)
            await holding.stop()
            if holding.waiting and not self._closed:  # a reader that stopped gives back what it holds
                with contextlib.suppress(Exception):
                    await self._release(name, list(holding.waiting))

    async def _renew(self, name: str, records: list[FeedRecord]) -> list[FeedRecord]:
        """Renew the leases of ``records`` (what a reader holds); those another process took
        over after their lease ran out."""
        assert self.log is not None
        lost = set(await self.log.renew(name, self.owner, [r.seq for r in records], self.settings.lease))
        if lost:
            log.warning("%d events of feed consumer %s were taken over by another process after "
                        "their lease ran out; this process leaves them", len(lost), name)
        return [r for r in records if r.seq in lost]

    async def _release(self, name: str, records: list[FeedRecord]) -> None:
        assert self.log is not None
        await self.log.release(name, self.owner, [r.seq for r in records])

    async def ack(self, name: str, seq: int) -> None:
        """Acknowledge ``seq`` and every earlier event this hub was given for ``name``."""
        valid_consumer_name(name)
        if self._require() == "nats":
            pending = self._nats_pending.get(name, {})
            for number in sorted(n for n in pending if n <= seq):
                msg = pending.pop(number, None)
                if msg is not None:
                    await msg.ack_sync()  # confirmed by the server: truly recorded
        else:
            assert self.log is not None
            await self.log.ack(name, self.owner, int(seq))
        for holding, reading in list(self._holdings.items()):  # renewed no more
            if reading == name:
                holding.acknowledged(int(seq))

    async def _read_nats(self, name: str) -> AsyncIterator[Event]:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        bus = self.hub.bus
        assert isinstance(bus, NatsBus)
        config = ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=self.settings.lease,
                                max_ack_pending=max(1000, 10 * self.settings.batch))
        sub = await bus._js.pull_subscribe(f"{bus.subject}.>", durable=name, stream=bus.stream,
                                           config=config)
        pending = self._nats_pending.setdefault(name, {})
        holding: Holding[Any] = Holding(_in_progress, self.settings.lease, _nak, seq=_stream_seq)
        self._holdings[holding] = name
        try:
            while not self._closed:
                try:
                    holding.extend(await sub.fetch(self.settings.batch, timeout=self.settings.poll_interval))
                except (TimeoutError, NatsTimeout):
                    continue
                for msg in holding.handed_out():
                    seq = _stream_seq(msg)
                    try:
                        event = event_adapter.validate_json(msg.data)
                    except ValueError:
                        log.warning("skipping an undecodable event %d on the feed", seq)
                        await msg.ack()
                        holding.forget(msg)
                        continue
                    if isinstance(event, ChannelSignal):  # passing signals are not part of it
                        await msg.ack()
                        holding.forget(msg)
                        continue
                    pending[seq] = msg
                    yield event.model_copy(update={"seq": seq})
        finally:
            self._holdings.pop(holding, None)
            await holding.stop()
            # fetched but not handed out: back at once rather than after ack_wait
            await _nak(list(holding.waiting))
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- readers that do not acknowledge (Server-Sent Events) ----------------------------------

    async def last_seq(self) -> int:
        """The ``seq`` of the newest event."""
        if self._require() == "nats":
            bus = self.hub.bus
            assert isinstance(bus, NatsBus)
            info = await bus._js.stream_info(bus.stream)
            return int(info.state.last_seq)
        assert self.log is not None
        return await self.log.last_seq()

    async def after(self, seq: int, limit: int) -> list[Event]:
        """Up to ``limit`` events after ``seq`` (``[]`` when there are none yet)."""
        if self._require() == "nats":
            return await self._after_nats(seq, limit)
        assert self.log is not None
        return [_event(r) for r in await self.log.read_after(seq, limit)]

    async def wait(self, timeout: float) -> None:
        """Wait until this hub appended an event, or ``timeout`` seconds."""
        changed = self._changed
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(changed.wait(), min(timeout, self.settings.poll_interval))

    async def _after_nats(self, seq: int, limit: int) -> list[Event]:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        bus = self.hub.bus
        assert isinstance(bus, NatsBus)
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=seq + 1, inactive_threshold=30.0, mem_storage=True)
        sub = await bus._js.pull_subscribe(f"{bus.subject}.>", stream=bus.stream, config=config)
        events: list[Event] = []
        try:
            with contextlib.suppress(NatsTimeout, asyncio.TimeoutError):
                for msg in await sub.fetch(limit, timeout=0.5):
                    number = int(msg.metadata.sequence.stream)
                    with contextlib.suppress(ValueError):
                        event = event_adapter.validate_json(msg.data)
                        if not isinstance(event, ChannelSignal):
                            events.append(event.model_copy(update={"seq": number}))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await bus._js.delete_consumer(bus.stream, sub._consumer)
        return events
