"""The async store interface every backend implements, and the values it exchanges."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._adapter_results import InboundMessage
from .._models import (
    Address,
    Contact,
    ContactMerge,
    Conversation,
    DeadLetter,
    MergeProposal,
    Message,
    StatusUpdate,
)

if TYPE_CHECKING:
    from .._events import Event

__all__ = ["IngestItem", "IngestOutcome", "Job", "RawPayload", "StatusOutcome", "Store"]


@dataclass
class RawPayload:
    """A verified request as received, kept for replay."""

    id: str
    channel_key: str
    received_at: datetime
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class IngestItem:
    """One parsed inbound message with what the hub decided about it before storing."""

    message_id: str
    channel: str
    channel_key: str
    adapter: str
    draft: InboundMessage
    thread_key: str
    contact_addresses: list[Address]
    received_at: datetime
    window: timedelta | None = None
    raw_id: str | None = None
    fetch_media: bool = False
    thread_channel: tuple[str, str] | None = None
    """(channel kind, channel key) whose conversations this message joins, when not its own."""


@dataclass
class IngestOutcome:
    """What storing an inbound message did."""

    duplicate: bool
    message: Message | None = None
    conversation: Conversation | None = None
    conversation_created: bool = False
    contact: Contact | None = None
    opt_change: str | None = None
    merged: list[str] = field(default_factory=list)
    """Ids of contacts merged into ``contact`` because they turned out to be the same person."""
    merges: list[ContactMerge] = field(default_factory=list)
    """The records of those merges (each can be undone with ``hub.unmerge``)."""
    proposals: list[MergeProposal] = field(default_factory=list)
    """Merge proposals storing the message made (a claimed address, a number seen elsewhere)."""
    message_json: str | None = None
    """The message's JSON as stored (the durable feed reuses it instead of serialising again)."""
    events: list[Event] | None = None
    """The events logged for it in the durable feed's log, in its transaction (the hub
    publishes these same events); ``None`` when there is no such log."""


@dataclass
class StatusOutcome:
    """A message whose status a receipt moved."""

    message: Message
    previous: str


@dataclass
class Job:
    """A durable unit of background work (an outbound send, a media download)."""

    id: str
    kind: str
    channel_key: str
    message_id: str | None
    attempts: int = 0
    payload: dict[str, Any] = field(default_factory=dict)
    attempt_started_at: datetime | None = None
    """When a vendor call of this job started whose outcome was never recorded (the process
    making it died, or the call timed out): it may have reached the vendor."""
    vendor_attempts: int = 0
    """How many vendor calls of this job were started (each one recorded before the call)."""
    possible_duplicates: int = 0
    """How many of them were made after a call of unknown outcome the vendor could not
    confirm (each a possible duplicate at the vendor)."""


