"""Persistence of contact merges: the decisions on merge proposals, the merges themselves and
the records that let one be undone.

The SQL lives here; what it decides (who is kept, what a merge makes, what undoing one restores)
comes from :mod:`omnichannel_sdk._contact_rules`. :class:`MergeSql` is a part of
:class:`~omnichannel_sdk._store._sql.SqlStore`, written against its tiny transaction protocol.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._contact_rules import kept_and_absorbed, merged_contact, pair_id, returns_to_absorbed, unmerged_kept
from .._errors import MergeConflictError, NotFoundError
from .._ids import new_id
from .._models import Address, Contact, ContactMerge, Conversation, MergeProposal
from ._conversation_rows import CONVERSATION_COLUMNS, conversation_from_row
from ._parsed import parsed_contact

if TYPE_CHECKING:
    from ._tx import Tx

__all__ = ["ContactChanges", "MergeSql"]

T = TypeVar("T")

@dataclass
class ContactChanges:
    """What resolving contacts did inside one transaction (for the events that follow)."""

    merged: list[str] = field(default_factory=list)
    """Ids of the contacts merged away."""
    merges: list[ContactMerge] = field(default_factory=list)
    """The merge records made."""
    proposals: list[MergeProposal] = field(default_factory=list)
    """The merge proposals made."""


def dump(model: Any) -> str:
    """A model as the JSON the store keeps."""
    return str(model.model_dump_json(exclude_none=False))


def _us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


class MergeSql(abc.ABC):
    """Merge proposals' decisions and merges in SQL, for a store that provides the transactions."""

    lock_clause = ""
    """Appended to reads that precede a write of the same row (``FOR UPDATE`` where needed)."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` in a write transaction."""

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` against a consistent read view."""

    @abc.abstractmethod
    async def _save_conversation(self, tx: Tx, conversation: Conversation, updated_us: int) -> None:
        """Write a conversation's row (its contact id included)."""

    async def _contact(self, tx: Tx, contact_id: str, *, lock: bool = False) -> Contact | None:
        # lock_clause is a class constant, not input
        sql = "SELECT data FROM contacts WHERE id = $1" + (self.lock_clause if lock else "")  # noqa: S608
        row = await tx.fetchone(sql, contact_id)
        return parsed_contact(row[0]) if row else None

    async def _save_contact(self, tx: Tx, contact: Contact) -> None:
        await tx.execute("UPDATE contacts SET data = $2 WHERE id = $1", contact.id, dump(contact))

    async def list_merge_proposals(
        self, status: Literal["open", "confirmed", "rejected"] | None = "open",
    ) -> list[MergeProposal]:
        """Merge proposals with ``status`` (``None``: all), oldest first. Open proposals whose
        contacts no longer both exist (one was merged otherwise) are left out."""

        async def unit(tx: Tx) -> list[MergeProposal]:
            if status is None:
                rows = await tx.fetchall("SELECT data FROM merge_proposals")
            else:
                rows = await tx.fetchall("SELECT data FROM merge_proposals WHERE status = $1", status)
            found = [MergeProposal.model_validate_json(r[0]) for r in rows]
            if status == "open" and found:
                ids = sorted({i for p in found for i in (p.contact_id, p.existing_contact_id)})
                marks = ", ".join(f"${n}" for n in range(1, len(ids) + 1))
                alive = {str(r[0]) for r in await tx.fetchall(
                    f"SELECT id FROM contacts WHERE id IN ({marks})", *ids)}  # noqa: S608 ($n only)
                found = [p for p in found
                         if p.contact_id in alive and p.existing_contact_id in alive]
            return sorted(found, key=lambda p: (p.created_at, p.id))

        return await self._read(unit)

    async def list_merges(self, contact_id: str) -> list[ContactMerge]:
        """Every merge record naming ``contact_id`` (kept or absorbed), oldest first, undone
        ones included (their ``unmerged_at`` is set)."""
        rows = await self._read(lambda tx: tx.fetchall(
            "SELECT data FROM contact_merges WHERE kept_id = $1 OR absorbed_id = $1 "
            "ORDER BY merged_us, id", contact_id))
        return [ContactMerge.model_validate_json(r[0]) for r in rows]

    async def get_merge(self, merge_id: str) -> ContactMerge | None:
        """One merge record, or ``None``."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT data FROM contact_merges WHERE id = $1", merge_id))
        return ContactMerge.model_validate_json(row[0]) if row else None

    async def _proposal(self, tx: Tx, proposal_id: str) -> MergeProposal:
        row = await tx.fetchone(  # lock_clause is a class constant, not input
            f"SELECT data FROM merge_proposals WHERE id = $1{self.lock_clause}",  # noqa: S608
            proposal_id)
        if row is None:
            raise NotFoundError(f"no merge proposal {proposal_id!r}")
        proposal = MergeProposal.model_validate_json(row[0])
        if proposal.status != "open":
            raise MergeConflictError(f"merge proposal {proposal_id!r} is already {proposal.status}")
        return proposal

    async def _decide(self, tx: Tx, proposal: MergeProposal,
                      status: Literal["confirmed", "rejected"], by: str | None) -> MergeProposal:
        decided = proposal.model_copy(update={
            "status": status, "decided_at": datetime.now(UTC), "decided_by": by})
        await tx.execute("UPDATE merge_proposals SET status = $2, data = $3 WHERE id = $1",
                         proposal.id, status, dump(decided))
        return decided

    async def confirm_merge(self, proposal_id: str, *, by: str | None = None,
                            ) -> tuple[Contact, list[str], ContactMerge]:
        """Merge the two contacts of an open proposal (into the older one) and mark it
        confirmed: the merged contact, the ids merged away and the merge record.
        :class:`NotFoundError` when there is no such proposal (or a contact is gone),
        :class:`MergeConflictError` when it was already decided."""

        async def unit(tx: Tx) -> tuple[Contact, list[str], ContactMerge]:
            proposal = await self._proposal(tx, proposal_id)
            found = await self._contact(tx, proposal.contact_id, lock=True)
            if found is None or await self._contact(tx, proposal.existing_contact_id) is None:
                raise NotFoundError(f"a contact of merge proposal {proposal_id!r} is gone")
            changes = ContactChanges()
            contact = await self._merge_contacts(
                tx, found, proposal.existing_contact_id, changes, by=by, reason="proposal",
                proposal_id=proposal.id)
            return contact, changes.merged, changes.merges[-1]

        return await self._write(unit)

    async def reject_merge(self, proposal_id: str, *, by: str | None = None) -> MergeProposal:
        """Mark an open proposal rejected (the pair is not proposed again); the decided
        proposal. :class:`NotFoundError` / :class:`MergeConflictError` as for confirming."""

        async def unit(tx: Tx) -> MergeProposal:
            return await self._decide(tx, await self._proposal(tx, proposal_id), "rejected", by)

        return await self._write(unit)

    # -- merges --------------------------------------------------------------------------------

    async def merge_contacts(self, contact_id: str, other_id: str, *, by: str | None = None,
                             ) -> tuple[Contact, list[str], ContactMerge]:
        """Merge two contacts the helpdesk says are one person (into the older one)."""
        if contact_id == other_id:
            raise MergeConflictError("a contact cannot be merged with itself")

        async def unit(tx: Tx) -> tuple[Contact, list[str], ContactMerge]:
            contact = await self._contact(tx, contact_id, lock=True)
            if contact is None or await self._contact(tx, other_id) is None:
                raise NotFoundError(f"no contact {contact_id if contact is None else other_id!r}")
            changes = ContactChanges()
            merged = await self._merge_contacts(tx, contact, other_id, changes, by=by,
                                                reason="manual")
            return merged, changes.merged, changes.merges[-1]

        return await self._write(unit)

    async def _merge_contacts(
        self, tx: Tx, contact: Contact, other_id: str, changes: ContactChanges | None, *,
        by: str | None = None, reason: Literal["proposal", "manual", "verified"] = "verified",
        proposal_id: str | None = None,
    ) -> Contact:
        """Merge two contacts into the older one (addresses, conversations, opt-outs, profile)
        and record the merge, so that it can be undone."""
        other = await self._contact(tx, other_id, lock=True)
        if other is None:
            return contact
        keep, gone = kept_and_absorbed(contact, other)
        moved = [Address(channel=str(r[0]), handle=str(r[1])) for r in await tx.fetchall(
            "SELECT channel, handle FROM contact_addresses WHERE contact_id = $1 "
            "ORDER BY channel, handle", gone.id)]
        await tx.execute("UPDATE contact_addresses SET contact_id = $1 WHERE contact_id = $2",
                         keep.id, gone.id)
        kept_own = [str(r[0]) for r in await tx.fetchall(
            "SELECT id FROM conversations WHERE contact_id = $1 ORDER BY id", keep.id)]
        conversation_ids = []
        for conv_row in await tx.fetchall(
                f"SELECT {CONVERSATION_COLUMNS}, updated_us FROM conversations "  # noqa: S608
                "WHERE contact_id = $1 ORDER BY id", gone.id):
            conversation = conversation_from_row(conv_row)
            conversation_ids.append(conversation.id)
            await self._save_conversation(
                tx, conversation.model_copy(update={"contact_id": keep.id}), int(conv_row[3]))
        result = merged_contact(keep, gone)
        await self._save_contact(tx, result)
        await tx.execute("DELETE FROM contacts WHERE id = $1", gone.id)
        now = datetime.now(UTC)
        record = ContactMerge(
            id=new_id("cm"), kept_id=keep.id, absorbed_id=gone.id, merged_at=now, by=by,
            reason=reason, proposal_id=proposal_id, addresses=moved,
            conversation_ids=conversation_ids, kept_conversation_ids=kept_own, kept_before=keep,
            absorbed_before=gone, result=result)
        await tx.execute(
            "INSERT INTO contact_merges (id, kept_id, absorbed_id, merged_us, unmerged_us, data) "
            "VALUES ($1, $2, $3, $4, NULL, $5)", record.id, keep.id, gone.id, _us(now),
            dump(record))
        for pid in {pair_id(keep.id, gone.id), f"{keep.id}~{gone.id}", f"{gone.id}~{keep.id}"}:
            row = await tx.fetchone(
                "SELECT data FROM merge_proposals WHERE id = $1 AND status = 'open'", pid)
            if row:
                await self._decide(tx, MergeProposal.model_validate_json(row[0]), "confirmed", by)
        if changes is not None:
            changes.merged.append(gone.id)
            changes.merges.append(record)
        return result

    async def unmerge(self, merge_id: str, *, by: str | None = None,
                      ) -> tuple[Contact, Contact, ContactMerge]:
        """Undo a merge: the absorbed contact comes back with its id, addresses, profile and
        conversations as before the merge; conversations begun since from one of its addresses
        go with it; the kept contact loses what the merge brought (what changed after the
        merge stays). Returns the kept contact, the restored one and the updated record.
        :class:`NotFoundError` for an unknown merge, :class:`MergeConflictError` when it was
        already undone or the kept contact was merged into another since (undo that first)."""

        async def unit(tx: Tx) -> tuple[Contact, Contact, ContactMerge]:
            row = await tx.fetchone(  # lock_clause is a class constant, not input
                f"SELECT data FROM contact_merges WHERE id = $1{self.lock_clause}",  # noqa: S608
                merge_id)
            if row is None:
                raise NotFoundError(f"no merge {merge_id!r}")
            record = ContactMerge.model_validate_json(row[0])
            if record.unmerged_at is not None:
                raise MergeConflictError(f"merge {merge_id!r} was already undone")
            current = await self._contact(tx, record.kept_id, lock=True)
            if current is None:
                later = await tx.fetchone(
                    "SELECT id FROM contact_merges WHERE absorbed_id = $1 AND unmerged_us IS NULL "
                    "ORDER BY merged_us DESC LIMIT 1", record.kept_id)
                raise MergeConflictError(
                    f"contact {record.kept_id} was merged again since"
                    + (f": unmerge {later[0]} first" if later else ""))
            if await self._contact(tx, record.absorbed_id) is not None:
                raise MergeConflictError(f"contact {record.absorbed_id} exists again")
            restored = record.absorbed_before
            for address in record.addresses:
                await tx.execute(
                    "UPDATE contact_addresses SET contact_id = $1 WHERE channel = $2 AND "
                    "handle = $3 AND contact_id = $4", restored.id, address.channel,
                    address.handle, record.kept_id)
            kept = unmerged_kept(current, record.kept_before, record.result, record.addresses)
            await self._save_contact(tx, kept)
            await tx.execute("INSERT INTO contacts (id, data) VALUES ($1, $2)", restored.id,
                             dump(restored))
            for conv_row in await tx.fetchall(
                    f"SELECT {CONVERSATION_COLUMNS}, updated_us FROM conversations "  # noqa: S608
                    "WHERE contact_id = $1", record.kept_id):
                conversation = conversation_from_row(conv_row)
                if returns_to_absorbed(conversation, record.conversation_ids,
                                       restored.addresses, record.kept_conversation_ids):
                    await self._save_conversation(
                        tx, conversation.model_copy(update={"contact_id": restored.id}),
                        int(conv_row[3]))
            now = datetime.now(UTC)
            undone = record.model_copy(update={"unmerged_at": now, "unmerged_by": by})
            await tx.execute("UPDATE contact_merges SET unmerged_us = $2, data = $3 WHERE id = $1",
                             record.id, _us(now), dump(undone))
            if record.proposal_id:  # the helpdesk undid it: the pair is not proposed again
                await tx.execute(
                    "UPDATE merge_proposals SET status = 'rejected', data = $2 WHERE id = $1",
                    record.proposal_id, await self._rejected_data(tx, record.proposal_id, by))
            return kept, restored, undone

        return await self._write(unit)

    async def _rejected_data(self, tx: Tx, proposal_id: str, by: str | None) -> str:
        row = await tx.fetchone("SELECT data FROM merge_proposals WHERE id = $1", proposal_id)
        if row is None:
            return "{}"
        proposal = MergeProposal.model_validate_json(row[0])
        return dump(proposal.model_copy(update={
            "status": "rejected", "decided_at": datetime.now(UTC), "decided_by": by}))
