"""Event buses: in-memory (default) and NATS JetStream (several processes)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from ._errors import ConfigurationError, OmnichannelError
from ._event_queue import EventQueue
from ._events import Event, event_adapter
from ._redact import redact_url

__all__ = ["EventBus", "MemoryBus", "NatsBus", "bus_from_url"]

log = logging.getLogger("omnichannel_sdk.bus")


class EventBus(abc.ABC):
    """Publishes hub events to every subscriber."""

    async def open(self) -> None:  # noqa: B027 - optional for buses without a connection
        """Connect."""

    async def close(self) -> None:  # noqa: B027 - optional for buses without a connection
        """Disconnect; subscribers' iterators end."""

    async def check(self) -> str | None:
        """``None`` when the bus works, else what is wrong (for ``/healthz``)."""
        return None

    @abc.abstractmethod
    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every current subscriber."""

    @abc.abstractmethod
    def subscribe(self, maxsize: int = 10_000) -> AsyncIterator[Event]:
        """An async iterator over events published from now on."""

    @property
    def listened(self) -> bool:
        """Whether a published event can reach anyone (``False`` lets the hub skip building
        events no one would get)."""
        return True


_CLOSED: Any = object()


class MemoryBus(EventBus):
    """Events within one process. A slow subscriber loses its oldest events, never blocks."""

    def __init__(self) -> None:
        self._queues: set[EventQueue[Any]] = set()
        self._closed = False
        self.dropped = 0
        """Events dropped in total because a subscriber's queue was full (a counter for
        metrics: it only grows)."""

    async def close(self) -> None:
        """End every subscription (after the events already queued for it)."""
        self._closed = True
        for queue in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):  # a full queue ends when drained
                queue.put_nowait(_CLOSED)

    async def check(self) -> str | None:
        """``None`` while open, ``"closed"`` after :meth:`close`."""
        return "closed" if self._closed else None

    @property
    def listened(self) -> bool:
        """Whether this process has a subscriber (a NATS bus always publishes)."""
        return bool(self._queues) or type(self) is not MemoryBus

    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every current subscriber."""
        for queue in self._queues:
            if queue.full():
                lost = queue.get_nowait()
                self.dropped += 1
                # never silent: the first drop and then every 1000th are logged
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("a slow subscriber's queue is full: dropped its oldest event "
                                "(%s); %d dropped so far", getattr(lost, "type", "?"), self.dropped)
            queue.put_nowait(event)

    async def subscribe(self, maxsize: int = 10_000) -> AsyncIterator[Event]:
        """An async iterator over events published from now on."""
        queue: EventQueue[Any] = EventQueue(maxsize)
        self._queues.add(queue)
        try:
            while True:
                if self._closed and queue.empty():
                    return
                event = await queue.get()
                if event is _CLOSED:
                    return
                yield event
        finally:
            self._queues.discard(queue)


class NatsBus(MemoryBus):
    """Events shared by every process through NATS JetStream (``nats://host:4222``).

    Events are published to ``<subject>.<event type>`` on a stream the bus creates, and every
    process runs one ordered consumer that fans events out to its local subscribers.
    """

    def __init__(self, url: str, *, stream: str = "OMNICHANNEL", subject: str = "omnichannel.events"):
        super().__init__()
        self.url = url
        self.stream = stream
        self.subject = subject
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None

    async def open(self) -> None:
        """Connect, ensure the stream, start consuming new events."""
        try:
            import nats
        except ImportError as exc:  # pragma: no cover - bus_from_url checked the extra
            raise ConfigurationError("the NATS bus needs the [nats] extra: "
                                     "pip install 'omnichannel-sdk[nats]'", field="bus") from exc
        try:
            self._nc = await nats.connect(self.url, connect_timeout=3, max_reconnect_attempts=3)
        except Exception as exc:  # nats raises several unrelated types
            where = redact_url(self.url, ())  # the user name stays, for the operator
            detail = str(exc).replace(self.url, where)
            raise OmnichannelError(f"cannot connect to NATS at {where}: {detail}") from exc
        self._js = self._nc.jetstream()
        try:
            await self._js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"],
                                      max_age=24 * 3600)
        except Exception:  # noqa: BLE001 - the stream exists with another config: use it
            log.debug("stream %s exists", self.stream)
        from nats.js.api import DeliverPolicy

        self._sub = await self._js.subscribe(
            f"{self.subject}.>", ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
            cb=self._on_message)

    async def check(self) -> str | None:
        """``None`` when the server answers a ping (a flush) within two seconds."""
        if self._nc is None or not self._nc.is_connected:
            return "not connected"
        try:
            await self._nc.flush(timeout=2)
        except Exception as exc:  # noqa: BLE001 - nats raises several unrelated types
            return f"failed: {type(exc).__name__}"
        return None

    async def _on_message(self, msg: Any) -> None:
        try:
            event = event_adapter.validate_json(msg.data)
        except ValueError:
            log.warning("dropping an undecodable event on %s", msg.subject)
            return
        await MemoryBus.publish(self, event)

    async def publish(self, event: Event) -> None:
        """Publish to JetStream; every process (this one too) receives it from there."""
        data = event_adapter.dump_json(event)
        await self._js.publish(f"{self.subject}.{event.type}", data)

    async def close(self) -> None:
        """Stop consuming and disconnect."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        await super().close()


def bus_from_url(url: str) -> EventBus:
    """``memory`` or ``nats://host:port`` (``?stream=NAME&subject=prefix`` to choose the
    JetStream stream and subject prefix)."""
    if url in ("memory", "memory://"):
        return MemoryBus()
    if url.startswith(("nats://", "tls://")):
        from ._extras import require_extra

        require_extra("nats", "a NATS bus", field="bus")
        # ``?stream=NAME&subject=prefix`` keeps several deployments apart on one NATS
        from urllib.parse import parse_qs, urlsplit, urlunsplit

        parts = urlsplit(url)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return NatsBus(urlunsplit(parts._replace(query="")),
                       stream=options.get("stream", "OMNICHANNEL"),
                       subject=options.get("subject", "omnichannel.events"))
    # a mistyped URL may still carry a password: never echo it
    raise ConfigurationError(f"unsupported bus {redact_url(url, ())!r} (use 'memory' or 'nats://…')",
                             field="bus")
