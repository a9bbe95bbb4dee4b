"""Crash-safe vendor calls of sends: recorded before they are made, bounded per channel,
reconciled with the vendor when an earlier call's outcome is unknown, and a process identity
under which a restarted process takes back at once what its predecessor had leased.

A vendor call whose process died mid-call (or that timed out) may have reached the vendor. The
job keeps the time such a call started (``attempt_started_at``) until a later call is answered;
a process recovering the job asks the adapter (:meth:`ChannelAdapter.reconcile`) before sending
again, and counts a send that goes again without the vendor's word as a possible duplicate.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Protocol

import httpx

from ._adapter import ChannelAdapter, SendResult
from ._errors import TransportError
from ._models import Message, Part
from ._store import Job

if TYPE_CHECKING:
    from ._metrics import HubMetrics
    from ._store import SqlStore


class Slot(Protocol):
    """A channel's vendor-call slot the caller holds (``max_in_flight_per_channel``)."""

    def release(self) -> None:
        """Give the slot back: the channel's next send may go."""

__all__ = ["Slot", "call_vendor", "default_worker_id", "may_have_arrived", "take_back_leases"]

log = logging.getLogger("omnichannel_sdk.delivery")


def default_worker_id() -> str:
    """The default base of a process identity: the host name."""
    return socket.gethostname() or "omnichannel"


def may_have_arrived(exc: BaseException) -> bool:
    """Whether a failed vendor call may still have reached the vendor: a transport error
    other than failing to connect (a timeout or a connection lost after sending)."""
    if not isinstance(exc, TransportError):
        return False
    return not isinstance(exc.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))


async def take_back_leases(store: SqlStore, metrics: HubMetrics, worker_id: str | None) -> None:
    """Take this process's identity and, at once, the jobs its dead predecessor under the
    same identity left leased (rather than waiting out their lease)."""
    identity = await store.hold_identity(worker_id or default_worker_id())
    taken = await store.take_over_leases()
    metrics.record_leases_taken_over(taken)
    if taken:
        log.warning("outbox identity %s: took back %d jobs its previous process left leased",
                    identity, taken)


async def call_vendor(job: Job, message: Message, adapter: ChannelAdapter, parts: list[Part], *,
                      store: SqlStore, metrics: HubMetrics, slot: Slot, settled: set[str],
                      recorded: bool = False) -> SendResult:
    """One vendor call of a send, holding ``slot`` (one of the ``max_in_flight_per_channel``
    of its channel, taken by the caller with a token of the channel's rate limit, so no wait
    comes between the record and the call), recorded as started before it is made. When an
    earlier call's outcome is unknown, the adapter is asked first
    (:meth:`ChannelAdapter.reconcile`); sending again without its answer is a possible
    duplicate, counted and marked on the message.

    ``recorded``: a fresh send whose call the store recorded as started when it created the
    job (``create_outbound(..., attempt=True)``) or with the result of the send before it
    (``record_sent(..., next_attempt=...)``); no earlier call exists to reconcile. The slot
    is released if the call fails; after an answer the caller gives it back or hands it on."""
    try:
        if not recorded:
            found = await _begin(job, message, adapter, parts, store, metrics)
            if found is not None:
                return found
        try:
            result = await adapter.send(message, parts)
        except Exception as exc:
            if not may_have_arrived(exc):
                settled.add(job.id)  # the vendor answered: the retry starts clean
            raise
        if job.possible_duplicates:  # said on the message, counted across crashes
            result.metadata = {**result.metadata,
                               "possible_duplicates": job.possible_duplicates}
        return result
    except BaseException:
        slot.release()
        raise


async def _begin(job: Job, message: Message, adapter: ChannelAdapter, parts: list[Part],
                 store: SqlStore, metrics: HubMetrics) -> SendResult | None:
    """Before a vendor call: the vendor's own record when an earlier call of unknown outcome
    reached it (nothing is sent then), else record this call as started (``None``)."""
    attempted = job.attempt_started_at
    uncertain = attempted is not None
    if attempted is not None:
        found = await adapter.reconcile(message, parts, attempted)
        if found is not None:
            metrics.record_uncertain_send(job.channel_key, "reconciled")
            log.info("send %s: the vendor already had it (%s); not sent again",
                     message.id, ", ".join(found.external_ids))
            extra = ({"possible_duplicates": job.possible_duplicates}
                     if job.possible_duplicates else {})
            return SendResult(external_ids=found.external_ids, status=found.status,
                              metadata={**found.metadata, "reconciled": True, **extra})
    await store.begin_attempt(job.id, possible_duplicate=uncertain)
    if uncertain:
        job.possible_duplicates += 1
        metrics.record_uncertain_send(job.channel_key, "resent")
        log.warning("send %s goes again after a call of unknown outcome: a possible "
                    "duplicate at the vendor", message.id)
    return None
