"""Work a sans-IO ``parse`` cannot do itself, handed to the hub's event loop.

A parse or verify that needs the store or the network (attach a late transcript to a stored
message, fetch AssemblyAI's transcript, look a call's numbers up, fetch an SNS signing
certificate, confirm an SNS subscription) returns what it can and schedules the rest here, through
``hub.spawn``. Tasks are also kept per hub, errors are logged (never with a secret), and
``omni_hub_stopping`` waits for them briefly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Coroutine
from typing import Any

from omnichannel_sdk import ChannelAdapter, Hub

__all__ = ["drain", "hub_of", "schedule"]

log = logging.getLogger("omnichannel_voice")

_tasks: weakref.WeakKeyDictionary[Hub, set[asyncio.Task[Any]]] = weakref.WeakKeyDictionary()


def hub_of(adapter: ChannelAdapter) -> Hub | None:
    """The hub an adapter runs in, when it runs in one with a loop (not ``omnichannel normalize``)."""
    hub = adapter.context.extras.get("hub")
    if not isinstance(hub, Hub) or not hub.is_open:
        return None
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return hub


def schedule(hub: Hub, work: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
    """Run ``work`` in the background of ``hub``; failures are logged as ``what``."""

    async def guarded() -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %s", what, type(exc).__name__)
            log.debug("%s failed", what, exc_info=True)

    # the hub tracks it (closing waits for it); the bucket lets ``drain`` wait for ours only
    task = hub.spawn(guarded(), name=f"omnichannel-voice: {what}")
    bucket = _tasks.setdefault(hub, set())
    bucket.add(task)
    task.add_done_callback(bucket.discard)
    return task


async def drain(hub: Hub, timeout: float = 5.0) -> None:
    """Wait up to ``timeout`` seconds for the hub's background work, then cancel the rest."""
    pending = list(_tasks.get(hub, ()))
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    for task in late:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
