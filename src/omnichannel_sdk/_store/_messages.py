"""Messages in SQL: reads, outbound messages and their delivery results, receipts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._models import STATUS_RANK, Contact, Conversation, DeadLetter, Message, StatusUpdate
from ._base import Job, StatusOutcome
from ._conversation_rows import CONVERSATION_COLUMNS, conversation_from_row
from ._dead_letters import DeadLetterSql
from ._jobs import ATTEMPT_STARTED, JobSql
from ._parsed import parsed_contact
from ._tx import Tx, dump, now_us, to_us

__all__ = ["MessageSql", "early_receipt_key", "status_moves"]


class MessageSql(JobSql, DeadLetterSql):
    """Messages, sends and receipts for a store that provides the transactions."""

    async def get_message(self, message_id: str) -> Message | None:
        """The message with our id ``message_id``, or ``None``."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT data FROM messages WHERE id = $1", message_id))
        return Message.model_validate_json(row[0]) if row else None

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, after: str | None = None,
        last: int | None = None,
    ) -> list[Message]:
        """Messages of a conversation in order: the first ``limit`` (after the message id
        ``after``), or only the ``last`` N (history for a reconnecting visitor)."""
        args: list[Any] = [conversation_id, after or ""]
        if last is not None:
            sql = ("SELECT data FROM messages WHERE conversation_id = $1 AND id > $2 "
                   "ORDER BY id DESC LIMIT $3")
            args.append(last)
            rows = await self._read(lambda tx: tx.fetchall(sql, *args))
            return [Message.model_validate_json(r[0]) for r in reversed(rows)]
        sql = "SELECT data FROM messages WHERE conversation_id = $1 AND id > $2 ORDER BY id"
        if limit is not None:
            sql += " LIMIT $3"
            args.append(limit)
        rows = await self._read(lambda tx: tx.fetchall(sql, *args))
        return [Message.model_validate_json(r[0]) for r in rows]

    async def find_message_by_external(self, channel_key: str, external_id: str) -> Message | None:
        """The message a vendor id belongs to on a channel key."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT m.data FROM message_refs r JOIN messages m ON m.id = r.message_id "
            "WHERE r.channel_key = $1 AND r.external_id = $2", channel_key, external_id))
        return Message.model_validate_json(row[0]) if row else None

    async def conversation_for_send(self, conversation_id: str
                                    ) -> tuple[Conversation | None, Contact | None]:
        """What ``hub.send`` reads: the conversation and its contact in one statement (as
        :meth:`get_conversation` and :meth:`get_contact` give them); ``(None, None)`` if no
        such conversation."""
        row = await self._read(lambda tx: tx.fetchone(_FOR_SEND, conversation_id))
        if row is None:
            return None, None
        conversation = conversation_from_row(row[:-1])
        contact = parsed_contact(row[-1]) if row[-1] is not None else None
        if contact is None or contact.id != conversation.contact_id:
            # the row's contact column and the JSON's disagree (or no contact): the JSON's
            # contact, as get_contact reads it
            contact = await self.get_contact(conversation.contact_id)  # type: ignore[attr-defined]
        return conversation, contact

    async def _insert_message(self, tx: Tx, message: Message) -> str:
        """Insert ``message``; its JSON as stored."""
        data = dump(message)
        await tx.execute(
            "INSERT INTO messages (id, conversation_id, channel_key, external_id, direction, "
            "status, created_us, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            message.id, message.conversation_id, message.channel_key, message.external_id,
            message.direction, message.status, to_us(message.created_at), data)
        return data

    async def _save_message(self, tx: Tx, message: Message) -> None:
        await tx.execute(
            "UPDATE messages SET status = $2, external_id = $3, data = $4 WHERE id = $1",
            message.id, message.status, message.external_id, dump(message))

    async def add_message(self, message: Message) -> None:
        """Store a message that needs no delivery (a passive reply, an import)."""

        async def unit(tx: Tx) -> None:
            await self._insert_message(tx, message)
            if message.external_id:
                await tx.execute(
                    "INSERT INTO message_refs (channel_key, external_id, message_id) "
                    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    message.channel_key, message.external_id, message.id)

        await self._write(unit)

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Read, change and write a message in one transaction (no lost concurrent updates).

        ``change`` gets the stored message and returns the new one, or ``None`` to leave it.
        It must be quick and do no I/O. Returns the stored result (``None`` if no message).
        """

        async def unit(tx: Tx) -> Message | None:
            row = await tx.fetchone(  # lock_clause is a class constant, not input
                f"SELECT data FROM messages WHERE id = $1{self.lock_clause}", message_id)  # noqa: S608
            if row is None:
                return None
            current = Message.model_validate_json(row[0])
            updated = change(current)
            if updated is None or updated == current:
                return current
            if updated.id != current.id:
                raise ValueError("a change may not alter the message id")
            await self._save_message(tx, updated)
            return updated

        return await self._write(unit)

    async def update_message(self, message: Message) -> None:
        """Replace a stored message (same id)."""
        await self._write(lambda tx: self._save_message(tx, message))

    async def apply_status(self, channel_key: str, update: StatusUpdate) -> list[StatusOutcome]:
        """Apply a receipt forward-only; returns the messages it moved (none if unknown)."""

        async def unit(tx: Tx) -> list[StatusOutcome]:
            rows: list[Sequence[Any]] = []
            if update.external_id:
                row = await tx.fetchone(
                    "SELECT m.data FROM message_refs r JOIN messages m ON m.id = r.message_id "
                    "WHERE r.channel_key = $1 AND r.external_id = $2",
                    channel_key, update.external_id)
                rows = [row] if row else []
            elif update.watermark is not None and update.recipient is not None:
                rows = await tx.fetchall(
                    "SELECT m.data FROM contact_addresses a "
                    "JOIN conversations c ON c.contact_id = a.contact_id AND c.channel_key = $1 "
                    "JOIN messages m ON m.conversation_id = c.id "
                    "WHERE a.channel = $2 AND a.handle = $3 AND m.direction = 'outbound' "
                    "AND m.created_us <= $4 AND m.status IN ('sent', 'delivered')",
                    channel_key, update.recipient.channel, update.recipient.handle,
                    to_us(update.watermark))
            outcomes = []
            for row in rows:
                message = Message.model_validate_json(row[0])
                if not status_moves(message.status, update.status):
                    continue
                changes: dict[str, Any] = {"status": update.status}
                if update.error is not None:
                    changes["error"] = update.error
                if update.metadata:
                    changes["metadata"] = {**message.metadata, **update.metadata}
                moved = message.model_copy(update=changes)
                await self._save_message(tx, moved)
                outcomes.append(StatusOutcome(message=moved, previous=message.status))
            if self.feed_log is not None and outcomes:
                await self.feed_log.append_status(tx, outcomes)
            return outcomes

        return await self._write(unit)

    async def create_outbound(self, message: Message, job: Job, *, lease: float,
                              attempt: bool = False) -> None:
        """Store an outbound message and its delivery job in one transaction (``attempt``:
        with its first vendor call recorded as started, see :meth:`begin_attempt`)."""
        now = now_us()

        async def unit(tx: Tx) -> None:
            await self._insert_message(tx, message)
            await self._touch_conversation(tx, message.conversation_id, now)
            await self._insert_job(tx, job, now, state="running", lease_us=now + int(lease * 1e6),
                                   owner=self.identity, attempt_us=now_us() if attempt else None)
            if self.feed_log is not None:
                await self.feed_log.append_queued(tx, message)

        await self._write(unit)

    async def record_sent(
        self, message: Message, external_ids: list[str], job_id: str | None, *,
        next_attempt: str | None = None,
    ) -> Message:
        """Store the vendor's ids for a sent message, update it, finish the job; with
        ``next_attempt``, record that job's first vendor call as started too (as
        :meth:`begin_attempt` does)."""

        async def unit(tx: Tx) -> Message:
            for index, ext in enumerate(external_ids):
                await self._insert_ref(tx, index, message.channel_key, ext, message.id)
            if job_id:  # (before the message's update: nothing below reads the jobs table)
                await self._delete_job(tx, job_id)
            if next_attempt:
                await self._mark_attempt(tx, next_attempt, now_us())
            if len(external_ids) == 1 and await self._save_unreceipted(tx, message,
                                                                       external_ids[0]):
                stored, final = "queued", message  # what _merge_receipts makes of it then
            else:
                stored, final = await self._merge_receipts(tx, message, external_ids)
                await self._save_message(tx, final)
            if self.feed_log is not None:
                await self.feed_log.append_sent(tx, final, stored)
            return final

        return await self._write(unit)

    # the three below hand back the statement's awaitable rather than awaiting it in a
    # coroutine of their own (one frame fewer per statement on SQLite's per-send path);
    # PostgreSQL's store holds them instead (see its overrides)
    def _touch_conversation(self, tx: Tx, conversation_id: str, now: int) -> Awaitable[Any]:
        """A new outbound message's conversation was updated ``now``."""
        return tx.execute("UPDATE conversations SET updated_us = $2 WHERE id = $1",
                          conversation_id, now)

    def _insert_ref(self, tx: Tx, index: int, channel_key: str, external_id: str,
                    message_id: str) -> Awaitable[Any]:
        """The vendor's ``external_id`` (the ``index``-th of the send's) names ``message_id``."""
        return tx.execute(
            "INSERT INTO message_refs (channel_key, external_id, message_id) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", channel_key, external_id, message_id)

    def _delete_job(self, tx: Tx, job_id: str) -> Awaitable[Any]:
        """A job done with."""
        return tx.execute("DELETE FROM jobs WHERE id = $1", job_id)

    def _mark_attempt(self, tx: Tx, job_id: str, now: int) -> Awaitable[Any]:
        """A fresh job's first vendor call starts ``now`` (:meth:`begin_attempt`'s record)."""
        return tx.execute(ATTEMPT_STARTED, job_id, now, 0)

    async def _save_unreceipted(self, tx: Tx, message: Message, external_id: str) -> bool:
        """The usual send in one statement instead of a read and a write: save ``message``
        if the stored one is still ``queued`` and no receipt for ``external_id`` came before
        the vendor's answer (:meth:`_merge_receipts` then keeps ``message`` as it is). False:
        nothing written, the general way decides."""
        if STATUS_RANK.get(message.status, 0) < STATUS_RANK["queued"]:
            return False  # (not a send's status: the general way lifts it to "queued")
        changed = await tx.execute(
            "UPDATE messages SET status = $2, external_id = $3, data = $4 "
            "WHERE id = $1 AND status = 'queued' AND NOT EXISTS (SELECT 1 FROM kv "
            "WHERE key = $5 AND (expires_us IS NULL OR expires_us > $6))",
            message.id, message.status, message.external_id, dump(message),
            early_receipt_key(message.channel_key, external_id), now_us())
        return changed == 1

    async def _merge_receipts(self, tx: Tx, message: Message, external_ids: list[str]
                              ) -> tuple[str, Message]:
        """The stored status, and ``message`` moved by what came before the vendor's answer:
        a status stored meanwhile, receipts waiting for its ids (taken out of ``kv``)."""
        early_values: list[str] = []
        if len(external_ids) == 1:
            # the stored status and a receipt that came before the vendor's answer in one
            # statement; the receipt is then deleted by key
            key = early_receipt_key(message.channel_key, external_ids[0])
            row = await tx.fetchone(
                "SELECT status, (SELECT value FROM kv WHERE key = $2 AND "
                "(expires_us IS NULL OR expires_us > $3)) FROM messages WHERE id = $1",
                message.id, key, now_us())
            if row is not None and row[1] is not None:
                await tx.execute("DELETE FROM kv WHERE key = $1", key)
                early_values.append(row[1])
        else:
            row = await tx.fetchone("SELECT status FROM messages WHERE id = $1", message.id)
            for ext in external_ids:  # receipts that arrived before the vendor's answer
                early = await tx.fetchone(
                    "DELETE FROM kv WHERE key = $1 AND (expires_us IS NULL OR expires_us > $2) "
                    "RETURNING value", early_receipt_key(message.channel_key, ext), now_us())
                if early:
                    early_values.append(early[0])
        stored = row[0] if row else "queued"
        final = message
        if STATUS_RANK.get(stored, 0) > STATUS_RANK[message.status] and stored != "failed":
            final = message.model_copy(update={"status": stored})  # a receipt came first
        for value in early_values:
            update = StatusUpdate.model_validate_json(value)
            if status_moves(final.status, update.status):
                changes: dict[str, Any] = {"status": update.status}
                if update.error is not None:
                    changes["error"] = update.error
                final = final.model_copy(update=changes)
        return stored, final


    async def fail_job(self, job: Job, letter: DeadLetter, message: Message | None) -> None:
        """Give a job up: remove it, store the dead letter and the failed message together."""

        async def unit(tx: Tx) -> None:
            await tx.execute("DELETE FROM jobs WHERE id = $1", job.id)
            await self._insert_dead_letter(tx, letter)
            if message is not None:
                if self.feed_log is not None:
                    await self.feed_log.append_failed(tx, message)
                await self._save_message(tx, message)

        await self._write(unit)


_JOINED = ", ".join(f"c.{column.strip()}" for column in CONVERSATION_COLUMNS.split(","))
_FOR_SEND = (  # the conversation's columns as conversation_from_row takes them, then the contact
    f"SELECT {_JOINED}, k.data FROM conversations c "  # noqa: S608 - constants only
    "LEFT JOIN contacts k ON k.id = c.contact_id WHERE c.id = $1")


def early_receipt_key(channel_key: str, external_id: str) -> str:
    """The kv key under which a receipt for a not-yet-recorded send waits."""
    return f"receipt:{channel_key}:{external_id}"


def status_moves(current: str, new: str) -> bool:
    """Whether a receipt may move a message from ``current`` to ``new`` (forward only).

    A message still ``queued`` (in our outbox, not accepted by the vendor) takes no receipt:
    one that arrives before the vendor's answer waits and is applied when the send is recorded.
    """
    if current in ("failed", "received", "queued") or current == new:
        return False
    if new == "failed":
        return current == "sent"
    return STATUS_RANK.get(new, 0) > STATUS_RANK.get(current, 0)
