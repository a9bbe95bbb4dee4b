"""Storing inbound messages in SQL: de-duplication, threading, the contact, the reply window
and the raw request, in one transaction per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .._contact_rules import opt_change as contact_opt_change
from .._ids import new_id
from .._models import STATUS_RANK, Address, Contact, Conversation, MediaPart, Message
from .._numbered import answered_action, numbered_reply
from ._base import IngestItem, IngestOutcome, Job, RawPayload
from ._contacts import ContactChanges, ContactSql
from ._conversation_rows import utc
from ._conversations import ConversationSql
from ._copies import constructed, updated_own
from ._messages import MessageSql
from ._parsed import parsed_contact
from ._tx import UNREAD, Tx, now_us, to_us

__all__ = ["CLAIM_SQL", "THREAD_CONTACT_OWNER_SQL", "THREAD_CONTACT_SQL", "THREAD_OWNER_SQL",
           "THREAD_SQL", "Claimed", "IngestSql"]

CLAIM_SQL = ("INSERT INTO message_refs (channel_key, external_id, message_id) VALUES ($1, $2, $3) "
             "ON CONFLICT DO NOTHING RETURNING message_id")
"""A message's claim of its vendor id: a row when it is the first to hold it."""

THREAD_SQL = ("SELECT c.data, c.last_inbound_us, c.window_expires_us FROM conversations c "
              "WHERE c.channel_key = $1 AND c.thread_key = $2 AND c.status = 'open'")
"""A thread's open conversation (``CONVERSATION_COLUMNS``)."""

THREAD_CONTACT_SQL = (
    "SELECT c.data, c.last_inbound_us, c.window_expires_us, k.data FROM conversations c "
    "LEFT JOIN contacts k ON k.id = c.contact_id "
    "WHERE c.channel_key = $1 AND c.thread_key = $2 AND c.status = 'open'")
"""A thread's open conversation and its contact's JSON."""


_THREAD_OWNER = (
    "SELECT c.data, c.last_inbound_us, c.window_expires_us, {contact}, "
    "CASE WHEN c.data IS NULL THEN (SELECT o.data FROM contact_addresses a "
    "JOIN contacts o ON o.id = a.contact_id WHERE a.channel = $3 AND a.handle = $4) END "
    "FROM (SELECT 1) LEFT JOIN conversations c "
    "ON c.channel_key = $1 AND c.thread_key = $2 AND c.status = 'open' {join}")
THREAD_OWNER_SQL = _THREAD_OWNER.format(contact="NULL", join="")
"""A thread's open conversation (``CONVERSATION_COLUMNS``, then ``NULL``), and, when it has
none, the JSON of the contact owning an address (its last column, read only then: ``CASE``
runs the sub-select for no other row). Always one row."""
THREAD_CONTACT_OWNER_SQL = _THREAD_OWNER.format(
    contact="k.data", join="LEFT JOIN contacts k ON k.id = c.contact_id")
"""``THREAD_OWNER_SQL`` with the conversation's contact's JSON in the fourth column."""


@dataclass(slots=True)
class Claimed:
    """A claimed vendor id, and what was read with the claim."""

    thread_read: bool
    """Whether the thread's open conversation was read (``conversation_row``)."""
    conversation_row: Sequence[Any] | None = None
    """The conversation (``CONVERSATION_COLUMNS`` first), ``None`` if the thread has none open."""
    contact_data: str | None = None
    """The conversation's contact's JSON, when asked for and the contact exists."""
    owner_read: bool = False
    """Whether, the thread having no open conversation, the contact owning the message's first
    contact address was read too (``owner_data``)."""
    owner_data: str | None = None
    """That contact's JSON (``None``: no one owns the address)."""


