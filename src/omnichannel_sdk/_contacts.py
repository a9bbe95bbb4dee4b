"""The helpdesk's side of contacts: merge proposals to decide, merges to undo, and the
customer's whole story (one timeline across every channel). The hub's methods of the same
names delegate here; the store keeps the rows, :mod:`._contact_rules` decides."""

from __future__ import annotations

from typing import Literal

from ._errors import NotFoundError
from ._events import ContactMerged, ContactUnmerged, ContactUpdated
from ._models import Contact, ContactMerge, MergeProposal
from ._publisher import Publisher
from ._store import SqlStore
from ._timeline import ContactTimeline

__all__ = ["confirm_merge", "contact_timeline", "merge_contacts", "merge_proposals", "merges",
           "reject_merge", "unmerge"]

ProposalStatus = Literal["open", "confirmed", "rejected"]


async def merge_proposals(store: SqlStore, status: ProposalStatus | None = "open") -> list[MergeProposal]:
    """See :meth:`Hub.merge_proposals`."""
    return await store.list_merge_proposals(status)


def _announce(publisher: Publisher, contact: Contact, merged: list[str], merge: ContactMerge) -> None:
    publisher.publish(ContactUpdated(contact=contact, change="merged", merged=merged))
    publisher.publish(ContactMerged(merge=merge, contact=contact))


async def confirm_merge(store: SqlStore, publisher: Publisher, proposal_id: str, *,
                        by: str | None = None) -> Contact:
    """See :meth:`Hub.confirm_merge`."""
    contact, merged, merge = await store.confirm_merge(proposal_id, by=by)
    _announce(publisher, contact, merged, merge)
    return contact


async def reject_merge(store: SqlStore, proposal_id: str, *, by: str | None = None) -> None:
    """See :meth:`Hub.reject_merge`."""
    await store.reject_merge(proposal_id, by=by)


async def merge_contacts(store: SqlStore, publisher: Publisher, contact_id: str, other_id: str, *,
                         by: str | None = None) -> Contact:
    """See :meth:`Hub.merge_contacts`."""
    contact, merged, merge = await store.merge_contacts(contact_id, other_id, by=by)
    _announce(publisher, contact, merged, merge)
    return contact


async def merges(store: SqlStore, contact_id: str) -> list[ContactMerge]:
    """See :meth:`Hub.merges`."""
    return await store.list_merges(contact_id)


async def unmerge(store: SqlStore, publisher: Publisher, merge_id: str, *,
                  by: str | None = None) -> tuple[Contact, Contact]:
    """See :meth:`Hub.unmerge`."""
    kept, restored, record = await store.unmerge(merge_id, by=by)
    publisher.publish(ContactUnmerged(merge=record, contact=kept, restored=restored))
    return kept, restored


async def contact_timeline(store: SqlStore, contact_id: str, *, limit: int = 50,
                           before: str | None = None) -> ContactTimeline:
    """See :meth:`Hub.contact_timeline`."""
    if not isinstance(contact_id, str) or not contact_id:
        raise NotFoundError("no contact id given")
    return await store.contact_timeline(contact_id, limit=limit, before=before)
