"""Sortable identifiers: a prefix, 48 bits of milliseconds and 80 random bits, in hex.

Identifiers made later sort after identifiers made earlier in the same process, also within one
millisecond (the random part is incremented rather than redrawn). Hex keeps making one cheap:
ids are made several times per inbound message.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_RAND_MASK = (1 << 80) - 1


def new_id(prefix: str) -> str:
    """Return a new identifier such as ``msg_0193…`` (32 hex digits) that sorts by time."""
    global _last_ms, _last_rand
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            now = _last_ms
            _last_rand = (_last_rand + 1) & _RAND_MASK
        else:
            _last_ms = now
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        rand = _last_rand
    return f"{prefix}_{now:012x}{rand:020x}"


def id_time(identifier: str) -> float:
    """When an identifier made by :func:`new_id` was made (seconds since the epoch)."""
    _, _, digits = identifier.rpartition("_")
    try:
        return int(digits[:12], 16) / 1000
    except ValueError:
        raise ValueError(f"not an omnichannel id: {identifier!r}") from None
