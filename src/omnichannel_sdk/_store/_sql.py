"""Store logic shared by the SQL backends, written once against a tiny transaction protocol.

Statements use ``$n`` placeholders (PostgreSQL style); the SQLite backend rewrites them. Times
are integer microseconds since the epoch (UTC) in both databases; models are stored as JSON
beside the columns that are queried.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson

from .._contact_rules import opt_change as contact_opt_change
from .._errors import NotFoundError
from .._ids import new_id
from .._models import (
    STATUS_RANK,
    Address,
    Contact,
    Conversation,
    DeadLetter,
    MediaPart,
    Message,
    StatusUpdate,
)
from .._numbered import answered_action, numbered_reply
from ._base import IngestItem, IngestOutcome, Job, RawPayload, StatusOutcome, Store
from ._contacts import ContactChanges, ContactSql
from ._feed import StoreFeedLog, ingest_events

T = TypeVar("T")

IDENTITY_SLOTS = 64
"""How many identities ``base``, ``base#2``… a store tries before taking a one-off one."""


def to_us(value: datetime | None) -> int | None:
    """A datetime as integer microseconds since the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def from_us(value: int | None) -> datetime | None:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def now_us() -> int:
    """The current time in microseconds."""
    return time.time_ns() // 1000


class Tx(Protocol):
    """The few operations the shared logic needs from a database transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        """The first row, or ``None``."""

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Every row."""


def _dump(model: Any) -> str:
    return str(model.model_dump_json(exclude_none=False))


class SqlStore(ContactSql, Store, abc.ABC):
    """Everything a SQL backend does, given ``_write`` and ``_read`` transactions."""

    lock_clause = ""
    """Appended to reads that precede a write of the same row (``FOR UPDATE`` where needed)."""

    feed_log: StoreFeedLog | None = None
    """The durable feed's log, when the hub keeps it in this store: the writes below append
    their events to it inside their own transactions."""

    claim_sql = """UPDATE jobs SET state = 'running', lease_us = $1, owner = $4
        WHERE id IN (SELECT id FROM jobs WHERE (state = 'pending' AND next_us <= $2)
                     OR (state = 'running' AND lease_us < $2) ORDER BY next_us LIMIT $3)
        RETURNING id, kind, channel_key, message_id, attempts, payload, attempt_us,
                  vendor_attempts, possible_duplicates"""

    identity: str | None = None
    """The process identity this store's leases carry (see :meth:`hold_identity`)."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` in a write transaction (retried or batched as the backend needs)."""

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` against a consistent read view."""

    # -- reads ---------------------------------------------------------------------------------

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
        sql = "SELECT data FROM conversations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_us DESC, id DESC"
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        rows = await self._read(lambda tx: tx.fetchall(sql, *args))
        return [Conversation.model_validate_json(r[0]) for r in rows]

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation, or ``None``."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT data FROM conversations WHERE id = $1", conversation_id))
        return Conversation.model_validate_json(row[0]) if row else None

    async def list_dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """Dead letters, oldest first (by default only those not yet replayed)."""
        sql = ("SELECT id, kind, channel_key, adapter, error, created_us, replayed_us, raw_id, "
               "message_id FROM dead_letters")
        if not include_replayed:
            sql += " WHERE replayed_us IS NULL"
        rows = await self._read(lambda tx: tx.fetchall(sql + " ORDER BY id"))
        return [
            DeadLetter(id=r[0], kind=r[1], channel_key=r[2], adapter=r[3], error=r[4],
                       created_at=from_us(r[5]), replayed_at=from_us(r[6]), raw_id=r[7],
                       message_id=r[8])
            for r in rows
        ]

    async def find_message_by_external(self, channel_key: str, external_id: str) -> Message | None:
        """The message a vendor id belongs to on a channel key."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT m.data FROM message_refs r JOIN messages m ON m.id = r.message_id "
            "WHERE r.channel_key = $1 AND r.external_id = $2", channel_key, external_id))
        return Message.model_validate_json(row[0]) if row else None

    async def get_raw(self, raw_id: str) -> RawPayload | None:
        """A stored raw payload."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT id, channel_key, received_us, method, url, headers, body FROM raw_payloads "
            "WHERE id = $1", raw_id))
        if not row:
            return None
        return RawPayload(id=row[0], channel_key=row[1], received_at=from_us(row[2]),  # type: ignore[arg-type]
                          method=row[3], url=row[4], headers=orjson.loads(row[5]),
                          body=bytes(row[6]))

    async def pending_jobs(self) -> int:
        """How many jobs are waiting or running."""
        row = await self._read(lambda tx: tx.fetchone("SELECT count(*) FROM jobs"))
        return int(row[0]) if row else 0

    async def outbox_stats(self) -> list[tuple[str, str, int, str]]:
        """Per channel key and job kind: the jobs waiting or running, and the oldest one's id
        (ids sort by creation time, so the age needs no column of its own)."""
        rows = await self._read(lambda tx: tx.fetchall(
            "SELECT channel_key, kind, count(*), min(id) FROM jobs GROUP BY channel_key, kind"))
        return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    async def schema_version(self) -> int:
        """The schema version of the open database (the last upgrade step applied)."""
        row = await self._read(lambda tx: tx.fetchone("SELECT version FROM schema_version"))
        return int(row[0]) if row else 0

    # -- writes: inbound -----------------------------------------------------------------------

    async def ingest(self, items: list[IngestItem], raw: RawPayload | None) -> list[IngestOutcome]:
        """Store a request's raw payload and its messages atomically, skipping duplicates."""

        async def unit(tx: Tx) -> list[IngestOutcome]:
            if raw is not None:
                await self._insert_raw(tx, raw)
            outcomes = [await self._ingest_one(tx, item) for item in items]
            if self.feed_log is not None:
                await self.feed_log.append(tx, ingest_events(outcomes))
            return outcomes

        return await self._write(unit)

    async def save_raw(self, raw: RawPayload) -> None:
        """Store a raw payload on its own."""
        await self._write(lambda tx: self._insert_raw(tx, raw))

    async def _insert_raw(self, tx: Tx, raw: RawPayload) -> None:
        await tx.execute(
            "INSERT INTO raw_payloads (id, channel_key, received_us, method, url, headers, body) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            raw.id, raw.channel_key, to_us(raw.received_at), raw.method, raw.url,
            orjson.dumps(raw.headers).decode(), raw.body)

    async def _ingest_one(self, tx: Tx, item: IngestItem) -> IngestOutcome:
        draft = item.draft
        claimed = await tx.fetchone(
            "INSERT INTO message_refs (channel_key, external_id, message_id) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            item.channel_key, draft.external_id, item.message_id)
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
            conv_channel, conv_key = item.thread_channel or (item.channel, item.channel_key)
            conversation, created, contact = await self._open_conversation(
                tx, conv_channel, conv_key, item.thread_key, item.contact_addresses,
                participants, draft.subject, now=item.received_at,
                inbound_window=item.window if draft.direction == "inbound" else False,
                changes=changes, spoke_at=spoke_at)
        else:
            contact = await self._contact_if_needed(tx, item.contact_addresses, conversation, changes)
        if changes.merged and contact is not None and conversation.contact_id != contact.id:
            conversation = conversation.model_copy(update={"contact_id": contact.id})

        parts = list(draft.parts)
        if draft.direction == "inbound":
            parts = await self._map_numbered_reply(tx, conversation.id, parts)
        received_at = item.received_at
        message = Message(
            id=item.message_id,
            channel=item.channel,
            channel_key=item.channel_key,
            adapter=item.adapter,
            external_id=draft.external_id,
            direction="outbound" if draft.direction == "outbound" else "inbound",
            conversation_id=conversation.id,
            sender=draft.sender,
            recipients=draft.recipients,
            parts=parts,
            subject=draft.subject,
            reply_to=reply_to,
            created_at=draft.created_at or received_at,
            received_at=received_at,
            status=draft.status or ("received" if draft.direction == "inbound" else "sent"),
            author=draft.author,
            metadata=draft.metadata,
        )
        await self._insert_message(tx, message)
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
            conversation = conversation.model_copy(update=updates)
            await self._save_conversation(tx, conversation, to_us(received_at) or 0)

        opt_change = contact_opt_change(parts)
        if contact is None and (opt_change or draft.profile):
            contact = await self._resolve_contact(tx, item.contact_addresses, conversation.contact_id)
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
                             proposals=changes.proposals)

    async def _map_numbered_reply(self, tx: Tx, conversation_id: str, parts: list[Any]) -> list[Any]:
        """An inbound "2" answering a numbered list maps back to the second action."""
        choice = numbered_reply(parts)
        if choice is None:
            return parts
        row = await tx.fetchone(
            "SELECT data FROM messages WHERE conversation_id = $1 AND direction = 'outbound' "
            "ORDER BY id DESC LIMIT 1", conversation_id)
        if not row:
            return parts
        numbered = orjson.loads(row[0]).get("metadata", {}).get("numbered_actions")
        return answered_action(parts, numbered, choice)

    async def _conversation(self, tx: Tx, conversation_id: str) -> Conversation | None:
        row = await tx.fetchone("SELECT data FROM conversations WHERE id = $1", conversation_id)
        return Conversation.model_validate_json(row[0]) if row else None

    async def _conversation_by_refs(
        self, tx: Tx, channel_key: str, refs: list[str]
    ) -> Conversation | None:
        for ref in reversed(refs):  # the nearest ancestor first
            row = await tx.fetchone(
                "SELECT c.data FROM message_refs r JOIN messages m ON m.id = r.message_id "
                "JOIN conversations c ON c.id = m.conversation_id "
                "WHERE r.channel_key = $1 AND r.external_id = $2", channel_key, ref)
            if row:
                return Conversation.model_validate_json(row[0])
        return None

    async def _open_conversation(
        self, tx: Tx, channel: str, channel_key: str, thread_key: str,
        contact_addresses: list[Address], participants: list[Address], subject: str | None,
        now: datetime, inbound_window: timedelta | bool | None = False,
        changes: ContactChanges | None = None, spoke_at: datetime | None = None,
    ) -> tuple[Conversation, bool, Contact | None]:
        row = await tx.fetchone(
            "SELECT data FROM conversations WHERE channel_key = $1 AND thread_key = $2 "
            "AND status = 'open'", channel_key, thread_key)
        if row:
            conversation = Conversation.model_validate_json(row[0])
            return conversation, False, await self._contact_if_needed(
                tx, contact_addresses, conversation, changes)
        contact = await self._resolve_contact(tx, contact_addresses, None, changes)
        seen: set[tuple[str, str]] = set()
        unique = []
        for a in participants:
            if (a.channel, a.handle) not in seen:
                seen.add((a.channel, a.handle))
                unique.append(a)
        conversation = Conversation(
            id=new_id("conv"), channel=channel, channel_key=channel_key, contact_id=contact.id,
            participants=unique, thread_key=thread_key, subject=subject, created_at=now,
            last_inbound_at=None if inbound_window is False else (spoke_at or now),
            window_expires_at=(spoke_at or now) + inbound_window if isinstance(inbound_window, timedelta)
            else None)
        inserted = await tx.fetchone(
            "INSERT INTO conversations (id, channel_key, thread_key, contact_id, status, "
            "updated_us, data) VALUES ($1, $2, $3, $4, 'open', $5, $6) "
            "ON CONFLICT (channel_key, thread_key) WHERE status = 'open' DO NOTHING RETURNING id",
            conversation.id, channel_key, thread_key, contact.id, to_us(now), _dump(conversation))
        if inserted is None:  # another process opened it meanwhile
            row = await tx.fetchone(
                "SELECT data FROM conversations WHERE channel_key = $1 AND thread_key = $2 "
                "AND status = 'open'", channel_key, thread_key)
            if row is None:
                raise NotFoundError(f"conversation for thread {thread_key!r} vanished")
            return Conversation.model_validate_json(row[0]), False, contact
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

    async def _insert_message(self, tx: Tx, message: Message) -> None:
        await tx.execute(
            "INSERT INTO messages (id, conversation_id, channel_key, external_id, direction, "
            "status, created_us, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            message.id, message.conversation_id, message.channel_key, message.external_id,
            message.direction, message.status, to_us(message.created_at), _dump(message))

    async def _save_message(self, tx: Tx, message: Message) -> None:
        await tx.execute(
            "UPDATE messages SET status = $2, external_id = $3, data = $4 WHERE id = $1",
            message.id, message.status, message.external_id, _dump(message))

    async def _save_conversation(self, tx: Tx, conversation: Conversation, updated_us: int) -> None:
        await tx.execute(
            "UPDATE conversations SET status = $2, updated_us = $3, data = $4, contact_id = $5 "
            "WHERE id = $1", conversation.id, conversation.status, updated_us,
            _dump(conversation), conversation.contact_id)

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

    # -- dead letters --------------------------------------------------------------------------

    async def add_dead_letter(self, letter: DeadLetter, raw: RawPayload | None = None,
                              fragment: Any = None) -> None:
        """Record a dead letter (with its raw payload, stored in the same transaction)."""

        async def unit(tx: Tx) -> None:
            if raw is not None:
                await self._insert_raw(tx, raw)
            await self._insert_dead_letter(tx, letter, fragment)

        await self._write(unit)

    async def _insert_dead_letter(self, tx: Tx, letter: DeadLetter, fragment: Any = None) -> None:
        await tx.execute(
            "INSERT INTO dead_letters (id, kind, channel_key, adapter, error, created_us, "
            "replayed_us, raw_id, message_id, fragment) VALUES ($1, $2, $3, $4, $5, $6, NULL, "
            "$7, $8, $9)", letter.id, letter.kind, letter.channel_key, letter.adapter,
            letter.error, to_us(letter.created_at), letter.raw_id, letter.message_id,
            None if fragment is None else orjson.dumps(fragment, default=str).decode())

    async def dead_letter_fragment(self, letter_id: str) -> Any:
        """The batch fragment a dead letter is about, if it is about one item of a batch."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT fragment FROM dead_letters WHERE id = $1", letter_id))
        return orjson.loads(row[0]) if row and row[0] else None

    async def mark_replayed(self, letter_id: str) -> None:
        """Mark a dead letter replayed."""
        await self._write(lambda tx: tx.execute(
            "UPDATE dead_letters SET replayed_us = $2 WHERE id = $1", letter_id, now_us()))

    # -- writes: outbound ----------------------------------------------------------------------

    async def create_outbound(self, message: Message, job: Job, *, lease: float) -> None:
        """Store an outbound message and its delivery job in one transaction."""
        now = now_us()

        async def unit(tx: Tx) -> None:
            await self._insert_message(tx, message)
            await tx.execute("UPDATE conversations SET updated_us = $2 WHERE id = $1",
                             message.conversation_id, now)
            await self._insert_job(tx, job, now, state="running", lease_us=now + int(lease * 1e6),
                                   owner=self.identity)
            if self.feed_log is not None:
                await self.feed_log.append_queued(tx, message)

        await self._write(unit)

    async def _insert_job(self, tx: Tx, job: Job, next_us: int, *, state: str = "pending",
                          lease_us: int | None = None, owner: str | None = None) -> None:
        await tx.execute(
            "INSERT INTO jobs (id, kind, channel_key, message_id, attempts, next_us, lease_us, "
            "state, payload, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            job.id, job.kind, job.channel_key, job.message_id, job.attempts, next_us, lease_us,
            state, orjson.dumps(job.payload).decode(), owner)

    async def record_sent(
        self, message: Message, external_ids: list[str], job_id: str | None
    ) -> Message:
        """Store the vendor's ids for a sent message, update it, finish the job."""

        async def unit(tx: Tx) -> Message:
            for ext in external_ids:
                await tx.execute(
                    "INSERT INTO message_refs (channel_key, external_id, message_id) "
                    "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    message.channel_key, ext, message.id)
            row = await tx.fetchone("SELECT status FROM messages WHERE id = $1", message.id)
            stored = row[0] if row else "queued"
            final = message
            if STATUS_RANK.get(stored, 0) > STATUS_RANK[message.status] and stored != "failed":
                final = message.model_copy(update={"status": stored})  # a receipt came first
            for ext in external_ids:  # receipts that arrived before the vendor's answer
                early = await tx.fetchone(
                    "DELETE FROM kv WHERE key = $1 AND (expires_us IS NULL OR expires_us > $2) "
                    "RETURNING value", early_receipt_key(message.channel_key, ext), now_us())
                if early:
                    update = StatusUpdate.model_validate_json(early[0])
                    if status_moves(final.status, update.status):
                        changes: dict[str, Any] = {"status": update.status}
                        if update.error is not None:
                            changes["error"] = update.error
                        final = final.model_copy(update=changes)
            await self._save_message(tx, final)
            if job_id:
                await tx.execute("DELETE FROM jobs WHERE id = $1", job_id)
            if self.feed_log is not None:
                await self.feed_log.append_sent(tx, final, stored)
            return final

        return await self._write(unit)

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

    # -- jobs ----------------------------------------------------------------------------------

    async def enqueue_job(self, job: Job, *, delay: float = 0.0) -> None:
        """Add a job, due after ``delay`` seconds."""
        await self._write(lambda tx: self._insert_job(tx, job, now_us() + int(delay * 1e6)))

    async def claim_jobs(self, limit: int, lease: float) -> list[Job]:
        """Lease up to ``limit`` due jobs (and jobs whose lease ran out) to this process."""
        now = now_us()
        rows = await self._write(lambda tx: tx.fetchall(
            self.claim_sql, now + int(lease * 1e6), now, limit, self.identity))
        return [Job(id=r[0], kind=r[1], channel_key=r[2], message_id=r[3], attempts=r[4],
                    payload=orjson.loads(r[5]), attempt_started_at=from_us(r[6]),
                    vendor_attempts=int(r[7] or 0), possible_duplicates=int(r[8] or 0))
                for r in rows]

    async def retry_job(self, job_id: str, delay: float, error: str, *,
                        uncertain: bool = False) -> None:
        """Release a job to run again after ``delay`` seconds, counting the attempt.

        ``uncertain``: the vendor call may have reached the vendor (a timeout), so the job keeps
        its "attempt started" record for the next try to reconcile."""
        await self._write(lambda tx: tx.execute(
            "UPDATE jobs SET state = 'pending', attempts = attempts + 1, next_us = $2, "
            "lease_us = NULL, last_error = $3, "
            "attempt_us = CASE WHEN $4 THEN attempt_us ELSE NULL END WHERE id = $1",
            job_id, now_us() + int(delay * 1e6), error, uncertain))

    async def begin_attempt(self, job_id: str, *, possible_duplicate: bool = False) -> None:
        """Record, durably and before the vendor is called, that a vendor call of the job
        starts now (a process recovering the job then knows it may have reached the vendor);
        ``possible_duplicate``: an earlier call of unknown outcome may have reached it too."""
        await self._write(lambda tx: tx.execute(
            # the earliest call of unknown outcome is kept: a reconcile looks from there
            "UPDATE jobs SET attempt_us = COALESCE(attempt_us, $2), "
            "vendor_attempts = vendor_attempts + 1, "
            "possible_duplicates = possible_duplicates + $3 WHERE id = $1",
            job_id, now_us(), 1 if possible_duplicate else 0))

    async def hold_identity(self, base: str) -> str:
        """Take a process identity derived from ``base`` that no live process holds: ``base``
        itself, else ``base#2``, ``base#3``… (held until :meth:`close`, by a lock the
        operating system or the database drops when the process dies). Leases this store
        takes from then on carry it. Where no lock can be had, a one-off identity nobody
        will ever take over. Returns it."""
        if self.identity is not None:
            return self.identity
        for n in range(1, IDENTITY_SLOTS + 1):
            name = base if n == 1 else f"{base}#{n}"
            if await self._lock_identity(name):
                self.identity = name
                return name
        self.identity = f"{base}#{new_id('once')}"
        return self.identity

    async def _lock_identity(self, name: str) -> bool:
        """Hold the lock of identity ``name`` if no live process does; whether held."""
        return False

    async def take_over_leases(self) -> int:
        """Make the jobs leased to this process's identity by a previous (dead) holder due
        now; how many. Only safe once :meth:`hold_identity` succeeded: no live process has
        the identity, so whoever leased those jobs under it is gone."""
        if self.identity is None:
            return 0
        return await self._write(lambda tx: tx.execute(
            "UPDATE jobs SET lease_us = 0 WHERE state = 'running' AND owner = $1 "
            "AND lease_us >= $2", self.identity, now_us()))

    async def release_jobs(self, job_ids: Sequence[str]) -> None:
        """Hand leased jobs back to the outbox at once (a process stopping without finishing
        them), due now, their attempt count unchanged."""

        async def unit(tx: Tx) -> None:
            for job_id in job_ids:
                await tx.execute(
                    "UPDATE jobs SET state = 'pending', lease_us = NULL, next_us = $2 "
                    "WHERE id = $1 AND state = 'running'", job_id, now_us())

        await self._write(unit)

    async def finish_job(self, job_id: str) -> None:
        """Remove a completed job."""
        await self._write(lambda tx: tx.execute("DELETE FROM jobs WHERE id = $1", job_id))

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

    # -- key-value -----------------------------------------------------------------------------

    async def kv_get(self, key: str) -> str | None:
        """Return the value, or ``None`` when absent or expired."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT value FROM kv WHERE key = $1 AND (expires_us IS NULL OR expires_us > $2)",
            key, now_us()))
        return str(row[0]) if row else None

    async def kv_set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given."""
        expires = None if ttl is None else now_us() + int(ttl * 1e6)
        await self._write(lambda tx: tx.execute(
            "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_us = excluded.expires_us",
            key, value, expires))

    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired; ``True`` if stored."""
        now = now_us()
        expires = None if ttl is None else now + int(ttl * 1e6)
        row = await self._write(lambda tx: tx.fetchone(
            "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_us = excluded.expires_us "
            "WHERE kv.expires_us IS NOT NULL AND kv.expires_us <= $4 RETURNING key",
            key, value, expires, now))
        return row is not None

    async def kv_delete(self, key: str) -> None:
        """Remove ``key``."""
        await self._write(lambda tx: tx.execute("DELETE FROM kv WHERE key = $1", key))

    async def kv_scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every live ``(key, value)`` whose key starts with ``prefix``."""
        rows = await self._read(lambda tx: tx.fetchall(
            "SELECT key, value FROM kv WHERE substr(key, 1, $1) = $2 "
            "AND (expires_us IS NULL OR expires_us > $3) ORDER BY key",
            len(prefix), prefix, now_us()))
        return [(str(r[0]), str(r[1])) for r in rows]


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
