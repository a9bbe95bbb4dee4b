"""The rules about contacts, apart from how they are stored: which addresses name the same
person, what merging two contacts makes, what undoing a merge restores, and which events change
a contact's opt-outs.

The store (``_store/_contacts.py``) looks rows up and writes them; everything it decides comes
from here, so the rules read (and are tested) without SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from ._addresses import PHONE_CHANNELS
from ._models import Address, Contact, Conversation, EventPart

__all__ = [
    "OPT_IN_EVENTS",
    "OPT_OUT_EVENTS",
    "identity",
    "kept_and_absorbed",
    "merged_contact",
    "opt_change",
    "pair_id",
    "returns_to_absorbed",
    "same_person_reason",
    "unmerged_kept",
]

OPT_OUT_EVENTS = frozenset({"opt_out", "unsubscribe"})
"""Event names that opt the contact out of the message's channel."""
OPT_IN_EVENTS = frozenset({"opt_in", "subscribe"})
"""Event names that opt the contact back in."""

Key = tuple[str, str]


def opt_change(parts: Sequence[Any]) -> str | None:
    """``"opt_out"`` or ``"opt_in"`` when the message's events change its channel's opt-out
    (the last such event wins), else ``None``."""
    change = None
    for part in parts:
        if isinstance(part, EventPart) and part.name in OPT_OUT_EVENTS | OPT_IN_EVENTS:
            change = "opt_out" if part.name in OPT_OUT_EVENTS else "opt_in"
    return change


def identity(address: Address) -> Key | None:
    """What an address says about the person beyond its channel: ``("phone", E.164)`` for a
    phone number on SMS, WhatsApp, voice or MMS, ``("email", address)`` for an email address
    on any channel; ``None`` for handles that mean nothing elsewhere (PSIDs, visitor ids)."""
    handle = address.handle
    if address.channel in PHONE_CHANNELS:
        # short codes and alphanumeric sender ids are not a person's number
        return ("phone", handle) if handle.startswith("+") and handle[1:].isdigit() else None
    if address.channel == "email" or (handle.count("@") == 1 and " " not in handle
                                      and "." in handle.rsplit("@", 1)[1]):
        return ("email", handle.lower())
    return None


def same_person_reason(new: Address, other: Address) -> Literal["same_phone", "same_email"] | None:
    """Why two verified addresses on different channels name one person (``None``: they don't).
    Addresses on the same channel are one row, owned by one contact: never a proposal."""
    if new.channel == other.channel:
        return None
    mine, theirs = identity(new), identity(other)
    if mine is None or mine != theirs:
        return None
    return "same_phone" if mine[0] == "phone" else "same_email"


def pair_id(a: str, b: str) -> str:
    """The stable id of a proposal about two contacts, whichever is named first."""
    return f"{min(a, b)}~{max(a, b)}"


def kept_and_absorbed(a: Contact, b: Contact) -> tuple[Contact, Contact]:
    """Which of two contacts a merge keeps: the older one (ids sort by creation time), so
    references to the first contact the helpdesk saw stay valid."""
    return (a, b) if a.id < b.id else (b, a)


def _key(address: Address) -> Key:
    return (address.channel, address.handle)


def merged_contact(keep: Contact, gone: Contact) -> Contact:
    """The contact a merge leaves: every address of both, the kept contact's name and profile
    facts first (the absorbed contact fills the gaps), the opt-outs of both."""
    known = {_key(a) for a in keep.addresses}
    return keep.model_copy(update={
        "addresses": [*keep.addresses, *[a for a in gone.addresses if _key(a) not in known]],
        "display_name": keep.display_name or gone.display_name,
        "opted_out": sorted(set(keep.opted_out) | set(gone.opted_out)),
        "profile": {**gone.profile, **keep.profile},
    })


def _restore(before: Any, result: Any, current: Any) -> Any:
    """Three-way: what the merge put there returns to what was before, unless it changed since
    (a later change is a newer fact and stays)."""
    return before if current == result else current


_ABSENT = object()


def unmerged_kept(current: Contact, before: Contact, result: Contact,
                  moved: Iterable[Address]) -> Contact:
    """The kept contact after undoing a merge: the moved addresses leave; the name, profile
    fields and opt-outs the merge brought return to what they were before it, while whatever
    changed after the merge stays as it is now."""
    gone = {_key(a) for a in moved}
    profile: dict[str, Any] = {}
    for field in {*before.profile, *result.profile, *current.profile}:
        value = _restore(before.profile.get(field, _ABSENT), result.profile.get(field, _ABSENT),
                         current.profile.get(field, _ABSENT))
        if value is not _ABSENT:
            profile[field] = value
    opted = {channel for channel in {*before.opted_out, *result.opted_out, *current.opted_out}
             if _restore(channel in before.opted_out, channel in result.opted_out,
                         channel in current.opted_out)}
    return current.model_copy(update={
        "addresses": [a for a in current.addresses if _key(a) not in gone],
        "display_name": _restore(before.display_name, result.display_name, current.display_name),
        "profile": profile,
        "opted_out": sorted(opted),
    })


def returns_to_absorbed(conversation: Conversation, moved: Iterable[str],
                        absorbed_addresses: Iterable[Address], kept_own: Iterable[str]) -> bool:
    """Whether undoing a merge gives ``conversation`` back to the absorbed contact: it moved
    in the merge, or it began after the merge from one of the absorbed contact's addresses
    (a conversation the kept contact had before the merge stays with it)."""
    if conversation.id in set(moved):
        return True
    if conversation.id in set(kept_own):
        return False
    theirs = {_key(a) for a in absorbed_addresses}
    return any(_key(p) in theirs for p in conversation.participants)
