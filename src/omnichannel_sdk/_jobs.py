"""Durable follow-up jobs of adapters, kept in the store's jobs table.

A sans-IO ``parse`` that needs more than the request (a call's numbers from the vendor API, a
transcript to fetch, a subscription to confirm) returns what it can plus a
:class:`~omnichannel_sdk.FollowUp` in ``ParseResult.jobs``; the hub stores the job before it
answers the vendor, so a crash before that makes the vendor deliver again. Work found later
(outside ``parse``) is deferred with ``context.services.defer``. Either way the job is a row of
kind ``adapter`` that the outbox's job runner leases like a send: it survives a crash (its lease
runs out and another process takes it), a retryable :class:`~omnichannel_sdk.ChannelError` or a
crash of the adapter's code is retried with backoff, and the last failure is dead-lettered —
with the webhook's raw payload when the job came from one, so ``omnichannel replay`` parses it
again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._errors import (
    ChannelError,
    ConfigurationError,
    OmnichannelError,
    RetryLaterError,
    UnsupportedFeatureError,
)
from ._ids import new_id
from ._models import DeadLetter, utcnow
from ._retry import backoff_delay
from ._store import Job

if TYPE_CHECKING:
    from ._adapter import ChannelAdapter
    from ._config import DeliverySettings
    from ._store import SqlStore

__all__ = ["ADAPTER_JOB", "defer_job", "run_adapter_job"]

ADAPTER_JOB = "adapter"
"""The ``kind`` of adapters' jobs in the jobs table."""


async def defer_job(store: SqlStore, poke: Callable[[], None], channel_key: str, task: str,
                    data: Mapping[str, Any], *, delay: float = 0.0, raw_id: str | None = None) -> str:
    """Store a job that calls ``run_job(task, data)`` on the channel's adapter; its id.

    ``poke`` wakes the job runner (the outbox's ``poke``); ``raw_id`` names the stored webhook
    payload the job completes (kept with its dead letter)."""
    if not task:
        raise ConfigurationError("a deferred job needs a task name", channel_key=channel_key)
    try:
        payload = json.loads(json.dumps({"task": task, "data": dict(data), "raw_id": raw_id}))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"job data of {task!r} is not JSON: {exc}",
                                 channel_key=channel_key) from None
    job = Job(id=new_id("job"), kind=ADAPTER_JOB, channel_key=channel_key, message_id=None,
              payload=payload)
    await store.enqueue_job(job, delay=max(0.0, delay))
    poke()
    return job.id


def _retryable(exc: Exception) -> bool:
    """A channel error says itself; "later" is retried; our other errors say the job cannot
    succeed (a payload not understood, an opted-out contact); anything else is a crash, which
    may be passing (a database hiccup)."""
    if isinstance(exc, ChannelError):
        return exc.retryable
    if isinstance(exc, RetryLaterError):
        return True
    return not isinstance(exc, OmnichannelError)


async def run_adapter_job(job: Job, store: SqlStore, adapters: Mapping[str, ChannelAdapter],
                          settings: DeliverySettings) -> None:
    """Run one adapter job: finish it, retry it, or dead-letter it.

    A retryable :class:`~omnichannel_sdk.ChannelError`, a
    :class:`~omnichannel_sdk.RetryLaterError` and any exception outside our tree (a bug, a
    passing outage) are retried with backoff until the outbox's ``max_attempts``; a non-retryable
    error, or the last try, dead-letters the job, linked to the raw payload it came from.
    """
    task = str(job.payload.get("task") or "")
    data = dict(job.payload.get("data") or {})
    adapter = adapters.get(job.channel_key)
    try:
        if adapter is None:
            raise UnsupportedFeatureError(f"channel {job.channel_key!r} is no longer configured")
        await adapter.run_job(task, data)
    except Exception as exc:  # noqa: BLE001 - every failure is retried or dead-lettered
        retryable = _retryable(exc)
        error = f"job {task}: {type(exc).__name__}: {exc}"
        if retryable and job.attempts + 1 < settings.max_attempts:
            await store.retry_job(job.id, backoff_delay(
                job.attempts, settings.base_delay, settings.max_delay,
                getattr(exc, "retry_after", None)), error)
            return
        raw_id = job.payload.get("raw_id")
        letter = DeadLetter(id=new_id("dl"), kind="inbound", channel_key=job.channel_key,
                            adapter=adapter.name if adapter else "unknown", error=error,
                            created_at=utcnow(), raw_id=raw_id if isinstance(raw_id, str) else None)
        await store.fail_job(job, letter, None)
        return
    await store.finish_job(job.id)
