"""The hub's public operations, each a thin delegation to the part of the hub that does it.

:class:`~omnichannel_sdk.Hub` inherits them; it builds the parts (see ``_hub.py``). Nothing
here holds state or logic of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from . import _contacts
from ._service_levels import ServiceLevelReport, compute_service_levels

if TYPE_CHECKING:
    from ._adapter_results import InboundMessage
    from ._bus import EventBus
    from ._events import Event
    from ._feed import Feed
    from ._inbound import Inbound
    from ._models import (
        Address,
        Author,
        Contact,
        ContactMerge,
        Conversation,
        DeadLetter,
        MergeProposal,
        Message,
        Part,
        StatusUpdate,
    )
    from ._mutations import Mutations
    from ._outbound import Outbound
    from ._publisher import Publisher
    from ._replay import Replayer, ReplayReport
    from ._store import SqlStore
    from ._timeline import ContactTimeline
    from ._webhook import WebhookRequest, WebhookResponse

__all__ = ["HubOperations"]


class HubOperations:
    """What a hub does for its callers: events, inbound, changes, outbound, reports, replay."""

    storage: SqlStore
    bus: EventBus
    publisher: Publisher
    inbound: Inbound
    outbound: Outbound
    mutations: Mutations
    replayer: Replayer
    _feed: Feed

    def signal(self, channel_key: str, conversation_id: str, name: str,
               data: Mapping[str, Any] | None = None) -> None:
        """Publish a passing, unstored signal (typing, seen) to every process's subscribers."""
        self.publisher.signal(channel_key, conversation_id, name, data)

    async def events(self) -> AsyncIterator[Event]:
        """Every event the hub (and, on a NATS bus, every hub) publishes from now on."""
        async for event in self.bus.subscribe():
            yield event

    def feed(self, name: str) -> AsyncIterator[Event]:
        """The durable feed for consumer ``name``: every event (each with its ``seq``) it has not
        acknowledged, then new ones as they happen, until the hub closes.

        At least once per name, in order per conversation; processes reading one name share
        the events, different names each get all of them. Acknowledge with :meth:`ack`.
        """
        return self._feed.read(name)

    async def ack(self, name: str, seq: int) -> None:
        """Acknowledge event ``seq`` of consumer ``name`` and every earlier one this hub gave it;
        a consumer that comes back resumes after what it acknowledged."""
        await self._feed.ack(name, seq)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run background work the hub tracks: errors are logged, and closing the hub waits
        for it (up to a few seconds) — for adapters whose parsing needs network or store I/O."""
        return self.publisher.spawn(coroutine, name=name)

    async def handle_webhook(self, channel_key: str, request: WebhookRequest, *,
                             trusted: bool = False) -> WebhookResponse:
        """Run the inbound pipeline on one request and return the vendor's answer.

        verify → persist raw → parse → de-duplicate → thread → store → publish → answer.
        Raises :class:`NotFoundError` (404) and :class:`SignatureError` (403); a verified
        request that cannot be parsed is dead-lettered and answered as the vendor expects.
        ``trusted`` skips verification, for payloads an adapter received over its own
        authenticated transport (an SMTP listener, an IMAP mailbox).
        """
        return await self.inbound.handle_webhook(channel_key, request, trusted=trusted)

    async def dead_letter(self, channel_key: str, request: WebhookRequest, error: str) -> DeadLetter:
        """Keep a verified request that could not be completed (for adapters whose background
        work on a request failed): stored with its raw payload, replayable, never lost."""
        return await self.inbound.dead_letter(channel_key, request, error)

    async def apply_status(self, channel_key: str, update: StatusUpdate) -> None:
        """Apply a receipt that arrived outside a webhook (forward-only)."""
        await self.inbound.apply_status(channel_key, update)

    async def ingest(self, channel_key: str, messages: Sequence[InboundMessage]) -> list[Message]:
        """Store messages an adapter received by other means than a webhook (SMTP, IMAP,
        WebSocket), through the same de-duplication, threading and events."""
        return await self.inbound.ingest(channel_key, messages)

    # -- contacts: merges and the whole story (logic in _contacts.py) -------------------------

    async def merge_proposals(
        self, status: Literal["open", "confirmed", "rejected"] | None = "open",
    ) -> list[MergeProposal]:
        """Merge proposals with ``status`` (``None``: all), oldest first: contacts that may be
        one person, by an address one of them only claimed (a web chat pre-chat email) or by
        verified addresses naming the same person on two channels (one phone number on SMS and
        WhatsApp). Open ones whose contacts merged otherwise are left out."""
        return await _contacts.merge_proposals(self.storage, status)

    async def confirm_merge(self, proposal_id: str, *, by: str | None = None) -> Contact:
        """Confirm an open :class:`~omnichannel_sdk.MergeProposal`: its two contacts become
        one (the older id stays), recorded so :meth:`unmerge` can undo it; publishes
        ``contact.merged`` and ``contact.updated`` (``change="merged"``). ``by`` names who
        decided. Unproven addresses are never merged without this. :class:`NotFoundError`
        for an unknown proposal, :class:`MergeConflictError` for a decided one."""
        return await _contacts.confirm_merge(self.storage, self.publisher, proposal_id, by=by)

    async def reject_merge(self, proposal_id: str, *, by: str | None = None) -> None:
        """Reject an open merge proposal: nothing merges, and the pair is not proposed again.
        :class:`NotFoundError` / :class:`MergeConflictError` as for :meth:`confirm_merge`."""
        await _contacts.reject_merge(self.storage, proposal_id, by=by)

    async def merge_contacts(self, contact_id: str, other_id: str, *,
                             by: str | None = None) -> Contact:
        """Merge two contacts the helpdesk knows are one person (no proposal needed); the
        older id stays. Recorded and reversible like a confirmed proposal."""
        return await _contacts.merge_contacts(self.storage, self.publisher, contact_id, other_id,
                                              by=by)

    async def merges(self, contact_id: str) -> list[ContactMerge]:
        """The merge records naming ``contact_id`` (kept or absorbed), oldest first, undone
        ones included: who merged whom, when, by whom, which addresses and conversations moved."""
        return await _contacts.merges(self.storage, contact_id)

    async def unmerge(self, merge_id: str, *, by: str | None = None) -> tuple[Contact, Contact]:
        """Undo a merge: returns ``(kept, restored)``. The absorbed contact comes back with its
        id, addresses, profile and conversations as before the merge; conversations begun since
        from one of its addresses go with it; the kept contact keeps only what was its own and
        what changed after the merge. Publishes ``contact.unmerged``. :class:`NotFoundError`
        for an unknown merge, :class:`MergeConflictError` when already undone or when the kept
        contact was merged into another since (undo that merge first)."""
        return await _contacts.unmerge(self.storage, self.publisher, merge_id, by=by)

    async def contact_timeline(self, contact_id: str, *, limit: int = 50,
                               before: str | None = None) -> ContactTimeline:
        """The customer's whole story: the contact, every address, the profile, its
        conversations, and the messages of all of them on every channel merged by
        ``created_at`` (oldest first), each naming its conversation and channel. A page holds
        the newest ``limit`` (at most 500) messages; pass ``next_before`` as ``before`` for
        older ones. :class:`NotFoundError` for an unknown contact."""
        return await _contacts.contact_timeline(self.storage, contact_id, limit=limit, before=before)

    async def update_message(self, message: Message) -> None:
        """Store a changed message (same id) and publish ``message.updated`` — for plugins that
        enrich messages later. Prefer :meth:`modify_message` when others may change it too."""
        await self.mutations.update_message(message)

    async def modify_message(self, message_id: str,
                             change: Callable[[Message], Message | None]) -> Message | None:
        """Change a stored message atomically and publish ``message.updated`` if it changed.

        ``change`` receives the message as stored and returns the new version (or ``None`` to
        leave it); it runs inside the store's transaction, so it must be quick and do no I/O.
        Two plugins adding a transcript and a downloaded file never overwrite each other.
        """
        return await self.mutations.modify_message(message_id, change)

    async def modify_contact(self, contact: str | Address, change: Callable[[Contact], Contact | None],
                             *, reason: str = "profile") -> Contact | None:
        """Change a contact atomically (by id, or by one of its addresses) and publish
        ``contact.updated`` with ``change=reason`` when it changed. ``change`` runs inside the
        store's transaction (quick, no I/O), as in :meth:`modify_message`; found by address
        inside the transaction, it is right even if contacts were just merged."""
        return await self.mutations.modify_contact(contact, change, reason=reason)

    async def start_conversation(self, channel_key: str, to: Address | str, *,
                                 subject: str | None = None) -> Conversation:
        """The open conversation with ``to`` on ``channel_key``, created if needed (for
        messages we start, like a proactive SMS)."""
        return await self.outbound.start_conversation(channel_key, to, subject=subject)

    async def send(
        self, conversation_id: str, text: str | None = None, *, parts: Sequence[Part] | None = None,
        author: Author | None = None, reply_to: str | None = None, subject: str | None = None,
        metadata: Mapping[str, Any] | None = None, idempotency_key: str | None = None,
        wait: bool = False,
    ) -> Message:
        """Queue a reply in a conversation and return the stored outbound message.

        Renders ``text`` / ``parts`` to the channel, refuses (typed errors, nothing stored)
        when the contact opted out or the reply window is closed without an allowed fallback,
        then hands the message to the durable outbox. ``wait=True`` returns only once the
        vendor accepted it or it failed for good (``status`` says which). A repeated
        ``idempotency_key`` returns the message queued the first time.
        """
        return await self.outbound.send(
            conversation_id, text, parts=parts, author=author, reply_to=reply_to, subject=subject,
            metadata=metadata, idempotency_key=idempotency_key, wait=wait)

    async def close_conversation(self, conversation_id: str) -> Conversation:
        """Close a conversation; the customer's next message opens a new one."""
        return await self.storage.set_conversation_status(conversation_id, "closed")

    async def reopen_conversation(self, conversation_id: str) -> Conversation:
        """Open a closed conversation again (the customer's next message joins it)."""
        return await self.storage.set_conversation_status(conversation_id, "open")

    async def update_conversation(self, conversation: Conversation) -> None:
        """Replace a stored conversation (subject, status, metadata…)."""
        await self.storage.update_conversation(conversation)

    async def service_levels(
        self, *, since: datetime | None = None, until: datetime | None = None,
        targets: Mapping[str, float] | None = None, goal: float = 0.8, channel_key: str | None = None,
    ) -> ServiceLevelReport:
        """First-response and response times per conversation and channel, the share answered
        within target (default 80% within 40 s on chat channels, 4 h on email; bot replies
        counted apart) and open conversations per agent, computed from the store. ``targets``
        maps a channel kind to seconds."""
        return await compute_service_levels(self.storage, since=since, until=until, targets=targets,
                                            goal=goal, channel_key=channel_key)

    async def replay(self, letter_ids: Sequence[str] | None = None,
                     progress: Callable[[DeadLetter, bool], None] | None = None) -> ReplayReport:
        """Process dead letters again (all not yet replayed, or ``letter_ids``): inbound payloads
        are parsed again from the stored raw request (items stored the first time are
        de-duplicated), outbound sends are queued again. A letter that fails again stays."""
        return await self.replayer.replay(letter_ids, progress)
