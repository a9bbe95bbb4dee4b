"""Thread keys: whose conversation a parsed message is, and adapters written for 0.1.

Before 0.2 an adapter overrode ``thread_key(message)`` (inbound) and ``thread_key_for(customer)``
(conversations we start); 0.2 has one method, ``thread_key_for(customer, message=None)``. Old
overrides keep working, with a :class:`DeprecationWarning` when the class is defined.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Protocol

from ._models import Address

__all__ = ["adopt_legacy_thread_keys", "message_customer"]


class _Parsed(Protocol):
    # an InboundMessage, read only (it is frozen)
    @property
    def direction(self) -> str: ...

    @property
    def sender(self) -> Address: ...

    @property
    def recipients(self) -> list[Address]: ...


def message_customer(message: _Parsed) -> Address:
    """The customer of a parsed message: its sender, or for an outbound echo its recipient."""
    if message.direction == "inbound" or not message.recipients:
        return message.sender
    return message.recipients[0]


def adopt_legacy_thread_keys(cls: type, base: Any) -> None:
    """Warn about 0.1 thread-key overrides in ``cls`` and adapt a ``thread_key_for(customer)``
    without ``message``: inbound messages then get ``base``'s default (as in 0.1)."""
    # stacklevel 4: past this function, __init_subclass__ and ABCMeta.__new__, to the class
    if "thread_key" in cls.__dict__:
        warnings.warn(f"{cls.__qualname__}.thread_key(message) is deprecated: override "
                      "thread_key_for(customer, message=None)", DeprecationWarning, stacklevel=4)
    legacy = cls.__dict__.get("thread_key_for")
    if legacy is None or "message" in inspect.signature(legacy).parameters:
        return
    warnings.warn(f"{cls.__qualname__}.thread_key_for(customer) without message is deprecated: "
                  "accept message=None", DeprecationWarning, stacklevel=4)

    def thread_key_for(self: Any, customer: Address, message: Any = None) -> str:
        if message is not None:
            return str(base.thread_key_for(self, customer, message))
        return str(legacy(self, customer))

    thread_key_for.__doc__ = legacy.__doc__
    cls.thread_key_for = thread_key_for  # type: ignore[attr-defined]
