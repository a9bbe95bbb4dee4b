"""The typed port adapters program against: what the hub does for one channel.

An adapter never touches the :class:`~omnichannel_sdk.Hub` object. Its context carries
``services``, an :class:`AdapterServices` bound to the adapter's channel key: ingesting messages
received by other means than a webhook, applying receipts, keeping dead letters, changing stored
messages and contacts atomically, reading the store, passing signals, and running tracked
background work. Outside a running hub (``omnichannel normalize``, sans-IO tests) the context has
:class:`DetachedServices`, whose ``running`` is ``False`` and whose operations raise
:class:`~omnichannel_sdk.ConfigurationError` instead of silently doing nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._adapter_results import InboundMessage
    from ._events import Event
    from ._models import (
        Address,
        Contact,
        ContactMerge,
        Conversation,
        DeadLetter,
        MergeProposal,
        Message,
        StatusUpdate,
    )
    from ._webhook import WebhookRequest, WebhookResponse

__all__ = ["AdapterServices", "DetachedServices", "HubServices", "HubStore", "ServiceHost", "StoreReader"]


@runtime_checkable
class StoreReader(Protocol):
    """The store reads an adapter may make (all async, never a write)."""

    async def get_message(self, message_id: str) -> Message | None:
        """The stored message with our id, or ``None``."""

    async def find_message_by_external(self, channel_key: str, external_id: str) -> Message | None:
        """The message a vendor id names on a channel key, or ``None``."""

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, after: str | None = None,
        last: int | None = None,
    ) -> list[Message]:
        """A conversation's messages in order (``after``: only those after that message id;
        ``last``: only the last N)."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or ``None``."""

    async def list_conversations(
        self, *, channel_key: str | None = None, status: str | None = None,
        contact_id: str | None = None, limit: int | None = None,
    ) -> list[Conversation]:
        """Conversations, most recently active first."""

    async def get_contact(self, contact_id: str) -> Contact | None:
        """The contact, or ``None``."""

    async def find_contact(self, address: Address) -> Contact | None:
        """The contact that owns ``address``, or ``None``."""


@runtime_checkable
class HubStore(StoreReader, Protocol):
    """What ``hub.store`` offers an application: the documented reads (SPEC §6), never a write.

    Changes go through the hub (``hub.send``, ``hub.modify_message``, ``hub.close_conversation``,
    ``hub.confirm_merge``…), which keeps events, the feed and the outbox in step; the store's
    persistence methods are the SDK's own and may change between releases."""

    async def list_dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """Dead letters, oldest first (by default only those not yet replayed)."""

    async def list_merge_proposals(
        self, status: Literal["open", "confirmed", "rejected"] | None = "open",
    ) -> list[MergeProposal]:
        """Merge proposals with ``status`` (``None``: all), oldest first (``hub.merge_proposals``
        is the same read)."""

    async def list_merges(self, contact_id: str) -> list[ContactMerge]:
        """The merges naming the contact, oldest first (``hub.merges`` is the same read)."""

    async def pending_jobs(self) -> int:
        """How many outbox jobs are waiting or running."""

    async def schema_version(self) -> int:
        """The schema version of the open database (SPEC §6)."""


