"""PostgreSQL's round trips of a send's writes: ``create_outbound`` (the message, its
conversation's ``updated_us``, the leased job) and the usual ``record_sent`` (the vendor id,
the job's delete, the message's update) are one statement each, alone or many in a batch; and
what they store is what SQLite (one statement at a time) stores for the same sends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from omnichannel_sdk import Address, Message, TextPart
from omnichannel_sdk._store import Job, SqlStore
from omnichannel_sdk._store._messages import early_receipt_key
from omnichannel_sdk._store._postgres import PostgresStore
from omnichannel_sdk._store._sqlite import SQLiteStore
from omnichannel_sdk._store._tx import now_us

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


class Trips:
    """The statements a store's connections send (not BEGIN / COMMIT)."""

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        import asyncpg

        self.sent: list[str] = []
        for name in ("execute", "fetchrow", "fetch"):
            original = getattr(asyncpg.Connection, name)
            patch.setattr(asyncpg.Connection, name, self._counted(original))

    def _counted(self, original: Any) -> Any:
        async def call(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(query)
            return await original(conn, query, *args, **kwargs)
        return call

    def take(self) -> list[str]:
        found = [q for q in self.sent if not q.startswith(("BEGIN", "COMMIT", "ROLLBACK"))
                 and "RESET ALL" not in q and "pg_advisory" not in q]
        self.sent.clear()
        return found


async def _conversations(store: SqlStore, n: int) -> list[str]:
    ids = []
    for k in range(n):
        customer = Address(channel="sms", handle=f"+1415556{k:04d}")
        conversation, _ = await store.open_conversation(
            "sms", "sms", customer.handle, [customer],
            [customer, Address(channel="sms", handle="+15005550006")])
        ids.append(conversation.id)
    return ids


def _send(conversation_id: str, i: int) -> tuple[Message, Job]:
    message = Message(
        id=f"msg_{i:04d}", channel="sms", channel_key="sms", adapter="t", direction="outbound",
        conversation_id=conversation_id, sender=Address(channel="sms", handle="+15005550006"),
        recipients=[Address(channel="sms", handle="+14155550100")],
        parts=[TextPart(text=f"out {i}")], created_at=NOW, received_at=NOW, status="queued",
        metadata={"i": i})
    return message, Job(id=f"job_{i:04d}", kind="send", channel_key="sms",
                        message_id=message.id, payload={"parts": [], "contact_id": "c"})


def _sent(message: Message, i: int) -> Message:
    return message.model_copy(update={"status": "sent", "external_id": f"SM{i}",
                                      "metadata": {**message.metadata, "attempts": 1}})


async def test_a_send_s_writes_are_a_statement_each(
        pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    [conversation] = await _conversations(pg, 1)
    trips = Trips(monkeypatch)
    message, job = _send(conversation, 1)
    await pg.create_outbound(message, job, lease=60)
    created = trips.take()
    await pg.begin_attempt(job.id)
    begun = trips.take()
    final = await pg.record_sent(_sent(message, 1), ["SM1"], job.id)
    recorded = trips.take()
    assert len(created) == 1, created
    assert all(f"{t} " in created[0] for t in ("INSERT INTO messages", "UPDATE conversations",
                                               "INSERT INTO jobs"))
    assert len(begun) == 1
    assert len(recorded) == 1, recorded
    assert all(f"{t} " in recorded[0] for t in ("INSERT INTO message_refs", "DELETE FROM jobs",
                                                "UPDATE messages"))
    assert final == _sent(message, 1)
    assert await pg.get_message(message.id) == final
    assert await pg.find_message_by_external("sms", "SM1") == final
    assert await pg.pending_jobs() == 0


async def test_the_next_send_s_call_goes_in_the_same_statement(
        pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """``record_sent(..., next_attempt=...)`` (the outbox handing the slot on) adds the next
    job's attempt to the same round trip."""
    [conversation] = await _conversations(pg, 1)
    (message, job), (second, following) = _send(conversation, 1), _send(conversation, 2)
    await pg.create_outbound(message, job, lease=60)
    await pg.create_outbound(second, following, lease=60)
    trips = Trips(monkeypatch)
    final = await pg.record_sent(_sent(message, 1), ["SM1"], job.id, next_attempt=following.id)
    recorded = trips.take()
    assert len(recorded) == 1, recorded
    assert all(f"{t} " in recorded[0] for t in ("INSERT INTO message_refs", "DELETE FROM jobs",
                                                "UPDATE jobs", "UPDATE messages"))
    assert final == _sent(message, 1)

    async def read(tx: Any) -> Any:
        return await tx.fetchone("SELECT attempt_us, vendor_attempts FROM jobs WHERE id = $1",
                                 following.id)

    row = await pg._read(read)
    assert row is not None and row[0] is not None and row[1] == 1


async def test_a_batch_of_sends_is_a_statement_a_send(
        pg: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    conversations = await _conversations(pg, 4)
    sends = [_send(conversations[i % 4], i) for i in range(8)]
    trips = Trips(monkeypatch)
    await asyncio.gather(*[pg.create_outbound(m, j, lease=60) for m, j in sends])
    created = trips.take()
    await asyncio.gather(*[pg.record_sent(_sent(m, i), [f"SM{i}"], j.id)
                           for i, (m, j) in enumerate(sends)])
    recorded = trips.take()
    assert len(created) == 8, created
    assert len(recorded) == 8, recorded
    assert await pg.pending_jobs() == 0


async def _story(store: SqlStore) -> list[Any]:
    """Sends created and recorded in batches, the usual way and the others (a receipt that
    came first, two vendor ids, a message failed meanwhile, no job): what a caller sees."""
    conversations = await _conversations(store, 3)
    sends = [_send(conversations[i % 3], i) for i in range(6)]
    before = now_us()
    await asyncio.gather(*[store.create_outbound(m, j, lease=60, attempt=i % 2 == 0)
                           for i, (m, j) in enumerate(sends)])
    await store.kv_set(early_receipt_key("sms", "SM1"),
                       '{"external_id": "SM1", "status": "delivered"}', ttl=60)
    await store.update_message(sends[3][0].model_copy(update={"status": "failed"}))
    finals = await asyncio.gather(*[
        store.record_sent(_sent(m, i), [f"SM{i}", "SMx2"] if i == 2 else [f"SM{i}"],
                          None if i == 4 else j.id)
        for i, (m, j) in enumerate(sends)])
    def shown(message: Message | None) -> Any:  # conversation ids differ between the stores
        if message is None:
            return None
        return {**message.model_dump(),
                "conversation_id": conversations.index(message.conversation_id)}

    seen: list[Any] = [shown(f) for f in finals]
    for message, _ in sends:
        seen.append(shown(await store.get_message(message.id)))
    for ext in ("SM0", "SM1", "SM2", "SMx2", "SM3", "SM4", "SM5"):
        found = await store.find_message_by_external("sms", ext)
        seen.append(found.id if found else None)
    seen.append(await store.kv_get(early_receipt_key("sms", "SM1")))
    seen.append(await store.pending_jobs())
    for conversation_id in conversations:  # each touched by its sends
        row = await store._read(lambda tx, c=conversation_id: tx.fetchone(
            "SELECT updated_us FROM conversations WHERE id = $1", c))
        seen.append(row is not None and row[0] >= before)
    return seen


async def test_what_is_stored_is_what_sqlite_stores(pg: PostgresStore,
                                                    lite: SQLiteStore) -> None:
    assert await _story(pg) == await _story(lite)