class Store(abc.ABC):
    """Async persistence of messages, conversations, contacts, raw payloads and jobs.

    The public reads are ``get_message``, ``list_messages``, ``list_conversations``,
    ``get_conversation``, ``get_contact`` and ``list_dead_letters``; the rest serves the hub.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema if needed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush pending writes and disconnect."""

    # -- public reads ------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_message(self, message_id: str) -> Message | None:
        """The message with our id ``message_id``, or ``None``."""

    @abc.abstractmethod
    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, after: str | None = None,
        last: int | None = None,
    ) -> list[Message]:
        """Messages of a conversation in order (``after``: only those after that message id;
        ``last``: only the last N)."""

    @abc.abstractmethod
    async def list_conversations(
        self,
        *,
        channel_key: str | None = None,
        status: str | None = None,
        contact_id: str | None = None,
        limit: int | None = None,
    ) -> list[Conversation]:
        """Conversations, most recently active first."""

    @abc.abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or ``None``."""

    @abc.abstractmethod
    async def get_contact(self, contact_id: str) -> Contact | None:
        """The contact, or ``None``."""

    @abc.abstractmethod
    async def find_contact(self, address: Address) -> Contact | None:
        """The contact owning ``address``, or ``None``."""

    @abc.abstractmethod
    async def list_dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """Dead letters, oldest first (by default only those not yet replayed)."""

    # -- hub internals -------------------------------------------------------------------------

    @abc.abstractmethod
    async def find_message_by_external(self, channel_key: str, external_id: str) -> Message | None:
        """The message a vendor id belongs to on a channel key."""

    @abc.abstractmethod
    async def ingest(
        self, items: list[IngestItem], raw: RawPayload | None
    ) -> list[IngestOutcome]:
        """Store a request's raw payload and its messages atomically, skipping duplicates."""

    @abc.abstractmethod
    async def save_raw(self, raw: RawPayload) -> None:
        """Store a raw payload on its own."""

    @abc.abstractmethod
    async def get_raw(self, raw_id: str) -> RawPayload | None:
        """A stored raw payload."""

    @abc.abstractmethod
    async def add_dead_letter(self, letter: DeadLetter, raw: RawPayload | None = None,
                              fragment: Any = None) -> None:
        """Record a dead letter (with its raw payload, stored in the same transaction)."""

    @abc.abstractmethod
    async def mark_replayed(self, letter_id: str) -> None:
        """Mark a dead letter replayed."""

    @abc.abstractmethod
    async def open_conversation(
        self, channel: str, channel_key: str, thread_key: str, contact_addresses: list[Address],
        participants: list[Address], subject: str | None = None
    ) -> tuple[Conversation, bool]:
        """The open conversation of ``thread_key``, created (with its contact) if needed."""

    @abc.abstractmethod
    async def create_outbound(self, message: Message, job: Job, *, lease: float,
                              attempt: bool = False) -> None:
        """Store an outbound message and its delivery job in one transaction.

        The job starts leased for ``lease`` seconds to the calling process. ``attempt``: the
        job's first vendor call starts right after (as :meth:`begin_attempt` records it, in
        the same transaction instead of one of its own).
        """

    @abc.abstractmethod
    async def record_sent(
        self, message: Message, external_ids: list[str], job_id: str | None, *,
        next_attempt: str | None = None,
    ) -> Message:
        """Store the vendor's ids for a sent message, update it, finish the job.

        ``next_attempt``: the job whose first vendor call starts once this is stored (the
        outbox hands the finished send's channel slot to it): its call is recorded as started
        in the same transaction, as :meth:`begin_attempt` would record it in one of its own.
        """

    @abc.abstractmethod
    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Read, change and write a message in one transaction."""

    @abc.abstractmethod
    async def update_message(self, message: Message) -> None:
        """Replace a stored message (same id)."""

    @abc.abstractmethod
    async def apply_status(self, channel_key: str, update: StatusUpdate) -> list[StatusOutcome]:
        """Apply a receipt forward-only; returns the messages it moved (none if unknown)."""

    @abc.abstractmethod
    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None]
    ) -> Contact | None:
        """Read, change and write a contact (by id or address) in one transaction."""

    @abc.abstractmethod
    async def set_opted_out(self, contact_id: str, channel: str, opted_out: bool) -> Contact:
        """Add or remove ``channel`` from the contact's opt-outs."""

    @abc.abstractmethod
    async def enqueue_job(self, job: Job, *, delay: float = 0.0) -> None:
        """Add a job, due after ``delay`` seconds."""

    @abc.abstractmethod
    async def claim_jobs(self, limit: int, lease: float, *,
                         skip_channels: Sequence[str] = ()) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease ran out) to this process;
        ``skip_channels``: channel keys whose ``send`` jobs are left to other processes."""

    @abc.abstractmethod
    async def retry_job(self, job_id: str, delay: float, error: str, *,
                        uncertain: bool = False) -> None:
        """Release a job to run again after ``delay`` seconds, counting the attempt.

        ``uncertain``: the vendor call may have reached the vendor (a timeout), so the job keeps
        its "attempt started" record for the next try to reconcile."""

    @abc.abstractmethod
    async def begin_attempt(self, job_id: str, *, possible_duplicate: bool = False) -> None:
        """Record, durably and before the vendor is called, that a vendor call of the job
        starts now (a process recovering the job then knows it may have reached the vendor);
        ``possible_duplicate``: an earlier call of unknown outcome may have reached it too."""

    @abc.abstractmethod
    async def hold_identity(self, base: str) -> str:
        """Take a process identity derived from ``base`` that no live process holds (held
        until :meth:`close`); leases this store takes from then on carry it. Returns it."""

    @abc.abstractmethod
    async def take_over_leases(self) -> int:
        """Make the jobs leased to this process's identity by a previous (dead) holder due
        now; how many. Only safe once :meth:`hold_identity` succeeded."""

    @abc.abstractmethod
    async def finish_job(self, job_id: str) -> None:
        """Remove a completed job."""

    @abc.abstractmethod
    async def fail_job(self, job: Job, letter: DeadLetter, message: Message | None) -> None:
        """Give a job up: remove it, store the dead letter and the failed message together."""

    @abc.abstractmethod
    async def pending_jobs(self) -> int:
        """How many jobs are waiting or running."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version of the open database: every earlier release's database is
        upgraded to this release's version on open, a newer one is refused."""

    # -- shared key-value state (KeyValueStore) --------------------------------------------------

    @abc.abstractmethod
    async def kv_get(self, key: str) -> str | None:
        """Return the value, or ``None`` when absent or expired."""

    @abc.abstractmethod
    async def kv_set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given."""

    @abc.abstractmethod
    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired; ``True`` if stored."""

    @abc.abstractmethod
    async def kv_delete(self, key: str) -> None:
        """Remove ``key``."""

    @abc.abstractmethod
    async def kv_scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every live ``(key, value)`` whose key starts with ``prefix``."""
