"""The helpdesk's side of contacts: merge proposals to decide, merges to undo, and the
customer's whole story (one timeline across every channel). The hub's methods of the same
names delegate here; the store keeps the rows, :mod:`._contact_rules` decides."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._errors import NotFoundError
from ._events import ContactMerged, ContactUnmerged, ContactUpdated
from ._models import Contact, ContactMerge, MergeProposal
from ._timeline import ContactTimeline

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["confirm_merge", "contact_timeline", "merge_contacts", "merge_proposals", "merges",
           "reject_merge", "unmerge"]

ProposalStatus = Literal["open", "confirmed", "rejected"]


async def merge_proposals(hub: Hub, status: ProposalStatus | None = "open") -> list[MergeProposal]:
    """See :meth:`Hub.merge_proposals`."""
    return await hub.store.list_merge_proposals(status)


def _announce(hub: Hub, contact: Contact, merged: list[str], merge: ContactMerge) -> None:
    hub._publish(ContactUpdated(contact=contact, change="merged", merged=merged))
    hub._publish(ContactMerged(merge=merge, contact=contact))


async def confirm_merge(hub: Hub, proposal_id: str, *, by: str | None = None) -> Contact:
    """See :meth:`Hub.confirm_merge`."""
    contact, merged, merge = await hub.store.confirm_merge(proposal_id, by=by)
    _announce(hub, contact, merged, merge)
    return contact


async def reject_merge(hub: Hub, proposal_id: str, *, by: str | None = None) -> None:
    """See :meth:`Hub.reject_merge`."""
    await hub.store.reject_merge(proposal_id, by=by)


async def merge_contacts(hub: Hub, contact_id: str, other_id: str, *,
                         by: str | None = None) -> Contact:
    """See :meth:`Hub.merge_contacts`."""
    contact, merged, merge = await hub.store.merge_contacts(contact_id, other_id, by=by)
    _announce(hub, contact, merged, merge)
    return contact


async def merges(hub: Hub, contact_id: str) -> list[ContactMerge]:
    """See :meth:`Hub.merges`."""
    return await hub.store.list_merges(contact_id)


async def unmerge(hub: Hub, merge_id: str, *, by: str | None = None) -> tuple[Contact, Contact]:
    """See :meth:`Hub.unmerge`."""
    kept, restored, record = await hub.store.unmerge(merge_id, by=by)
    hub._publish(ContactUnmerged(merge=record, contact=kept, restored=restored))
    return kept, restored


async def contact_timeline(hub: Hub, contact_id: str, *, limit: int = 50,
                           before: str | None = None) -> ContactTimeline:
    """See :meth:`Hub.contact_timeline`."""
    if not isinstance(contact_id, str) or not contact_id:
        raise NotFoundError("no contact id given")
    return await hub.store.contact_timeline(contact_id, limit=limit, before=before)
