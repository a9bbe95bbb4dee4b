"""Where a send stands in the outbox, on the message itself: ``metadata["delivery"]``.

A message that stays ``queued`` after a throttled or failed try would otherwise look the same as
one that was never tried. Once a vendor try failed, the outbound message carries::

    metadata["delivery"] = {
        "attempts": 2,                      # vendor tries made so far
        "last_error": "rate_limited: ...",  # "<code>: <message>" of the last failed try
        "next_attempt_at": "2026-12-02T01:00:07.250+00:00",  # null once sent or failed
    }

The key is absent while no try has failed (most messages). It is updated after every retry is
scheduled (a ``message.updated`` event) and finalised when the message is sent or fails for
good (``next_attempt_at`` null, ``attempts`` the total), with that event. The outbox job stays
the truth; this is its view for a helpdesk.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ._models import Message, utcnow

__all__ = ["DELIVERY_KEY", "finished", "retrying"]

DELIVERY_KEY = "delivery"
"""The metadata key of the retry state."""


def retrying(attempts: int, error: str, delay: float) -> Any:
    """A change for :meth:`~omnichannel_sdk.Hub.modify_message`: ``attempts`` tries made, the
    last failed with ``error``, the next one in ``delay`` seconds (a message no longer queued
    is left alone: a receipt or another process got there first)."""
    state = {"attempts": attempts, "last_error": error[:500],
             "next_attempt_at": (utcnow() + timedelta(seconds=delay)).isoformat(timespec="milliseconds")}

    def change(current: Message) -> Message | None:
        if current.status != "queued":
            return None
        return current.model_copy(update={"metadata": {**current.metadata, DELIVERY_KEY: state}})

    return change


def finished(metadata: dict[str, Any], attempts: int, error: str | None = None) -> dict[str, Any]:
    """``metadata`` with the retry state finalised after try number ``attempts`` succeeded
    (``error`` None: the last failed try's error is kept) or failed for good with ``error``.
    Unchanged when the first try succeeded (there is no retry state to finalise)."""
    previous = metadata.get(DELIVERY_KEY)
    if error is None and not isinstance(previous, dict):
        return metadata
    last = error if error is not None else previous.get("last_error") if isinstance(previous, dict) else None
    return {**metadata, DELIVERY_KEY: {"attempts": attempts,
                                       "last_error": last[:500] if last else None,
                                       "next_attempt_at": None}}