class IngestSql(MessageSql, ConversationSql, ContactSql):
    """Inbound messages and raw payloads for a store that provides the transactions."""

    async def ingest(self, items: list[IngestItem], raw: RawPayload | None) -> list[IngestOutcome]:
        """Store a request's raw payload and its messages atomically, skipping duplicates."""

        async def unit(tx: Tx) -> list[IngestOutcome]:
            if raw is not None:
                await self._insert_raw(tx, raw)
            outcomes = [await self._ingest_one(tx, item) for item in items]
            if self.feed_log is not None:
                await self.feed_log.append_ingest(tx, outcomes)
            return outcomes

        return await self._write(unit)

    async def _ingest_one(self, tx: Tx, item: IngestItem) -> IngestOutcome:
        draft = item.draft
        conv_channel, conv_key = item.thread_channel or (item.channel, item.channel_key)
        # without a hint or references the conversation is the thread's: read it (and, when
        # the vendor sent profile fields, its contact) with the claim
        by_thread = not draft.conversation_hint and not draft.references
        claimed = await self._claim(tx, item, (conv_key, item.thread_key) if by_thread else None,
                                    with_contact=bool(draft.profile))
        if claimed is None:
            return IngestOutcome(duplicate=True)

        conversation: Conversation | None = None
        if draft.conversation_hint:
            conversation = await self._conversation(tx, draft.conversation_hint)
            allowed = {item.channel_key, item.thread_channel[1] if item.thread_channel else None}
            if conversation is not None and conversation.channel_key not in allowed:
                conversation = None
        if conversation is None and draft.references:
            conversation = await self._conversation_by_refs(tx, item.channel_key, draft.references)
        reply_to = None
        if draft.references:
            row = await tx.fetchone(
                "SELECT message_id FROM message_refs WHERE channel_key = $1 AND external_id = $2",
                item.channel_key, draft.references[-1])
            reply_to = row[0] if row else None

        contact: Contact | None
        changes = ContactChanges()
        created = False
        # reply windows run from when the customer wrote (vendor time), never from a future one
        spoke_at = min(draft.created_at or item.received_at, item.received_at)
        if conversation is None:
            participants = [draft.sender, *draft.recipients]
            conversation, created, contact = await self._open_conversation(
                tx, conv_channel, conv_key, item.thread_key, item.contact_addresses,
                participants, draft.subject, now=item.received_at,
                inbound_window=item.window if draft.direction == "inbound" else False,
                changes=changes, spoke_at=spoke_at,
                row=claimed.conversation_row if claimed.thread_read else UNREAD,
                profile=draft.profile, owner=claimed.owner_data if claimed.owner_read else UNREAD)
        else:
            contact = await self._contact_if_needed(tx, item.contact_addresses, conversation, changes)
        contact_moved = bool(changes.merged and contact is not None
                             and conversation.contact_id != contact.id)
        if contact_moved:
            conversation = conversation.model_copy(update={"contact_id": contact.id})  # type: ignore[union-attr]

        parts = list(draft.parts)
        if draft.direction == "inbound":
            # only a reply that is a number reads the last outbound message: no coroutine else
            choice = numbered_reply(parts)
            if choice is not None:
                parts = await self._map_numbered_reply(tx, conversation.id, parts, choice)
        received_at = item.received_at
        fields: dict[str, Any] = {
            "id": item.message_id,
            "channel": item.channel,
            "channel_key": item.channel_key,
            "adapter": item.adapter,
            "external_id": draft.external_id,
            "direction": "outbound" if draft.direction == "outbound" else "inbound",
            "conversation_id": conversation.id,
            "sender": draft.sender,
            "recipients": list(draft.recipients),
            "parts": parts,
            "subject": draft.subject,
            "reply_to": reply_to,
            "created_at": utc(draft.created_at) or received_at,
            "received_at": utc(received_at),
            "status": draft.status or ("received" if draft.direction == "inbound" else "sent"),
            "error": None,
            "author": draft.author,
            "metadata": dict(draft.metadata),
        }
        # every field but the status is a validated model, or one of our own values: validating
        # the message again is a tenth of the insert's cost
        message = (constructed(Message, fields) if fields["status"] in STATUS_RANK
                   else Message(**fields))
        message_json = await self._insert_message(tx, message)
        if item.fetch_media:
            for index, part in enumerate(parts):
                if isinstance(part, MediaPart) and part.url and not part.blob_key:
                    job = Job(id=new_id("job"), kind="media", channel_key=item.channel_key,
                              message_id=message.id, payload={"part": index})
                    await self._insert_job(tx, job, now_us())

        updates: dict[str, Any] = {}
        if message.direction == "inbound" and not created:
            # a late webhook of an older message does not move the window back
            last = max(spoke_at, conversation.last_inbound_at) if conversation.last_inbound_at else spoke_at
            updates["last_inbound_at"] = last
            if item.window is not None:
                updates["window_expires_at"] = last + item.window
        known = {(a.channel, a.handle) for a in conversation.participants}
        new_participants = [a for a in (draft.sender, *draft.recipients)
                            if (a.channel, a.handle) not in known]
        if new_participants:
            updates["participants"] = [*conversation.participants, *new_participants]
        if not created:
            # the conversation is this unit's own (a row's parse is handed out as a copy, as
            # is the contact's move above): the window is set on it, not on a second copy
            conversation = updated_own(conversation, updates)
            if new_participants or contact_moved:
                await self._save_conversation(tx, conversation, to_us(received_at) or 0)
            else:  # the common case: the window moved, nothing the JSON holds did
                await self._save_window(tx, conversation, to_us(received_at) or 0)

        opt_change = contact_opt_change(parts)
        if contact is None and (opt_change or draft.profile):
            # the conversation's contact, as read with the claim when it was (nothing of this
            # unit wrote it since)
            stored = (parsed_contact(claimed.contact_data)
                     if claimed.contact_data is not None and claimed.thread_read else None)
            if stored is not None and stored.id == conversation.contact_id and _owns(
                    stored, item.contact_addresses):
                contact = stored  # what _resolve_contact gives it: nothing to attach or merge
            else:
                contact = await self._resolve_contact(tx, item.contact_addresses,
                                                      conversation.contact_id, known=stored)
        if opt_change and contact is not None:
            contact = await self._set_opt(tx, contact, item.channel, opt_change == "opt_out")
        if draft.profile and contact is not None:
            profile = {**contact.profile, **draft.profile}
            if profile != contact.profile:
                contact = contact.model_copy(update={"profile": profile})
                await self._save_contact(tx, contact)
        for address in draft.claimed_addresses:
            await self._propose_merge(tx, conversation.contact_id, address, message, changes)
        return IngestOutcome(duplicate=False, message=message, conversation=conversation,
                             conversation_created=created, contact=contact, opt_change=opt_change,
                             merged=changes.merged, merges=changes.merges,
                             proposals=changes.proposals, message_json=message_json)

    async def _claim(self, tx: Tx, item: IngestItem, thread: tuple[str, str] | None,
                     *, with_contact: bool) -> Claimed | None:
        """Claim the message's vendor id on its channel key: ``None`` if another message holds
        it (a duplicate). With ``thread`` (channel key, thread key), also read that thread's
        open conversation and, ``with_contact``, its contact's JSON.

        With no open conversation, the same read finds the contact owning the message's first
        contact address (``owner_data``, as ``_resolve_contact`` would read it next: nothing
        in between writes): a new customer's first message makes one statement fewer.

        Two statements here; a backend that can send both as one overrides this."""
        claimed = await tx.fetchone(CLAIM_SQL, item.channel_key, item.draft.external_id,
                                    item.message_id)
        if claimed is None:
            return None
        if thread is None:
            return Claimed(thread_read=False)
        first = item.contact_addresses[0] if item.contact_addresses else None
        if first is None:
            row = await tx.fetchone(THREAD_CONTACT_SQL if with_contact else THREAD_SQL, *thread)
            if row is None:
                return Claimed(thread_read=True)
        else:
            row = await tx.fetchone(THREAD_CONTACT_OWNER_SQL if with_contact else THREAD_OWNER_SQL,
                                    *thread, first.channel, first.handle)
            if row is None or row[0] is None:  # (always a row)
                return Claimed(thread_read=True, owner_read=True,
                               owner_data=row[4] if row is not None else None)
        return Claimed(thread_read=True, conversation_row=row,
                       contact_data=row[3] if with_contact else None)

    async def _map_numbered_reply(self, tx: Tx, conversation_id: str, parts: list[Any],
                                  choice: int) -> list[Any]:
        """An inbound "2" (``choice`` 1, what :func:`numbered_reply` found) answering a
        numbered list maps back to the second action."""
        row = await tx.fetchone(
            "SELECT data FROM messages WHERE conversation_id = $1 AND direction = 'outbound' "
            "ORDER BY id DESC LIMIT 1", conversation_id)
        if not row:
            return parts
        numbered = orjson.loads(row[0]).get("metadata", {}).get("numbered_actions")
        return answered_action(parts, numbered, choice)


def _owns(contact: Contact, addresses: list[Address]) -> bool:
    """Whether ``contact`` has every one of ``addresses`` (the common returning customer)."""
    have = {(a.channel, a.handle) for a in contact.addresses}
    return all((a.channel, a.handle) in have for a in addresses)
