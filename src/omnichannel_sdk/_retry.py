"""Backoff between tries: exponential with full jitter, honouring the vendor's ``Retry-After``."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Seconds before try ``attempt + 1``: full jitter over ``base * 2**attempt`` (capped),
    never less than the vendor's ``Retry-After``."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, max(cap, retry_after or 0.0))