@runtime_checkable
class AdapterServices(Protocol):
    """What the hub does for one channel's adapter (``adapter.context.services``).

    Every operation is scoped to the adapter's own channel key. ``running`` tells whether a hub
    with an event loop stands behind it; the other members raise
    :class:`~omnichannel_sdk.ConfigurationError` when it does not.
    """

    @property
    def running(self) -> bool:
        """``True`` inside a hub from the moment it starts its adapters until it closes (so
        also in :meth:`~omnichannel_sdk.ChannelAdapter.start`); ``False`` in ``omnichannel
        normalize`` or sans-IO tests. What a ``parse`` asks before handing work to the hub."""

    @property
    def store(self) -> StoreReader:
        """Read-only access to the stored messages, conversations and contacts."""

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``work`` in the background: errors are logged, and closing the hub waits for it
        (briefly). Lost when the process dies: for work that must survive a crash, use
        :meth:`defer`."""

    async def defer(self, task: str, data: Mapping[str, Any], *, delay: float = 0.0) -> str:
        """Store a durable follow-up job for this channel and return its id.

        The hub's job runner (the outbox's workers, in any process) calls the adapter's
        :meth:`~omnichannel_sdk.ChannelAdapter.run_job` with ``task`` and ``data`` (JSON) after
        ``delay`` seconds. A retryable :class:`~omnichannel_sdk.ChannelError` (or a crash) is
        retried with backoff, a process killed meanwhile leaves the job to be run again, and the
        last failure is dead-lettered. Jobs run at least once: make them idempotent."""

    async def receive(self, request: WebhookRequest, *, trusted: bool = False) -> WebhookResponse:
        """Run the whole inbound pipeline on a request the adapter received itself (an SMTP
        listener, a simulator); ``trusted`` skips verification for authenticated transports."""

    async def ingest(self, messages: Sequence[InboundMessage]) -> list[Message]:
        """Store messages received by other means than a webhook (IMAP, WebSocket, a late
        lookup), de-duplicated and threaded like any other; returns the newly stored ones."""

    async def apply_status(self, update: StatusUpdate) -> None:
        """Apply a receipt that arrived outside a webhook (forward only)."""

    async def dead_letter(self, request: WebhookRequest, error: str) -> DeadLetter:
        """Keep a verified request whose background completion failed: replayable, never lost."""

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Change a stored message atomically; ``change`` runs in the store's transaction and
        must do no I/O. Publishes ``message.updated`` when the message changed."""

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Change a contact atomically (by id or by address); publishes ``contact.updated``."""

    async def start_conversation(self, to: Address | str, *, subject: str | None = None) -> Conversation:
        """The open conversation with ``to`` on this channel, created when needed."""

    def signal(self, conversation_id: str, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Publish a passing, unstored signal (typing, seen) to every process's subscribers."""

    def events(self) -> AsyncIterator[Event]:
        """The live fan-out of every event the hub publishes from now on."""


class _NoStore:
    """Store reads outside a hub: each raises."""

    def __getattr__(self, name: str) -> Any:
        raise ConfigurationError(f"store.{name} needs a running hub")


class DetachedServices:
    """The services of an adapter that runs outside a hub: ``running`` is ``False`` and every
    operation raises :class:`~omnichannel_sdk.ConfigurationError` naming what needed the hub."""

    def __init__(self, channel_key: str = "") -> None:
        self.channel_key = channel_key

    @property
    def running(self) -> bool:
        """Always ``False``."""
        return False

    @property
    def store(self) -> StoreReader:
        """A reader whose every call raises."""
        return _NoStore()

    def _refuse(self, what: str) -> ConfigurationError:
        return ConfigurationError(f"{what} needs a running hub", channel_key=self.channel_key or None)

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Refused: closes ``work`` and raises."""
        work.close()
        raise self._refuse("spawn")

    async def defer(self, task: str, data: Mapping[str, Any], *, delay: float = 0.0) -> str:
        """Refused."""
        raise self._refuse("defer")

    async def receive(self, request: WebhookRequest, *, trusted: bool = False) -> WebhookResponse:
        """Refused."""
        raise self._refuse("receive")

    async def ingest(self, messages: Sequence[InboundMessage]) -> list[Message]:
        """Refused."""
        raise self._refuse("ingest")

    async def apply_status(self, update: StatusUpdate) -> None:
        """Refused."""
        raise self._refuse("apply_status")

    async def dead_letter(self, request: WebhookRequest, error: str) -> DeadLetter:
        """Refused."""
        raise self._refuse("dead_letter")

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Refused."""
        raise self._refuse("modify_message")

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Refused."""
        raise self._refuse("modify_contact")

    async def start_conversation(self, to: Address | str, *, subject: str | None = None) -> Conversation:
        """Refused."""
        raise self._refuse("start_conversation")

    def signal(self, conversation_id: str, name: str, data: Mapping[str, Any] | None = None) -> None:
        """Refused."""
        raise self._refuse("signal")

    def events(self) -> AsyncIterator[Event]:
        """Refused."""
        raise self._refuse("events")


class ServiceHost(Protocol):
    """What :class:`HubServices` needs of the hub: its public methods (the Hub is one). A
    Protocol, so that this module, which adapters import, never imports the hub."""

    @property
    def store(self) -> StoreReader:
        """The store."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Tracked background work."""

    async def handle_webhook(self, channel_key: str, request: WebhookRequest, *,
                             trusted: bool = False) -> WebhookResponse:
        """The inbound pipeline."""

    async def ingest(self, channel_key: str, messages: Sequence[InboundMessage]) -> list[Message]:
        """Messages received by other means than a webhook."""

    async def apply_status(self, channel_key: str, update: StatusUpdate) -> None:
        """A receipt received by other means than a webhook."""

    async def dead_letter(self, channel_key: str, request: WebhookRequest, error: str) -> DeadLetter:
        """Keep a verified request whose completion failed."""

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Atomic change of a message."""

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Atomic change of a contact."""

    async def start_conversation(
        self, channel_key: str, to: Address | str, *, subject: str | None = None
    ) -> Conversation:
        """The open conversation with ``to``."""

    def signal(self, channel_key: str, conversation_id: str, name: str,
               data: Mapping[str, Any] | None = None) -> None:
        """A passing signal."""

    def events(self) -> AsyncIterator[Event]:
        """The live fan-out."""


