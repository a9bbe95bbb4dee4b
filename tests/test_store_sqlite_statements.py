"""SQLite's statements per inbound message, and the reads folded into them: a new customer's
first message finds the owner of its address in the thread's read (one statement fewer), with
the same result as the separate look-up it replaces."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnichannel_sdk import InboundMessage
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._models import Address, TextPart
from omnichannel_sdk._store import IngestItem, RawPayload
from omnichannel_sdk._store._sqlite import SQLiteStore

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _item(ext: str, handle: str, ours: str = "+15550000") -> IngestItem:
    draft = InboundMessage(external_id=ext, sender=Address(channel="sms", handle=handle),
                           recipients=[Address(channel="sms", handle=ours)],
                           parts=[TextPart(text="hi")], profile={"country": "US"})
    return IngestItem(message_id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      draft=draft, thread_key=f"{handle}|{ours}",
                      contact_addresses=[draft.sender], received_at=NOW,
                      window=timedelta(hours=24))


def _counting(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    return statements


@pytest.mark.anyio
async def test_statements_of_a_message(tmp_path: Any) -> None:
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        statements = _counting(store)
        await store.ingest([_item("SM1", "+14155550100")], None)
        first = [s for s in statements if s not in ("BEGIN IMMEDIATE", "COMMIT")]
        statements.clear()
        await store.ingest([_item("SM2", "+14155550100")], None)
        again = [s for s in statements if s not in ("BEGIN IMMEDIATE", "COMMIT")]
        # claim, thread + owner read, address, contact, same-person look-up, conversation,
        # message (until 2026-12-02 the owner was read by a statement of its own: 8)
        assert len(first) == 7, first
        assert not any(s.startswith("SELECT c.data FROM contact_addresses") for s in first)
        # claim, thread + contact read, message, window
        assert len(again) == 4, again
    finally:
        await store.close()


@pytest.mark.anyio
async def test_the_owner_read_with_the_thread_finds_the_known_contact(tmp_path: Any) -> None:
    """A known customer writing to another of our numbers (a new thread): the owner found by
    the thread's read is the contact, as the separate look-up found it."""
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        [first] = await store.ingest([_item("SM1", "+14155550100")], None)
        statements = _counting(store)
        [other] = await store.ingest([_item("SM2", "+14155550100", ours="+15550001")], None)
        assert first.contact and other.contact and first.conversation and other.conversation
        assert other.conversation_created and other.conversation.id != first.conversation.id
        assert other.contact.id == first.contact.id
        assert other.conversation.contact_id == first.contact.id
        assert not any(s.startswith("INSERT INTO contacts") for s in statements)
        [third] = await store.ingest([_item("SM3", "+14155550199", ours="+15550001")], None)
        assert third.contact and third.contact.id != first.contact.id
    finally:
        await store.close()


def _raw(i: int) -> RawPayload:
    return RawPayload(id=f"raw_{i}", channel_key="sms", received_at=NOW, method="POST",
                      url="https://x.test/webhooks/sms", headers={"content-type": "x"},
                      body=b"Body=hi&n=%d" % i)


@pytest.mark.anyio
async def test_a_batch_stores_its_raw_payloads_together(tmp_path: Any) -> None:
    """A group commit's raw payloads go in one ``executemany`` before it commits: every one is
    stored, as the statement per payload stored them, and a unit that fails takes only its own
    payload with it (the batch runs again unit by unit)."""
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        statements = _counting(store)

        async def bad(tx: Any) -> None:
            await store._insert_raw(tx, _raw(99))
            raise ValueError("boom")

        results = await asyncio.gather(
            *[store.ingest([_item(f"SM{i}", f"+1415555{i:04d}")], _raw(i)) for i in range(5)],
            store._write(bad), store.save_raw(_raw(5)), return_exceptions=True)
        assert isinstance(results[5], ValueError)
        assert not any(isinstance(r, BaseException) for i, r in enumerate(results) if i != 5)
        for i in range(6):
            raw = await store.get_raw(f"raw_{i}")
            assert raw is not None and raw.body == b"Body=hi&n=%d" % i
            assert raw.headers == {"content-type": "x"} and raw.received_at == NOW
        assert await store.get_raw("raw_99") is None
        statements.clear()
        await asyncio.gather(*[store.save_raw(_raw(i)) for i in range(10, 14)])
        assert sum(s.startswith("INSERT INTO raw_payloads") for s in statements) == 4
        assert sum(s == "COMMIT" for s in statements) == 1
        for i in range(10, 14):
            assert await store.get_raw(f"raw_{i}") is not None
    finally:
        await store.close()
