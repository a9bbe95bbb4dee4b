"""Conversations in SQL: reading them, opening one per thread (with its contact), saving them,
and moving the reply window with a small update (its columns: :mod:`._conversation_rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .._errors import NotFoundError
from .._ids import new_id
from .._models import Address, Contact, Conversation
from ._contacts import ContactChanges, ContactSql
from ._conversation_rows import (
    CONVERSATION_COLUMNS,
    conversation_from_row,
    utc,
    window_columns,
)
from ._copies import constructed
from ._parsed import remember_conversation
from ._tx import UNREAD, SqlBase, Tx, Unread, dump, now_us, to_us

__all__ = ["OPEN_CONVERSATION_SQL", "ConversationSql", "new_conversation", "opened_meanwhile"]

OPEN_CONVERSATION_SQL = (
    f"SELECT {CONVERSATION_COLUMNS} FROM conversations "  # noqa: S608 - constants
    "WHERE channel_key = $1 AND thread_key = $2 AND status = 'open'")
"""A thread's open conversation (``CONVERSATION_COLUMNS``)."""


class ConversationSql(ContactSql, SqlBase):
    """Conversations for a store that provides the transactions (contacts come from
    :class:`~omnichannel_sdk._store._contacts.ContactSql`)."""

    async def list_conversations(
        self,
        *,
        channel_key: str | None = None,
        status: str | None = None,
        contact_id: str | None = None,
        limit: int | None = None,
    ) -> list[Conversation]:
        """Conversations, most recently active first."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("channel_key", channel_key), ("status", status),
                              ("contact_id", contact_id)):
            if value is not None:
                args.append(value)
                where.append(f"{column} = ${len(args)}")
        sql = f"SELECT {CONVERSATION_COLUMNS} FROM conversations"  # noqa: S608 - constants
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_us DESC, id DESC"
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        rows = await self._read(lambda tx: tx.fetchall(sql, *args))
        return [conversation_from_row(r) for r in rows]

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or ``None``."""
        row = await self._read(lambda tx: tx.fetchone(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1",  # noqa: S608
            conversation_id))
        return conversation_from_row(row) if row else None

    async def _conversation(self, tx: Tx, conversation_id: str) -> Conversation | None:
        row = await tx.fetchone(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1",  # noqa: S608
            conversation_id)
        return conversation_from_row(row) if row else None

    async def _conversation_by_refs(
        self, tx: Tx, channel_key: str, refs: list[str]
    ) -> Conversation | None:
        for ref in reversed(refs):  # the nearest ancestor first
            row = await tx.fetchone(
                "SELECT c.data, c.last_inbound_us, c.window_expires_us FROM message_refs r "
                "JOIN messages m ON m.id = r.message_id "
                "JOIN conversations c ON c.id = m.conversation_id "
                "WHERE r.channel_key = $1 AND r.external_id = $2", channel_key, ref)
            if row:
                return conversation_from_row(row)
        return None

    async def _open_conversation(
        self, tx: Tx, channel: str, channel_key: str, thread_key: str,
        contact_addresses: list[Address], participants: list[Address], subject: str | None,
        now: datetime, inbound_window: timedelta | bool | None = False,
        changes: ContactChanges | None = None, spoke_at: datetime | None = None,
        row: Sequence[Any] | Unread | None = UNREAD, profile: dict[str, Any] | None = None,
        owner: str | Unread | None = UNREAD,
    ) -> tuple[Conversation, bool, Contact | None]:
        """The thread's open conversation (``row``: as already read in this transaction), or a
        new one, with its contact when one was resolved (a new contact gets ``profile``;
        ``owner``: the JSON of the contact owning the first of ``contact_addresses``, when
        already read)."""
        if row is UNREAD:
            row = await tx.fetchone(OPEN_CONVERSATION_SQL, channel_key, thread_key)
        if row:
            conversation = conversation_from_row(row)
            return conversation, False, await self._contact_if_needed(
                tx, contact_addresses, conversation, changes)
        contact = await self._resolve_contact(tx, contact_addresses, None, changes, profile=profile,
                                              owner=owner)
        conversation = new_conversation(channel, channel_key, thread_key, contact.id, participants,
                                        subject, now, inbound_window, spoke_at)
        data = dump(conversation)
        inserted = await tx.fetchone(
            "INSERT INTO conversations (id, channel_key, thread_key, contact_id, status, "
            "updated_us, data, last_inbound_us, window_expires_us) "
            "VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8) "
            "ON CONFLICT (channel_key, thread_key) WHERE status = 'open' DO NOTHING RETURNING id",
            conversation.id, channel_key, thread_key, contact.id, to_us(now), data,
            *window_columns(conversation))
        if inserted is None:  # another process opened it meanwhile
            return await opened_meanwhile(tx, channel_key, thread_key), False, contact
        remember_conversation(data, conversation)  # the customer's next message reads it
        return conversation, True, contact

    async def open_conversation(
        self, channel: str, channel_key: str, thread_key: str, contact_addresses: list[Address],
        participants: list[Address], subject: str | None = None
    ) -> tuple[Conversation, bool]:
        """The open conversation of ``thread_key``, created (with its contact) if needed."""
        now = datetime.now(UTC)

        async def unit(tx: Tx) -> tuple[Conversation, bool]:
            conversation, created, _ = await self._open_conversation(
                tx, channel, channel_key, thread_key, contact_addresses, participants, subject, now)
            return conversation, created

        return await self._write(unit)

    async def _save_conversation(self, tx: Tx, conversation: Conversation, updated_us: int) -> None:
        await tx.execute(
            "UPDATE conversations SET status = $2, updated_us = $3, data = $4, contact_id = $5, "
            "last_inbound_us = $6, window_expires_us = $7 WHERE id = $1",
            conversation.id, conversation.status, updated_us, dump(conversation),
            conversation.contact_id, *window_columns(conversation))

    async def _save_window(self, tx: Tx, conversation: Conversation, updated_us: int) -> None:
        """Store only the reply window and the activity time (the JSON keeps the rest)."""
        await tx.execute(
            "UPDATE conversations SET updated_us = $2, last_inbound_us = $3, window_expires_us = $4 "
            "WHERE id = $1", conversation.id, updated_us, *window_columns(conversation))

    async def update_conversation(self, conversation: Conversation) -> None:
        """Replace a stored conversation (same id): subject, status, window, participants."""
        await self._write(lambda tx: self._save_conversation(tx, conversation, now_us()))

    async def set_conversation_status(self, conversation_id: str, status: str) -> Conversation:
        """Open or close a conversation (a closed one no longer takes new inbound messages)."""

        async def unit(tx: Tx) -> Conversation:
            conversation = await self._conversation(tx, conversation_id)
            if conversation is None:
                raise NotFoundError(f"no conversation {conversation_id!r}")
            conversation = conversation.model_copy(update={"status": status})
            await self._save_conversation(tx, conversation, now_us())
            return conversation

        return await self._write(unit)


