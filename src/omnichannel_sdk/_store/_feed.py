"""The store-backed log of the durable feed (SQLite or PostgreSQL alone, no NATS).

Events are appended inside the transaction that stored what caused them (ingest, a queued send,
a receipt, a send's result), so none is lost between the commit and the publish; other events
are appended right after their commit. An appended event has no ``seq`` yet: a reader numbers
every committed, unnumbered event under a row lock on ``feed_sequence`` before it reads, so
``seq`` grows in the order events became visible and a reader never skips one that committed
late (the usual gap of database sequences under concurrent transactions).

A consumer ``name`` has a resume point (``feed_consumers.acked``: every event up to it is
acknowledged) and leases on the events beyond it that its processes hold (``feed_leases``). A
process is given an event only when no other process holds an unacknowledged, unexpired event of
the same conversation, which keeps each conversation in order while processes share the work.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._events import (
    ChannelSignal,
    ContactMerged,
    ContactUpdated,
    ConversationOpened,
    Event,
    MergeProposed,
    MessageQueued,
    MessageReceived,
    MessageSent,
    MessageUpdated,
    StatusChanged,
)
from .._ids import new_id
from .._models import Message
from ._base import IngestOutcome, StatusOutcome
from ._tx import now_us

if TYPE_CHECKING:
    from ._tx import SqlBase, Tx

__all__ = ["FeedRecord", "StoreFeedLog", "event_key", "ingest_events"]

_SEQUENCE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One numbered event of the log, as stored (``data`` is the event JSON)."""

    seq: int
    conversation_id: str | None
    type: str
    data: str


_WITH_MESSAGE = (MessageReceived, MessageQueued, MessageSent, MessageUpdated, StatusChanged)


def conversation_of(event: Event) -> str | None:
    """The conversation an event belongs to (its order is kept per conversation)."""
    if isinstance(event, _WITH_MESSAGE):  # isinstance, not getattr: pydantic's misses are slow
        return event.message.conversation_id
    if isinstance(event, ConversationOpened):
        return event.conversation.id
    if isinstance(event, ChannelSignal):
        return event.conversation_id
    return None


def event_key(event: Event) -> Hashable:
    """What tells an event logged inside a transaction from the same event published after it."""
    if isinstance(event, _WITH_MESSAGE):
        return (event.type, event.message.id, event.message.status)
    if isinstance(event, ConversationOpened):
        return (event.type, event.conversation.id)
    if isinstance(event, ContactUpdated):
        return (event.type, event.contact.id, event.change)
    if isinstance(event, ContactMerged):
        return (event.type, event.merge.id)
    if isinstance(event, MergeProposed):
        return (event.type, event.proposal.id)
    return (event.type, id(event))


def contact_events(outcome: IngestOutcome) -> list[Event]:
    """The merge proposals and merges storing one inbound message made, as events."""
    events: list[Event] = [MergeProposed(proposal=p) for p in outcome.proposals]
    if outcome.contact is not None:
        events.extend(ContactMerged(merge=m, contact=outcome.contact) for m in outcome.merges)
    return events


def ingest_events(outcomes: Sequence[IngestOutcome]) -> list[Event]:
    """The events storing inbound messages publishes (the hub's ``_announce`` makes the same)."""
    events: list[Event] = []
    for outcome in outcomes:
        if outcome.duplicate or outcome.message is None or outcome.conversation is None:
            continue
        if outcome.conversation_created:
            events.append(ConversationOpened(conversation=outcome.conversation))
        if outcome.message.direction == "inbound":
            events.append(MessageReceived(message=outcome.message, conversation=outcome.conversation))
        else:
            events.append(MessageSent(message=outcome.message))
        if outcome.opt_change and outcome.contact is not None:
            events.append(ContactUpdated(contact=outcome.contact, change=outcome.opt_change))
        if outcome.merged and outcome.contact is not None:
            events.append(ContactUpdated(contact=outcome.contact, change="merged",
                                         merged=outcome.merged))
        events.extend(contact_events(outcome))
    return events


