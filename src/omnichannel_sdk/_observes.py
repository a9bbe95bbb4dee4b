"""What an observer hook implementation watches: ``@observes(adapters=..., part_types=...)``.

An observer that acts on one channel's messages only (the WhatsApp plugin on WhatsApp replies,
the voice plugin on audio) otherwise makes the hub build an event for every message of every
channel and call it just to return. Declaring what it watches lets the hub skip both: an event
nobody watches (no hook, no bus subscriber, no durable feed) is not built at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Watch", "observes", "watch_of"]

_F = TypeVar("_F", bound=Callable[..., Any])

_ATTRIBUTE = "omni_observes"


@dataclass(frozen=True, slots=True)
class Watch:
    """The events an observer implementation acts on (``None``: any)."""

    adapters: tuple[type, ...] | None
    """Adapter classes: events of a channel whose adapter is an instance of none of them are
    left out."""
    part_types: frozenset[str] | None
    """Part types (``"media"``, ``"text"``…): messages with no part of one of them are left
    out (judged only for the hooks given a message)."""

    def matches(self, adapter: object | None, parts: Sequence[Any] | None) -> bool:
        """Whether an event of a channel with ``adapter`` (``None``: not known here) about a
        message with ``parts`` (``None``: no message) may interest the implementation."""
        if self.adapters is not None and adapter is not None and not isinstance(adapter, self.adapters):
            return False
        if self.part_types is not None and parts is not None:
            types = self.part_types
            for part in parts:  # not any() over a generator: asked for every stored message
                if part.type in types:
                    return True
            return False
        return True


def observes(*, adapters: Iterable[type] | None = None,
             part_types: Iterable[str] | None = None) -> Callable[[_F], _F]:
    """Declare which events an observer hook implementation acts on, so the hub need not call
    it (nor build the event, when nothing else hears it) for the others.

    For the observer hooks (``omni_inbound_received``, ``omni_conversation_opened``,
    ``omni_outbound_sent``, ``omni_status_changed``, ``omni_message_updated``), beside
    ``@hookimpl``::

        @hookimpl
        @observes(adapters=[WhatsAppAdapter])
        def omni_inbound_received(hub, message, conversation): ...

    ``adapters``: the implementation does nothing for events of channels whose adapter is an
    instance of none of these classes. ``part_types``: it does nothing for a message with no
    part of one of these types (hooks given a conversation only are not filtered by it).

    A promise about the implementation, not a guarantee to it: the hub skips calls it may skip,
    and may still make one it could have skipped (when a ``wrapper`` implementation makes
    pluggy run the hook, or for a channel it does not know). Events reach the bus and the
    durable feed as before.
    """
    watch = Watch(adapters=tuple(adapters) if adapters is not None else None,
                  part_types=frozenset(part_types) if part_types is not None else None)

    def mark(function: _F) -> _F:
        setattr(function, _ATTRIBUTE, watch)
        return function

    return mark


def watch_of(function: Any) -> Watch | None:
    """What ``function`` (a hook implementation, bound or not) declared with :func:`observes`."""
    watch = getattr(function, _ATTRIBUTE, None)
    return watch if isinstance(watch, Watch) else None