class HubServices:
    """:class:`AdapterServices` of one channel key, carried out by a hub (built by the hub).

    ``running`` says whether the hub is starting or open; ``defer`` stores a durable job
    ``(channel_key, task, data, delay)`` and returns its id.
    """

    def __init__(
        self, hub: ServiceHost, channel_key: str, *, running: Callable[[], bool],
        defer: Callable[[str, str, Mapping[str, Any], float], Awaitable[str]],
    ) -> None:
        self._hub = hub
        self.channel_key = channel_key
        self._running = running
        self._defer = defer

    @property
    def running(self) -> bool:
        """``True`` while the hub starts its adapters, and while it is open."""
        return self._running()

    @property
    def store(self) -> StoreReader:
        """The hub's store, seen through its reads."""
        return self._hub.store

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Tracked background work of the hub."""
        return self._hub.spawn(work, name=name or f"omnichannel: {self.channel_key}")

    async def defer(self, task: str, data: Mapping[str, Any], *, delay: float = 0.0) -> str:
        """A durable job of this channel key in the store's jobs table."""
        return await self._defer(self.channel_key, task, data, delay)

    async def receive(self, request: WebhookRequest, *, trusted: bool = False) -> WebhookResponse:
        """The hub's inbound pipeline for this channel key."""
        return await self._hub.handle_webhook(self.channel_key, request, trusted=trusted)

    async def ingest(self, messages: Sequence[InboundMessage]) -> list[Message]:
        """Stored through the hub's de-duplication and threading."""
        return await self._hub.ingest(self.channel_key, messages)

    async def apply_status(self, update: StatusUpdate) -> None:
        """Forward-only receipt on this channel key."""
        await self._hub.apply_status(self.channel_key, update)

    async def dead_letter(self, request: WebhookRequest, error: str) -> DeadLetter:
        """A dead letter of this channel key."""
        return await self._hub.dead_letter(self.channel_key, request, error)

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Atomic change of a stored message."""
        return await self._hub.modify_message(message_id, change)

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Atomic change of a contact."""
        return await self._hub.modify_contact(contact, change, reason=reason)

    async def start_conversation(self, to: Address | str, *, subject: str | None = None) -> Conversation:
        """The open conversation with ``to`` on this channel key."""
        return await self._hub.start_conversation(self.channel_key, to, subject=subject)

    def signal(self, conversation_id: str, name: str, data: Mapping[str, Any] | None = None) -> None:
        """A passing signal on this channel key."""
        self._hub.signal(self.channel_key, conversation_id, name, data)

    def events(self) -> AsyncIterator[Event]:
        """The hub's live fan-out."""
        return self._hub.events()
