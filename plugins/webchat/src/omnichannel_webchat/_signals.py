"""Typing and "seen" signals of the web chat (the :class:`WebchatSignals` part of the adapter).

Typing and "seen" travel as :class:`~omnichannel_sdk.ChannelSignal` events (``hub.signal``), so
they cross processes too: the visitor's reach every agent inbox, an agent's reach the visitor
wherever the widget is connected.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from omnichannel_sdk import AdapterServices, ChannelAdapter, ChannelSignal

from ._registry import Registry, SignalBuffer, frame
from ._session import Session
from ._settings import WebchatSettings

__all__ = ["SIGNAL_TTL", "WebchatSignals"]

SIGNAL_TTL = 5.0
"""Seconds a typing / seen signal is kept for visitors on the long-poll fallback."""
_SIGNALS = {"typing": "typing", "typing_stopped": "typing", "seen": "seen"}
_CUSTOMER = ("visitor", "customer")
_TYPING_REPEAT = 2.0  # seconds: a visitor's repeated typing signal is published at most this often


class WebchatSignals(ChannelAdapter[WebchatSettings]):
    """The live signals of :class:`~._adapter.WebchatAdapter` (its base; state set up there)."""

    registry: Registry
    signal_buffer: SignalBuffer
    origin_id: str
    _signal_queues: set[asyncio.Queue[dict[str, Any]]]
    _visitors: OrderedDict[str, str]  # conversation id -> visitor
    _typing: OrderedDict[str, tuple[bool, float]]  # last visitor typing

    @property
    def services(self) -> AdapterServices:
        """The hub's services for this channel (``running`` is ``False`` outside a hub)."""
        return self.context.services

    @abc.abstractmethod
    async def conversation_of(self, visitor: str) -> str | None:
        """The id of the visitor's latest conversation on this channel, if any."""

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
