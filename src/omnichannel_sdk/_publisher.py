"""The publisher: events to the bus and to plugins' observer hooks, and tracked background work.

Everything the hub publishes goes through one queue, pumped by one task: hooks see the events
in the order they were published, and a slow bus never blocks the code that published. The
pump waits only when no event is queued: a burst of events costs one wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import pluggy

from ._bus import EventBus
from ._event_queue import EventQueue
from ._events import (
    ChannelSignal,
    ConversationOpened,
    Event,
    MessageReceived,
    MessageSent,
    MessageUpdated,
    StatusChanged,
)
from ._models import Conversation, Message
from ._plugins import HookCalls, implemented

__all__ = ["Publisher"]

log = logging.getLogger("omnichannel_sdk.hub")

# the observer hook each event type runs (see Publisher._dispatch_hooks)
_OBSERVER_HOOKS = {
    "message.received": "omni_inbound_received", "conversation.opened": "omni_conversation_opened",
    "message.sent": "omni_outbound_sent", "message.status": "omni_status_changed",
    "message.updated": "omni_message_updated",
}


class Publisher:
    """Publishes events (bus, observer hooks, the durable feed) and tracks background tasks.

    ``hub`` is what observer hooks receive as their ``hub`` argument.
    """

    def __init__(self, pm: pluggy.PluginManager, bus: EventBus, hub: object) -> None:
        self.pm = pm
        self.hooks = HookCalls(pm)
        """Calls the observer hooks (directly when pluggy would do nothing more)."""
        self.bus = bus
        self.hub = hub
        self.observers: list[Callable[[Event], None]] = []
        """Called with every event as it is published (the durable feed records it)."""
        self.outgoing: EventQueue[Event] | None = None
        """Events waiting for the pump (``None`` until :meth:`start`); ``join()`` waits until
        the pump has handled every event published so far, ``empty()`` says none waits."""
        self.tasks: set[asyncio.Future[Any]] = set()
        """Background work in flight: async observers and spawned coroutines."""
        self._workers: list[asyncio.Task[Any]] = []
        self._unobserved: set[str] = set()
        self.adapters: Mapping[str, object] = {}
        """Channel key → adapter (the hub's): what observers that declared the adapters they
        watch (:func:`~omnichannel_sdk.observes`) are matched against."""
        self.recorded = False
        """Whether every event is recorded (the durable feed is on), heard or not."""

    def heard(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` would reach anyone now (a hook, a bus subscriber,
        the durable feed): storing inbound messages builds only the events someone gets."""
        return self._observer(event_type) is not False

    def heard_about(self, event_type: str, channel_key: str, parts: Sequence[Any] | None) -> bool:
        """:meth:`heard` for an event of channel ``channel_key`` about a message with
        ``parts`` (``None``: a conversation's event): also ``False`` when every hook
        implementation declared it does nothing for such events (:func:`~omnichannel_sdk.observes`)."""
        # :meth:`_observer` then :meth:`HookCalls.hears`, in one frame: asked for nearly every
        # stored message (twice for a conversation's first), so no call it can do without
        if self.outgoing is None:
            return False
        if self.recorded or self.bus.listened:
            return True
        if event_type in self._unobserved:
            return False
        name = _OBSERVER_HOOKS.get(event_type)
        if name is None:  # no observer hook runs for it (message.queued): the bus alone would
            return False
        caller = getattr(self.pm.hook, name)
        heard = self.hooks.hears(caller, self.adapters.get(channel_key), parts)
        if heard is None:  # no implementation at all: skipped from now on, as _observer does
            self._unobserved.add(event_type)
            return False
        return heard

    def _observer(self, event_type: str) -> Any:
        """``False`` when an event of ``event_type`` reaches nobody, ``None`` when it reaches
        someone whatever it is about, else the observer hook that alone would hear it."""
        if self.outgoing is None:
            return False
        if self.recorded or self.bus.listened:
            return None
        if event_type in self._unobserved:
            return False
        name = _OBSERVER_HOOKS.get(event_type)
        if name is None:  # no observer hook runs for it (message.queued, a signal), the bus
            return False  # has no subscriber and the feed records nothing: nobody gets it
        caller = getattr(self.pm.hook, name)
        if implemented(caller):
            return caller
        self._unobserved.add(event_type)
        return False

    def publish(self, event: Event) -> None:
        """Queue ``event`` for the bus and the hooks (dropped while the hub is not open)."""
        if self.outgoing is not None:
            self.outgoing.put_nowait(event)
            for observe in self.observers:
                observe(event)

    def signal(self, channel_key: str, conversation_id: str, name: str,
               data: Mapping[str, Any] | None = None) -> None:
        """Publish a passing, unstored signal (typing, seen)."""
        self.publish(ChannelSignal(channel_key=channel_key, conversation_id=conversation_id,
                                   name=name, data=dict(data or {})))

    def start(self) -> None:
        """Start the pump."""
        self.outgoing = EventQueue()
        self._workers = [asyncio.create_task(self._pump(), name="omnichannel-events")]

    async def stop(self) -> None:
        """Let queued events out (a few seconds at most), stop the pump, wait for background
        work briefly."""
        if self.outgoing is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.outgoing.join(), timeout=5)
        for worker in self._workers:
            worker.cancel()
        pending: list[asyncio.Future[Any]] = [*self._workers, *self.tasks]
        for future in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(future, timeout=5)

    async def _pump(self) -> None:
        outgoing = self.outgoing
        assert outgoing is not None
        while True:
            # (waits only when no event does: a burst of events is one wake-up)
            event = await outgoing.get()
            try:
                self._dispatch_hooks(event)
                if self.bus.listened:  # an in-memory bus nobody subscribed to: no coroutine
                    await self.bus.publish(event)
            except Exception:
                log.exception("publishing %s failed", event.type)
            finally:
                outgoing.task_done()

    def _dispatch_hooks(self, event: Event) -> None:
        hook = self.pm.hook
        if event.type in self._unobserved:
            return
        hub = self.hub
        parts: Sequence[Any] | None = None
        if isinstance(event, MessageReceived):
            caller, kwargs = hook.omni_inbound_received, {
                "hub": hub, "message": event.message, "conversation": event.conversation}
        elif isinstance(event, ConversationOpened):
            caller, kwargs = hook.omni_conversation_opened, {
                "hub": hub, "conversation": event.conversation}
        elif isinstance(event, MessageSent):
            caller, kwargs = hook.omni_outbound_sent, {"hub": hub, "message": event.message}
        elif isinstance(event, StatusChanged):
            caller, kwargs = hook.omni_status_changed, {
                "hub": hub, "message": event.message, "previous": event.previous}
        elif isinstance(event, MessageUpdated):
            caller, kwargs = hook.omni_message_updated, {"hub": hub, "message": event.message}
        else:
            return
        if not implemented(caller):
            self._unobserved.add(event.type)  # no plugin watches this: skip it from now on
            return
        message: Message | None = getattr(event, "message", None)
        subject: Message | Conversation = (message if message is not None
                                           else getattr(event, "conversation"))  # noqa: B009
        if message is not None:
            parts = message.parts
        try:
            # synchronous observers run here, in order (those that declared they do nothing
            # for this channel's adapter or these parts are left out)
            results = self.hooks.call(caller, kwargs, self.adapters.get(subject.channel_key), parts)
        except Exception:
            log.exception("hook %s failed", caller.name)
            return
        for result in results:
            if inspect.isawaitable(result):  # async observers run beside the pump
                self._track(asyncio.ensure_future(self._await_observer(caller.name, result)))

    def _track(self, task: asyncio.Future[Any]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _await_observer(self, name: str, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("hook %s failed", name)

    async def call_observers(self, caller: Any, **kwargs: Any) -> None:
        """Call a lifecycle hook and await its async implementations; failures are logged."""
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

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run background work that is tracked: errors are logged, :meth:`stop` waits for it."""
        task = asyncio.create_task(self._guarded(coroutine), name=name)
        self._track(task)
        return task

    async def _guarded(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background work failed")
            return None