def new_conversation(channel: str, channel_key: str, thread_key: str, contact_id: str,
                     participants: Sequence[Address], subject: str | None, now: datetime,
                     inbound_window: timedelta | bool | None, spoke_at: datetime | None
                     ) -> Conversation:
    """A conversation the store opens for ``thread_key``: each participant once (first
    seen first), its reply window open from ``spoke_at`` (else ``now``) for
    ``inbound_window`` when that is a duration, no inbound time at all when it is ``False``.
    Shared by the general path and PostgreSQL's one-statement new thread."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for a in participants:
        if (a.channel, a.handle) not in seen:
            seen.add((a.channel, a.handle))
            unique.append(a)
    start = spoke_at or now
    fields: dict[str, Any] = {
        "id": new_id("conv"), "channel": channel, "channel_key": channel_key,
        "contact_id": contact_id, "participants": unique, "thread_key": thread_key,
        "subject": subject, "status": "open", "created_at": now,
        "last_inbound_at": None if inbound_window is False else start,
        "window_expires_at": start + inbound_window
        if isinstance(inbound_window, timedelta) else None}
    if (all(type(a) is Address for a in unique) and type(subject) in _STR_OR_NONE
            and all(type(v) is str for v in (channel, channel_key, contact_id, thread_key))
            and type(now) is datetime and type(start) is datetime):
        # every value is already what validation gives (validated addresses, exact strings):
        # validating a new thread's conversation again was a tenth of its first message's
        # store cost; the datetimes get what the model's UTC validator does
        for name in ("created_at", "last_inbound_at", "window_expires_at"):
            fields[name] = utc(fields[name])
        return constructed(Conversation, fields)
    return Conversation(**fields)


_STR_OR_NONE = (str, type(None))


async def opened_meanwhile(tx: Tx, channel_key: str, thread_key: str) -> Conversation:
    """The thread's open conversation that another transaction opened while this one was
    about to (its insert met the open-thread unique index)."""
    row = await tx.fetchone(OPEN_CONVERSATION_SQL, channel_key, thread_key)
    if row is None:
        raise NotFoundError(f"conversation for thread {thread_key!r} vanished")
    return conversation_from_row(row)
