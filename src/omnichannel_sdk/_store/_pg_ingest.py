"""A new customer's first message on PostgreSQL in one statement after its claim.

The shared logic (:meth:`ConversationSql._open_conversation` through
:meth:`ContactSql._create_contact`) sends, for a thread with no open conversation whose only
contact address nobody owns yet, four statements one after the other: the address's insert
(its ``RETURNING`` says whether another transaction took the address meanwhile), the contact's
insert, the look-up of the same person on other channels, and the conversation's insert (its
``RETURNING`` says whether another process opened the thread meanwhile). Here they go as one
statement of data-modifying ``WITH`` clauses, each insert made only when the one before it
wrote its row (the contact only with its address, the conversation only with its contact), and
the look-up beside them (it reads no row they write: it skips the address's own channel and the
new contact). What follows is the shared logic's, with the same answers:

- the address was taken: nothing was written, and the shared path runs (it reads the owner);
- the thread was opened meanwhile: the contact stays, and the open conversation is read, as
  the shared path does;
- the look-up's rows are handed to the shared :meth:`ContactSql._propose_same_person` as the
  answer to its own query (:meth:`PgTx.answer`), so proposals are made by the shared code.

``tests/test_store_pg_held.py`` runs the same webhooks through this and through SQLite's
general path and compares what both store and report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .._contact_rules import identity
from .._ids import new_id
from .._models import Address, Contact, Conversation
from ._contacts import ContactChanges, new_contact
from ._conversation_rows import window_columns
from ._conversations import new_conversation, opened_meanwhile
from ._pg_tx import PgTx
from ._tx import dump, to_us

__all__ = ["SAME_PERSON_SQL", "open_new_thread"]

SAME_PERSON_SQL = ("SELECT channel, handle, contact_id FROM contact_addresses "
                   "WHERE handle = $1 AND channel <> $2 AND contact_id <> $3")
"""The shared look-up of the same person on other channels (``_propose_same_person``'s text:
if it changes there, the answer is not used and the shared code sends its query)."""

_NEW_THREAD = (
    "WITH _addr AS (INSERT INTO contact_addresses (channel, handle, contact_id) "
    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING contact_id), "
    "_ct AS (INSERT INTO contacts (id, data) SELECT contact_id, $4 FROM _addr RETURNING id), "
    "_conv AS (INSERT INTO conversations (id, channel_key, thread_key, contact_id, status, "
    "updated_us, data, last_inbound_us, window_expires_us) "
    "SELECT $5, $6, $7, id, 'open', $8, $9, $10, $11 FROM _ct "
    "ON CONFLICT (channel_key, thread_key) WHERE status = 'open' DO NOTHING RETURNING id) "
    "SELECT (SELECT count(*) FROM _addr), (SELECT count(*) FROM _conv)")
NEW_THREAD_SQL = _NEW_THREAD + " FROM (SELECT 1) _one"
"""The address, the contact and the conversation: whether the first and the last were written."""
NEW_THREAD_SAME_PERSON_SQL = (
    _NEW_THREAD + ", s.channel, s.handle, s.contact_id FROM (SELECT 1) _one LEFT JOIN ("  # noqa: S608
    "SELECT channel, handle, contact_id FROM contact_addresses "
    "WHERE handle = $2 AND channel <> $1 AND contact_id <> $3) s ON true")
"""The same with the look-up of the same person on other channels (a row of ``NULL`` in its
columns when there is none)."""

ProposeSamePerson = Callable[[PgTx, str, Sequence[Address], ContactChanges | None], Awaitable[None]]


async def open_new_thread(
    tx: PgTx, propose: ProposeSamePerson, channel: str, channel_key: str, thread_key: str,
    contact_addresses: list[Address], participants: list[Address], subject: str | None,
    now: datetime, inbound_window: timedelta | bool | None, changes: ContactChanges | None,
    spoke_at: datetime | None, profile: dict[str, Any] | None,
) -> tuple[Conversation, bool, Contact] | None:
    """A new contact owning the only address of ``contact_addresses`` and the thread's new
    conversation, as ``_open_conversation`` makes them (``None``: the address was taken
    meanwhile, nothing was written: the shared path goes on). ``propose`` is the store's
    ``_propose_same_person``."""
    address = contact_addresses[0]
    # as ``_create_contact`` and ``_open_conversation`` build them
    contact_id = new_id("ct")
    name = next((a.display_name for a in contact_addresses if a.display_name), None)
    contact = new_contact(contact_id, name, [address], profile)
    conversation = new_conversation(channel, channel_key, thread_key, contact.id, participants,
                                    subject, now, inbound_window, spoke_at)
    look_up = identity(address) is not None
    rows = await tx.fetchall(
        NEW_THREAD_SAME_PERSON_SQL if look_up else NEW_THREAD_SQL,
        address.channel, address.handle, contact_id, dump(contact), conversation.id,
        channel_key, thread_key, to_us(now), dump(conversation), *window_columns(conversation))
    if not rows[0][0]:
        return None  # another transaction owns the address now: nothing was written
    if look_up:
        found: list[Sequence[Any]] = [(r[2], r[3], r[4]) for r in rows if r[2] is not None]
        tx.answer(SAME_PERSON_SQL, (address.handle, address.channel, contact_id), found)
    try:
        await propose(tx, contact_id, [address], changes)
    finally:
        tx.answer(None)
    if rows[0][1]:
        return conversation, True, contact
    # another process opened the thread meanwhile
    return await opened_meanwhile(tx, channel_key, thread_key), False, contact