class _LoggedKeys:
    """Keys of events logged inside a transaction, until the hub publishes them (bounded: an
    entry whose event is never published, after a rolled-back batch, ages out)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._limit = limit

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        if len(self._keys) > self._limit:
            self._keys.popitem(last=False)

    def take(self, key: Hashable) -> bool:
        try:
            del self._keys[key]
        except KeyError:
            return False
        return True


class StoreFeedLog:
    """The event log, consumers and leases of the durable feed, in a :class:`SqlStore`."""

    def __init__(self, store: SqlBase) -> None:
        self.store = store
        self.logged = _LoggedKeys()
        self._lock = store.lock_clause
        self._postgres = bool(store.lock_clause)

    # -- appending -----------------------------------------------------------------------------

    async def append(self, tx: Tx, events: Iterable[Event]) -> None:
        """Append ``events`` inside the caller's transaction (they commit with it)."""
        rows: list[Any] = []
        for event in events:
            if isinstance(event, ChannelSignal):
                continue
            rows.extend((new_id("evt"), conversation_of(event), event.type, _us(event),
                         _json(event)))
            self.logged.add(event_key(event))
        if rows:  # one statement for all of them: most of an append's cost is per statement
            await tx.execute(_insert_sql(len(rows) // 5), *rows)

    async def append_ingest(self, tx: Tx, outcomes: Sequence[IngestOutcome]) -> None:
        """Append what storing inbound messages publishes, each outcome's events kept on it
        (``outcome.events``) for the hub to publish; a received message's event reuses the
        JSON the message was stored with."""
        rows: list[Any] = []
        for outcome in outcomes:
            outcome.events = events = ingest_events([outcome])
            for event in events:
                if isinstance(event, MessageReceived) and outcome.message_json is not None:
                    data = _received_json(event, outcome.message_json)
                else:
                    data = _json(event)
                rows.extend((new_id("evt"), conversation_of(event), event.type, _us(event), data))
                self.logged.add(event_key(event))
        if rows:
            await tx.execute(_insert_sql(len(rows) // 5), *rows)

    async def append_status(self, tx: Tx, outcomes: Sequence[StatusOutcome]) -> None:
        """Append the ``message.status`` events of applied receipts."""
        await self.append(tx, [StatusChanged(message=o.message, previous=o.previous) for o in outcomes])

    async def append_sent(self, tx: Tx, message: Message, previous: str) -> None:
        """Append what recording a vendor's acceptance publishes."""
        await self.append(tx, [MessageSent(message=message),
                               StatusChanged(message=message, previous=previous)])

    async def append_failed(self, tx: Tx, message: Message) -> None:
        """Append ``message.status`` for a send given up (before the failed message is saved)."""
        row = await tx.fetchone("SELECT status FROM messages WHERE id = $1", message.id)
        await self.append(tx, [StatusChanged(message=message, previous=row[0] if row else "queued")])

    async def append_queued(self, tx: Tx, message: Message) -> None:
        """Append ``message.queued`` for a stored outbound message."""
        await self.append(tx, [MessageQueued(message=message)])

    async def append_now(self, events: Sequence[Event]) -> None:
        """Append events published after their commit, in one transaction of their own."""
        if events:
            await self.store._write(lambda tx: self._append_plain(tx, events))

    async def _append_plain(self, tx: Tx, events: Sequence[Event]) -> None:
        for start in range(0, len(events), 100):
            rows: list[Any] = []
            for event in events[start:start + 100]:
                rows.extend((new_id("evt"), conversation_of(event), event.type, _us(event),
                             _json(event)))
            await tx.execute(_insert_sql(len(rows) // 5), *rows)

    # -- numbering -----------------------------------------------------------------------------

    async def _sequence(self, tx: Tx) -> int:
        """Number every committed, unnumbered event (under the counter's row lock); return the
        last ``seq``."""
        row = await tx.fetchone(f"SELECT last FROM feed_sequence{self._lock}")  # noqa: S608 - constant
        last = int(row[0]) if row else 0
        rows = await tx.fetchall(
            "SELECT id FROM feed_events WHERE seq IS NULL ORDER BY id LIMIT $1", _SEQUENCE_BATCH)
        if not rows:
            return last
        ids = [r[0] for r in rows]
        seqs = list(range(last + 1, last + 1 + len(ids)))
        if self._postgres:
            await tx.execute(
                "UPDATE feed_events f SET seq = v.s FROM unnest($1::text[], $2::bigint[]) AS v(id, s) "
                "WHERE f.id = v.id AND f.seq IS NULL", ids, seqs)
        else:
            for event_id, seq in zip(ids, seqs, strict=True):
                await tx.execute("UPDATE feed_events SET seq = $1 WHERE id = $2 AND seq IS NULL",
                                 seq, event_id)
        await tx.execute("UPDATE feed_sequence SET last = $1", seqs[-1])
        return seqs[-1]

    async def _unnumbered(self) -> bool:
        row = await self.store._read(lambda tx: tx.fetchone(
            "SELECT 1 FROM feed_events WHERE seq IS NULL LIMIT 1"))
        return row is not None

    # -- reading -------------------------------------------------------------------------------

    async def last_seq(self) -> int:
        """The highest ``seq`` given so far (numbering what committed)."""
        if await self._unnumbered():
            return await self.store._write(self._sequence)
        row = await self.store._read(lambda tx: tx.fetchone("SELECT last FROM feed_sequence"))
        return int(row[0]) if row else 0

    async def read_after(self, seq: int, limit: int) -> list[FeedRecord]:
        """Up to ``limit`` events after ``seq``, in order, for readers that do not acknowledge
        (Server-Sent Events)."""
        if await self._unnumbered():
            await self.store._write(self._sequence)
        rows = await self.store._read(lambda tx: tx.fetchall(
            "SELECT seq, conversation_id, type, data FROM feed_events WHERE seq > $1 "
            "ORDER BY seq LIMIT $2", seq, limit))
        return [FeedRecord(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def claim(self, name: str, owner: str, limit: int, lease: float) -> list[FeedRecord]:
        """Lease up to ``limit`` events of consumer ``name`` to ``owner`` (one process)."""

        async def unit(tx: Tx) -> list[FeedRecord]:
            now = now_us()
            await self._sequence(tx)
            acked = await self._consumer(tx, name, now)
            leases = {int(r[0]): (r[1], r[2], int(r[3]), bool(r[4])) for r in await tx.fetchall(
                "SELECT seq, conversation_id, owner, lease_us, acked FROM feed_leases WHERE name = $1",
                name)}
            rows = await tx.fetchall(
                "SELECT seq, conversation_id, type, data FROM feed_events WHERE seq > $1 "
                "ORDER BY seq LIMIT $2", acked, max(200, 4 * limit) + len(leases))
            blocked = {conv for conv, holder, until, done in leases.values()
                       if conv and not done and until > now and holder != owner}
            taken: list[FeedRecord] = []
            for row in rows:
                seq, conv = int(row[0]), row[1]
                held = leases.get(seq)
                if held is not None:
                    _, holder, until, done = held
                    if done:
                        continue
                    if until > now:  # someone is working on it: later events of its
                        if conv and holder != owner:  # conversation wait for them
                            blocked.add(conv)
                        continue
                if conv and conv in blocked:
                    continue
                taken.append(FeedRecord(seq, conv, row[2], row[3]))
                if len(taken) >= limit:
                    break
            until = now + int(lease * 1_000_000)
            for record in taken:
                await tx.execute(
                    "INSERT INTO feed_leases (name, seq, conversation_id, owner, lease_us, acked) "
                    "VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (name, seq) DO UPDATE SET "
                    "owner = excluded.owner, lease_us = excluded.lease_us",
                    name, record.seq, record.conversation_id, owner, until)
            return taken

        return await self.store._write(unit)

    async def _consumer(self, tx: Tx, name: str, now: int) -> int:
        sql = f"SELECT acked FROM feed_consumers WHERE name = $1{self._lock}"  # noqa: S608 - constant
        row = await tx.fetchone(sql, name)
        if row is None:
            await tx.execute(
                "INSERT INTO feed_consumers (name, acked, created_us, seen_us) VALUES ($1, 0, $2, $2) "
                "ON CONFLICT DO NOTHING", name, now)
            row = await tx.fetchone(sql, name)
        else:
            await tx.execute("UPDATE feed_consumers SET seen_us = $2 WHERE name = $1", name, now)
        return int(row[0]) if row else 0

    async def release(self, name: str, owner: str, seqs: Sequence[int]) -> None:
        """Give back events ``owner`` was leased but did not hand out (a reader that stopped)."""
        if not seqs:
            return

        async def unit(tx: Tx) -> None:
            for seq in seqs:
                await tx.execute("DELETE FROM feed_leases WHERE name = $1 AND seq = $2 AND owner = $3 "
                                 "AND acked = 0", name, seq, owner)

        await self.store._write(unit)

    async def renew(self, name: str, owner: str, seqs: Sequence[int], lease: float) -> list[int]:
        """Lease ``seqs`` to ``owner`` again for ``lease`` seconds from now (those it still
        holds unacknowledged); those of them another process took over after ``owner``'s lease
        ran out, and has not acknowledged."""
        if not seqs:
            return []
        until = now_us() + int(lease * 1_000_000)
        numbers = [int(seq) for seq in seqs]
        # two statements a chunk of up to 500 (on PostgreSQL a statement is a round trip; both
        # databases bound the placeholders of one statement)
        chunks = [numbers[i:i + _RENEW_CHUNK] for i in range(0, len(numbers), _RENEW_CHUNK)]

        async def unit(tx: Tx) -> list[int]:
            lost: list[int] = []
            for chunk in chunks:
                mine = "name = $2 AND owner = $3 AND acked = 0 AND seq IN (" + _placeholders(4, len(chunk))
                others = "name = $1 AND owner <> $2 AND acked = 0 AND seq IN (" + _placeholders(3, len(chunk))
                await tx.execute(f"UPDATE feed_leases SET lease_us = $1 WHERE {mine})",  # noqa: S608
                                 until, name, owner, *chunk)
                rows = await tx.fetchall(f"SELECT seq FROM feed_leases WHERE {others})",  # noqa: S608
                                         name, owner, *chunk)
                lost.extend(int(row[0]) for row in rows)
            return sorted(lost)

        return await self.store._write(unit)

    async def ack(self, name: str, owner: str, seq: int) -> None:
        """Acknowledge ``seq`` and every earlier event ``owner`` holds; move the resume point
        past every event acknowledged without a gap."""

        async def unit(tx: Tx) -> None:
            row = await tx.fetchone(
                f"SELECT acked FROM feed_consumers WHERE name = $1{self._lock}", name)  # noqa: S608
            if row is None or seq <= int(row[0]):
                return
            mark = int(row[0])
            await tx.execute(
                "UPDATE feed_leases SET acked = 1 WHERE name = $1 AND acked = 0 "
                "AND (seq = $2 OR (owner = $3 AND seq < $2))", name, seq, owner)
            first = await tx.fetchone(
                "SELECT e.seq FROM feed_events e WHERE e.seq > $2 AND NOT EXISTS (SELECT 1 FROM "
                "feed_leases l WHERE l.name = $1 AND l.seq = e.seq AND l.acked = 1) "
                "ORDER BY e.seq LIMIT 1", name, mark)
            if first is None:
                top = await tx.fetchone(
                    "SELECT max(seq) FROM feed_leases WHERE name = $1 AND acked = 1", name)
                new = max(mark, int(top[0]) if top and top[0] is not None else mark)
            else:
                new = int(first[0]) - 1
            if new > mark:
                await tx.execute("UPDATE feed_consumers SET acked = $2 WHERE name = $1", name, new)
                await tx.execute("DELETE FROM feed_leases WHERE name = $1 AND seq <= $2", name, new)

        await self.store._write(unit)

    async def consumers(self) -> dict[str, int]:
        """Every consumer's resume point (the last ``seq`` it acknowledged without a gap)."""
        rows = await self.store._read(lambda tx: tx.fetchall(
            "SELECT name, acked FROM feed_consumers ORDER BY name"))
        return {str(r[0]): int(r[1]) for r in rows}

    async def trim(self, max_age: float) -> int:
        """Delete events every consumer acknowledged (none without consumers) and events older
        than ``max_age`` seconds; return how many went."""

        async def unit(tx: Tx) -> int:
            row = await tx.fetchone("SELECT min(acked) FROM feed_consumers")
            acked = int(row[0]) if row and row[0] is not None else 0
            # the oldest events by seq (the index there is), acknowledged by all or too old
            gone = await tx.execute(
                "DELETE FROM feed_events WHERE seq IN (SELECT seq FROM feed_events WHERE seq IS NOT NULL "
                "ORDER BY seq LIMIT 20000) AND (seq <= $1 OR at_us < $2)",
                acked, now_us() - int(max_age * 1_000_000))
            if gone:  # leases of events that aged out before their consumer acknowledged them
                await tx.execute(
                    "DELETE FROM feed_leases WHERE seq < (SELECT coalesce(min(seq), "
                    "(SELECT last + 1 FROM feed_sequence)) FROM feed_events WHERE seq IS NOT NULL)")
            return gone

        return await self.store._write(unit)


_RENEW_CHUNK = 500
"""Events a statement of :meth:`StoreFeedLog.renew` names at most."""


@functools.cache
def _placeholders(first: int, count: int) -> str:
    """``$first, $first+1, …``: ``count`` numbered placeholders."""
    return ", ".join(f"${first + i}" for i in range(count))


@functools.cache
def _insert_sql(count: int) -> str:
    values = ", ".join(f"(${5 * i + 1}, NULL, ${5 * i + 2}, ${5 * i + 3}, ${5 * i + 4}, ${5 * i + 5})"
                       for i in range(count))
    return f"INSERT INTO feed_events (id, seq, conversation_id, type, at_us, data) VALUES {values}"  # noqa: S608 - placeholders only


def _json(event: Any) -> str:
    # the event's own serializer: the same JSON as the union's adapter, at half the cost
    return str(event.__pydantic_serializer__.to_json(event).decode())


_WITHOUT_MESSAGE = {"message", "conversation"}


def _received_json(event: MessageReceived, message_json: str) -> str:
    """``_json(event)``, with the message's JSON spliced in rather than serialised again."""
    head = event.__pydantic_serializer__.to_json(event, exclude=_WITHOUT_MESSAGE).decode()
    conversation = event.conversation.__pydantic_serializer__.to_json(event.conversation).decode()
    return f'{head[:-1]},"message":{message_json},"conversation":{conversation}}}'


def _us(event: Any) -> int:
    return int(event.at.timestamp() * 1_000_000)
