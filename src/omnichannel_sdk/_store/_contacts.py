"""Persistence of contacts and their addresses: finding and creating the contact of an inbound
message, the merge proposals verified addresses make, opt-outs, and the customer's timeline.

The SQL lives here; which addresses name the same person comes from
:mod:`omnichannel_sdk._contact_rules`. :class:`ContactSql` is a part of
:class:`~omnichannel_sdk._store._sql.SqlStore` (merges are in :mod:`._merges`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._contact_rules import identity, pair_id, same_person_reason
from .._errors import NotFoundError
from .._ids import new_id
from .._models import Address, Contact, Conversation, MergeProposal, Message
from .._timeline import ContactTimeline, TimelineItem
from ._conversation_rows import CONVERSATION_COLUMNS, conversation_from_row
from ._copies import constructed
from ._merges import ContactChanges, MergeSql, dump
from ._parsed import parsed_contact, remember_contact
from ._tx import UNREAD, Unread

if TYPE_CHECKING:
    from ._tx import Tx

__all__ = ["ContactChanges", "ContactSql", "new_contact"]

MAX_TIMELINE = 500
"""The most messages one timeline page holds."""


class ContactSql(MergeSql):
    """Contacts, addresses and proposals in SQL (with the merges of :class:`MergeSql`)."""

    # -- reads ---------------------------------------------------------------------------------

    async def get_contact(self, contact_id: str) -> Contact | None:
        """The contact, or ``None``."""
        return await self._read(lambda tx: self._contact(tx, contact_id))

    async def find_contact(self, address: Address) -> Contact | None:
        """The contact owning ``address``, or ``None``."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT c.data FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id "
            "WHERE a.channel = $1 AND a.handle = $2", address.channel, address.handle))
        return Contact.model_validate_json(row[0]) if row else None

    async def contact_timeline(self, contact_id: str, *, limit: int = 50,
                               before: str | None = None) -> ContactTimeline:
        """The contact, its addresses, profile and conversations, and a page of the messages of
        all its conversations on every channel by ``created_at`` (oldest first): the newest
        ``limit``, or those older than the message ``before``. :class:`NotFoundError` for an
        unknown contact or ``before``."""
        limit = max(1, min(int(limit), MAX_TIMELINE))

        async def unit(tx: Tx) -> ContactTimeline:
            contact = await self._contact(tx, contact_id)
            if contact is None:
                raise NotFoundError(f"no contact {contact_id!r}")
            conversations = [conversation_from_row(r) for r in await tx.fetchall(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations "  # noqa: S608 - constants
                "WHERE contact_id = $1 ORDER BY updated_us DESC, id DESC", contact_id)]
            sql = ("SELECT m.data FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                   "WHERE c.contact_id = $1")
            args: list[Any] = [contact_id]
            if before is not None:
                row = await tx.fetchone("SELECT created_us FROM messages WHERE id = $1", before)
                if row is None:
                    raise NotFoundError(f"no message {before!r}")
                args += [int(row[0]), before]
                sql += " AND (m.created_us < $2 OR (m.created_us = $2 AND m.id < $3))"
            args.append(limit + 1)
            sql += f" ORDER BY m.created_us DESC, m.id DESC LIMIT ${len(args)}"
            rows = await tx.fetchall(sql, *args)
            messages = [Message.model_validate_json(r[0]) for r in rows[:limit]]
            messages.reverse()
            items = [TimelineItem(message=m, conversation_id=m.conversation_id, channel=m.channel,
                                  channel_key=m.channel_key) for m in messages]
            more = len(rows) > limit
            return ContactTimeline(contact=contact, addresses=contact.addresses,
                                   profile=contact.profile, conversations=conversations,
                                   items=items, next_before=messages[0].id if more else None)

        return await self._read(unit)

    # -- resolution (inside ingest) ------------------------------------------------------------

    async def _resolve_contact(
        self, tx: Tx, addresses: list[Address], known_id: str | None = None,
        changes: ContactChanges | None = None, *, known: Contact | None = None,
        profile: dict[str, Any] | None = None, owner: str | Unread | None = UNREAD,
    ) -> Contact:
        """Find the contact of the first known address (or ``known_id``: ``known`` when it was
        read already in this transaction; ``owner``: the JSON of the contact owning the first
        address, when read already); attach the others. A new contact gets ``profile``.

        The addresses are proven by the vendor: one that already belongs to another contact
        means both are one person, and the two are merged into the older one (a recorded,
        reversible merge). A new address that names someone on another channel (the same phone
        number, the same email address) only proposes a merge.
        """
        contact: Contact | None = None
        if known_id:
            contact = (known if known is not None and known.id == known_id
                       else await self._contact(tx, known_id))
        if contact is None:
            for index, address in enumerate(addresses):
                if index == 0 and owner is not UNREAD:
                    data = owner
                else:
                    row = await tx.fetchone(
                        "SELECT c.data FROM contact_addresses a JOIN contacts c ON c.id = a.contact_id "
                        "WHERE a.channel = $1 AND a.handle = $2", address.channel, address.handle)
                    data = row[0] if row else None
                if data is not None:
                    contact = parsed_contact(data)
                    break
        if contact is None:
            return await self._create_contact(tx, addresses, changes, profile)
        have = {(a.channel, a.handle) for a in contact.addresses}
        added: list[Address] = []
        attached: list[Address] = []
        for address in addresses:
            if (address.channel, address.handle) in have:
                continue
            taken = await tx.fetchone(
                "INSERT INTO contact_addresses (channel, handle, contact_id) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING contact_id",
                address.channel, address.handle, contact.id)
            if taken is not None:
                added.append(address)
                attached.append(address)
                have.add((address.channel, address.handle))
                continue
            row = await tx.fetchone(
                "SELECT contact_id FROM contact_addresses WHERE channel = $1 AND handle = $2",
                address.channel, address.handle)
            if row and row[0] != contact.id:
                if added:  # save what was attached so far before merging
                    contact = contact.model_copy(update={"addresses": [*contact.addresses, *added]})
                    added = []
                    await self._save_contact(tx, contact)
                contact = await self._merge_contacts(tx, contact, str(row[0]), changes)
                have = {(a.channel, a.handle) for a in contact.addresses}
        if added:
            update: dict[str, Any] = {"addresses": [*contact.addresses, *added]}
            if contact.display_name is None:
                update["display_name"] = next((a.display_name for a in added if a.display_name), None)
            contact = contact.model_copy(update=update)
            await self._save_contact(tx, contact)
        if attached:
            await self._propose_same_person(tx, contact.id, attached, changes)
        return contact

    async def _contact_if_needed(
        self, tx: Tx, addresses: list[Address], conversation: Conversation,
        changes: ContactChanges | None = None,
    ) -> Contact | None:
        """The conversation's contact, loaded only when ``addresses`` bring something new."""
        known = {(a.channel, a.handle) for a in conversation.participants}
        if all((a.channel, a.handle) in known for a in addresses):
            return None  # the common case of a returning customer: no read needed
        return await self._resolve_contact(tx, addresses, conversation.contact_id, changes)

    async def _create_contact(self, tx: Tx, addresses: list[Address],
                              changes: ContactChanges | None = None,
                              profile: dict[str, Any] | None = None) -> Contact:
        """A new contact owning ``addresses`` (those no one else claimed meanwhile), with
        ``profile`` (the first message's profile fields: stored with the contact instead of
        by an update after it)."""
        contact_id = new_id("ct")
        unique: list[Address] = []
        for address in addresses:
            if any((a.channel, a.handle) == (address.channel, address.handle) for a in unique):
                continue
            owner = await tx.fetchone(
                "INSERT INTO contact_addresses (channel, handle, contact_id) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING contact_id",
                address.channel, address.handle, contact_id)
            if owner is not None:
                unique.append(address)
            elif not unique:
                # another transaction created this person a moment ago: use theirs
                return await self._resolve_contact(tx, addresses, None, changes, profile=profile)
        name = next((a.display_name for a in addresses if a.display_name), None)
        contact = new_contact(contact_id, name, unique, profile)
        await self._insert_contact(tx, contact)
        await self._propose_same_person(tx, contact.id, unique, changes)
        return contact

    async def _insert_contact(self, tx: Tx, contact: Contact) -> None:
        data = dump(contact)
        await tx.execute("INSERT INTO contacts (id, data) VALUES ($1, $2)", contact.id, data)
        remember_contact(data, contact)  # its next message reads it: no parse

    async def _set_opt(self, tx: Tx, contact: Contact, channel: str, opted_out: bool) -> Contact:
        current = set(contact.opted_out)
        wanted = current | {channel} if opted_out else current - {channel}
        if wanted != current:
            contact = contact.model_copy(update={"opted_out": sorted(wanted)})
            await self._save_contact(tx, contact)
        return contact

    # -- proposals -----------------------------------------------------------------------------

    async def _add_proposal(self, tx: Tx, proposal: MergeProposal,
                            changes: ContactChanges | None) -> None:
        """Record a proposal unless the pair already has one (open, confirmed or rejected: a
        rejected pair is not proposed again)."""
        a, b = proposal.contact_id, proposal.existing_contact_id
        exists = await tx.fetchone(  # ids of 0.1 named the claimant first
            "SELECT 1 FROM merge_proposals WHERE id IN ($1, $2, $3)",
            pair_id(a, b), f"{a}~{b}", f"{b}~{a}")
        if exists:
            return
        inserted = await tx.fetchone(
            "INSERT INTO merge_proposals (id, status, data) VALUES ($1, 'open', $2) "
            "ON CONFLICT DO NOTHING RETURNING id", proposal.id, dump(proposal))
        if inserted is not None and changes is not None:
            changes.proposals.append(proposal)

    async def _propose_merge(self, tx: Tx, contact_id: str, address: Address, message: Message,
                             changes: ContactChanges | None = None) -> None:
        """An unproven address never joins a contact: record a proposal when another owns it."""
        row = await tx.fetchone(
            "SELECT contact_id FROM contact_addresses WHERE channel = $1 AND handle = $2",
            address.channel, address.handle)
        if row is None or row[0] == contact_id:
            return
        proposal = MergeProposal(
            id=pair_id(contact_id, str(row[0])), contact_id=contact_id,
            existing_contact_id=str(row[0]), address=address, message_id=message.id,
            created_at=message.received_at, reason="claimed", verified=False)
        await self._add_proposal(tx, proposal, changes)

    async def _propose_same_person(self, tx: Tx, contact_id: str, addresses: Sequence[Address],
                                   changes: ContactChanges | None) -> None:
        """Propose merging ``contact_id`` with each contact owning a verified address on another
        channel that names the same person (the same E.164 number on SMS and WhatsApp)."""
        for address in addresses:
            if identity(address) is None:
                continue  # a visitor id or a PSID names no one elsewhere: no query
            rows = await tx.fetchall(
                "SELECT channel, handle, contact_id FROM contact_addresses "
                "WHERE handle = $1 AND channel <> $2 AND contact_id <> $3",
                address.handle, address.channel, contact_id)
            for channel, handle, other in rows:
                matched = Address(channel=str(channel), handle=str(handle))
                reason = same_person_reason(address, matched)
                if reason is None:
                    continue
                proposal = MergeProposal(
                    id=pair_id(contact_id, str(other)), contact_id=contact_id,
                    existing_contact_id=str(other), address=address, matched=matched,
                    created_at=datetime.now(UTC), reason=reason, verified=True)
                await self._add_proposal(tx, proposal, changes)

    # -- changes by id -------------------------------------------------------------------------

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None]
    ) -> Contact | None:
        """Read, change and write a contact (by id or address) in one transaction.

        ``change`` returns the new contact or ``None`` to leave it; returns the stored result,
        or ``None`` when no such contact exists. Addresses are not changed here.
        """

        async def unit(tx: Tx) -> Contact | None:
            if isinstance(contact, Address):
                row = await tx.fetchone(
                    "SELECT contact_id FROM contact_addresses WHERE channel = $1 AND handle = $2",
                    contact.channel, contact.handle)
                if row is None:
                    return None
                contact_id = str(row[0])
            else:
                contact_id = contact
            current = await self._contact(tx, contact_id, lock=True)
            if current is None:
                return None
            updated = change(current)
            if updated is None or updated == current:
                return current
            if updated.id != current.id or updated.addresses != current.addresses:
                raise ValueError("a change may not alter the contact id or addresses")
            await self._save_contact(tx, updated)
            return updated

        return await self._write(unit)

    async def set_opted_out(self, contact_id: str, channel: str, opted_out: bool) -> Contact:
        """Add or remove ``channel`` from the contact's opt-outs."""

        async def unit(tx: Tx) -> Contact:
            found = await self._contact(tx, contact_id)
            if found is None:
                raise NotFoundError(f"no contact {contact_id!r}")
            return await self._set_opt(tx, found, channel, opted_out)

        return await self._write(unit)


def new_contact(contact_id: str, name: str | None, addresses: list[Address],
                profile: dict[str, Any] | None) -> Contact:
    """A contact the store creates for an inbound message: ``addresses`` (the caller's fresh
    list) and a copy of ``profile``. Shared by the general path and PostgreSQL's
    one-statement new thread."""
    fields: dict[str, Any] = {"id": contact_id, "display_name": name, "addresses": addresses,
                              "profile": dict(profile or {}), "opted_out": []}
    if (type(contact_id) is str and type(name) in (str, type(None))
            and all(type(a) is Address for a in addresses)
            and all(type(k) is str for k in fields["profile"])):
        # validated addresses and exact strings are what validation gives back: a new
        # customer's contact is not validated again
        return constructed(Contact, fields)
    return Contact(**fields)
