"""Best-effort background work of the voice plugin, run on the hub's event loop.

What must survive a crash is not here: a ``parse`` that needs the store or the network to finish
(look a call's numbers up, fetch AssemblyAI's transcript, attach a late transcript, confirm an
SNS subscription) returns a durable :class:`~omnichannel_sdk.FollowUp` job instead. What stays
here is work whose loss the vendor repairs: warming the SNS certificate cache (SNS delivers
again while the certificate is missing) and the local transcription of stored audio (the next
``message.updated`` of the message tries again). Tasks go through the hub's tracked ``spawn``
(an adapter's ``context.services`` or, in a hook, the hub), errors are logged (never with a
secret), and ``omni_hub_stopping`` waits for them briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Coroutine
from typing import Any, Protocol

from omnichannel_sdk import Hub

__all__ = ["Spawner", "drain", "schedule"]

log = logging.getLogger("omnichannel_voice")


class Spawner(Protocol):
    """What runs tracked background work: an adapter's ``context.services``, or a hub."""

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``work`` in the background."""


_tasks: weakref.WeakKeyDictionary[Any, set[asyncio.Task[Any]]] = weakref.WeakKeyDictionary()


def schedule(spawner: Spawner, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
    """Run ``work`` through ``spawner``; failures are logged as ``what``."""

    async def guarded() -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s", what, type(exc).__name__)
            log.debug("%s failed", what, exc_info=True)

    # the hub tracks it (closing waits for it); the bucket lets ``drain`` wait for ours only
    task = spawner.spawn(guarded(), name=f"omnichannel-voice: {what}")
    bucket = _tasks.setdefault(spawner, set())
    bucket.add(task)
    task.add_done_callback(bucket.discard)
    return task


async def drain(hub: Hub, timeout: float = 5.0) -> None:
    """Wait up to ``timeout`` seconds for our background work in ``hub`` (scheduled by the hub's
    hooks or its adapters), then cancel the rest."""
    owners = [hub, *(adapter.context.services for adapter in hub.adapters.values())]
    pending = [task for owner in owners for task in _tasks.get(owner, ())]
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    for task in late:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
