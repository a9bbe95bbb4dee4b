"""PostgreSQL's held writes across the messages of one batch: a returning customer's message
insert and reply-window update go with the next message's claim (one round trip a message),
and what every message stores and reports is what the general path (SQLite, one statement at
a time) stores and reports for the same webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omnichannel_sdk import Address, InboundMessage, TextPart
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import IngestItem, IngestOutcome, RawPayload, SqlStore
from omnichannel_sdk._store._postgres import PostgresStore
from omnichannel_sdk._store._sqlite import SQLiteStore

from .conftest import PG_DSN

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def _drop(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pg(pg_schema: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(f"{PG_DSN}?schema={pg_schema}")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        await _drop(pg_schema)


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(str(tmp_path / "store.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def _item(ext: str, sender: str, written: datetime, *, profile: dict[str, str] | None = None,
          ours: str = "+14155550199", to: str | None = None) -> IngestItem:
    recipients = [Address(channel="sms", handle=ours)]
    if to:
        recipients.append(Address(channel="sms", handle=to))
    draft = InboundMessage(external_id=ext, sender=Address(channel="sms", handle=sender),
                           recipients=recipients, parts=[TextPart(text=ext)], created_at=written,
                           profile=profile or {})
    return IngestItem(message_id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      draft=draft, thread_key=f"{sender}|{ours}",
                      contact_addresses=[draft.sender], received_at=NOW,
                      window=timedelta(hours=24))


def _raw(ext: str) -> RawPayload:
    return RawPayload(id=new_id("raw"), channel_key="sms", received_at=NOW, method="POST",
                      url="https://example.test/webhooks/sms", headers={}, body=ext.encode())


def _batches() -> list[list[IngestItem]]:
    """Webhooks as they arrive, a list per turn of the event loop (one batch each): returning
    customers, the same customer twice in one batch with the older message last (its window
    must not move back), a duplicate right after its original, a new participant, profile
    fields, and a new customer between returning ones."""
    a, b, c = "+14155550101", "+14155550102", "+14155550103"
    hour = timedelta(hours=1)
    return [
        [_item("A1", a, NOW - 10 * hour), _item("B1", b, NOW - 9 * hour)],
        [_item("A2", a, NOW - 2 * hour), _item("A3", a, NOW - 5 * hour),
         _item("B2", b, NOW - 3 * hour, profile={"country": "US"}), _item("A2", a, NOW)],
        [_item("C1", c, NOW - 4 * hour), _item("A4", a, NOW - 1 * hour, to="+14155550177"),
         _item("B3", b, NOW - 8 * hour, profile={"country": "CA"}), _item("C2", c, NOW - 6 * hour),
         _item("A5", a, NOW - 7 * hour)],
    ]


async def _run(store: SqlStore) -> list[Any]:
    """Every outcome and every stored conversation, without our ids (both stores make their
    own)."""
    seen: list[Any] = []
    for batch in _batches():
        results: list[list[IngestOutcome]] = await asyncio.gather(
            *[store.ingest([one], _raw(one.draft.external_id)) for one in batch])
        for [outcome] in results:
            conversation = outcome.conversation
            seen.append((
                outcome.duplicate, outcome.conversation_created,
                outcome.message.external_id if outcome.message else None,
                conversation and (conversation.thread_key, conversation.last_inbound_at,
                                  conversation.window_expires_at,
                                  [p.handle for p in conversation.participants]),
                outcome.contact and (outcome.contact.profile,
                                     [x.handle for x in outcome.contact.addresses])))
    for conversation in sorted(await store.list_conversations(), key=lambda c: c.thread_key):
        messages = await store.list_messages(conversation.id)
        contact = await store.get_contact(conversation.contact_id)
        assert contact is not None
        seen.append((conversation.thread_key, conversation.last_inbound_at,
                     conversation.window_expires_at, [p.handle for p in conversation.participants],
                     sorted(m.external_id or "" for m in messages), contact.profile))
    return seen


async def test_held_writes_store_what_the_general_path_stores(pg: PostgresStore,
                                                              lite: SQLiteStore) -> None:
    ours, general = await _run(pg), await _run(lite)
    assert ours == general
    # the older message of a batch, after a newer one of the same customer, kept the window
    stored = {row[0]: row for row in general[-3:]}
    assert stored["+14155550101|+14155550199"][1] == NOW - timedelta(hours=1)
    assert stored["+14155550101|+14155550199"][2] == NOW + timedelta(hours=23)


async def test_a_returning_customer_costs_one_statement_in_a_batch(pg: PostgresStore) -> None:
    import asyncpg

    first = [_item(f"F{i}", f"+1415555{i:04d}", NOW - timedelta(hours=2)) for i in range(8)]
    await asyncio.gather(*[pg.ingest([one], None) for one in first])
    sent: list[str] = []
    original = {name: getattr(asyncpg.Connection, name) for name in ("execute", "fetchrow", "fetch")}

    def counted(name: str) -> Any:
        async def call(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(query)
            return await original[name](self, query, *args, **kwargs)
        return call

    again = [_item(f"G{i}", f"+1415555{i:04d}", NOW - timedelta(hours=1)) for i in range(8)]
    with pytest.MonkeyPatch.context() as patch:
        for name in original:
            patch.setattr(asyncpg.Connection, name, counted(name))
        results = await asyncio.gather(*[pg.ingest([one], _raw(one.draft.external_id))
                                         for one in again])
    assert all(not r.duplicate and not r.conversation_created for [r] in results)
    work = [q for q in sent if not q.startswith(("BEGIN", "COMMIT", "SELECT pg_advisory",
                                                   "SELECT pg_advisory_unlock_all"))]
    work = [q for q in work if "RESET ALL" not in q]
    # one batch: eight claims (each carrying the previous message's insert and window update)
    # and the raw payloads with the last message's insert and window update
    assert len(work) == 9, work
    assert sum("_win" in q for q in work) == 8
    for one in again:
        stored = await pg.find_message_by_external("sms", one.draft.external_id)
        assert stored is not None
    conversations = await pg.list_conversations()
    assert {c.window_expires_at for c in conversations} == {NOW + timedelta(hours=23)}
