"""PostgreSQL's held writes across the messages of one batch: a returning customer's message
insert and reply-window update go with the next message's claim (one round trip a message),
and what every message stores and reports is what the general path (SQLite, one statement at
a time) stores and reports for the same webhooks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omnichannel_sdk import Address, InboundMessage, TextPart
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import IngestItem, IngestOutcome, RawPayload, SqlStore
from omnichannel_sdk._store._postgres import PostgresStore
from omnichannel_sdk._store._sqlite import SQLiteStore

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _item(ext: str, sender: str, written: datetime, *, profile: dict[str, str] | None = None,
          ours: str = "+14155550199", to: str | None = None, channel: str = "sms") -> IngestItem:
    recipients = [Address(channel=channel, handle=ours)]
    if to:
        recipients.append(Address(channel=channel, handle=to))
    draft = InboundMessage(external_id=ext, sender=Address(channel=channel, handle=sender),
                           recipients=recipients, parts=[TextPart(text=ext)], created_at=written,
                           profile=profile or {})
    return IngestItem(message_id=new_id("msg"), channel=channel, channel_key=channel, adapter="t",
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
    fields, new customers between returning ones, and a new SMS customer whose number is a
    WhatsApp customer's (a proposal to merge them)."""
    a, b, c, d = "+14155550101", "+14155550102", "+14155550103", "+14155550104"
    hour = timedelta(hours=1)
    return [
        [_item("A1", a, NOW - 10 * hour), _item("W1", d, NOW - 9 * hour, channel="whatsapp"),
         _item("B1", b, NOW - 9 * hour)],
        [_item("A2", a, NOW - 2 * hour), _item("A3", a, NOW - 5 * hour),
         _item("B2", b, NOW - 3 * hour, profile={"country": "US"}), _item("A2", a, NOW)],
        [_item("C1", c, NOW - 4 * hour), _item("A4", a, NOW - 1 * hour, to="+14155550177"),
         _item("B3", b, NOW - 8 * hour, profile={"country": "CA"}), _item("C2", c, NOW - 6 * hour),
         _item("A5", a, NOW - 7 * hour), _item("D1", d, NOW - 2 * hour)],
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
                                     [x.handle for x in outcome.contact.addresses]),
                [(p.reason, p.address.handle, p.matched and p.matched.channel)
                 for p in outcome.proposals], len(outcome.merged)))
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
    stored = {row[0]: row for row in general[-5:]}
    assert stored["+14155550101|+14155550199"][1] == NOW - timedelta(hours=1)
    assert stored["+14155550101|+14155550199"][2] == NOW + timedelta(hours=23)
    assert [o[5] for o in general if o[2] == "D1"] == [[("same_phone", "+14155550104", "whatsapp")]]
    proposals = await pg.list_merge_proposals()
    assert len(proposals) == 1 and proposals[0].reason == "same_phone"


async def _open(store: SqlStore, address: str, thread: str) -> tuple[Any, ...]:
    """A new thread opened as the claim found it (no conversation, nobody owning the
    address), whatever happened since."""
    sender = Address(channel="sms", handle=address)

    async def unit(tx: Any) -> tuple[Any, ...]:
        conversation, created, contact = await store._open_conversation(
            tx, "sms", "sms", thread, [sender], [sender], None, NOW, timedelta(hours=24),
            row=None, owner=None)
        assert contact is not None
        return conversation.id, created, contact.id

    return await store._write(unit)


@pytest.fixture(params=["postgres", "sqlite"])
def either(request: pytest.FixtureRequest) -> SqlStore:
    """PostgreSQL's fast path and SQLite's general one (the same outcome expected of both):
    conftest's ``lite`` or ``pg``."""
    store: SqlStore = request.getfixturevalue("lite" if request.param == "sqlite" else "pg")
    return store


async def test_a_thread_whose_address_or_conversation_came_meanwhile(either: SqlStore) -> None:
    store = either
    # the address went to another contact after the claim read nobody owning it: theirs
    [owned] = await store.ingest([_item("O1", "+14155550201", NOW)], None)
    assert owned.contact is not None and owned.conversation is not None
    _, created, contact_id = await _open(store, "+14155550201", "other-thread")
    assert created and contact_id == owned.contact.id
    # the thread's conversation was opened after the claim read none: that one, a new contact
    conversation_id, created, contact_id = await _open(store, "+14155550202",
                                                       owned.conversation.thread_key)
    assert not created and conversation_id == owned.conversation.id
    assert contact_id != owned.contact.id
    found = await store.find_contact(Address(channel="sms", handle="+14155550202"))
    assert found is not None and found.id == contact_id


async def test_a_message_costs_one_statement_in_a_batch_two_for_a_new_customer(
        pg: PostgresStore) -> None:
    import asyncpg

    sent: list[str] = []
    original = {name: getattr(asyncpg.Connection, name) for name in ("execute", "fetchrow", "fetch")}

    def counted(name: str) -> Any:
        async def call(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            sent.append(query)
            return await original[name](self, query, *args, **kwargs)
        return call

    def work() -> list[str]:
        found = [q for q in sent if not q.startswith(("BEGIN", "COMMIT", "SELECT pg_advisory"))
                 and "RESET ALL" not in q]
        sent.clear()
        return found

    async def batch(prefix: str, written: datetime) -> list[IngestOutcome]:
        items = [_item(f"{prefix}{i}", f"+1415555{i:04d}", written) for i in range(8)]
        results = await asyncio.gather(*[pg.ingest([one], _raw(one.draft.external_id))
                                         for one in items])
        return [one for [one] in results]

    with pytest.MonkeyPatch.context() as patch:
        for name in original:
            patch.setattr(asyncpg.Connection, name, counted(name))
        first = await batch("F", NOW - timedelta(hours=2))
        # one batch: eight claims (each with the message insert held before it), eight
        # address + contact + same-person look-up + conversation statements, and the raw
        # payloads with the last message's insert
        sent_first = work()
        again = await batch("G", NOW - timedelta(hours=1))
        # eight claims (each carrying the previous message's insert and window update), and the
        # raw payloads with the last message's insert and window update
        sent_again = work()
    assert all(not r.duplicate and r.conversation_created for r in first)
    assert all(not r.duplicate and not r.conversation_created for r in again)
    assert len(sent_first) == 17, sent_first
    assert sum("_conv AS" in q for q in sent_first) == 8
    assert len(sent_again) == 9, sent_again
    assert sum("_win" in q for q in sent_again) == 8
    for one in [*first, *again]:
        assert one.message is not None
        assert await pg.get_message(one.message.id) == one.message
    conversations = await pg.list_conversations()
    assert len(conversations) == 8
    assert {c.window_expires_at for c in conversations} == {NOW + timedelta(hours=23)}
    for one in first:
        assert one.contact is not None and await pg.get_contact(one.contact.id) == one.contact


async def test_a_window_update_of_another_text_is_sent_not_held(pg: PostgresStore) -> None:
    from omnichannel_sdk._store._pg_tx import PgTx

    insert = "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3)"
    await pg._write(lambda tx: tx.execute(insert, "b", "1", None))

    async def unit(tx: Any) -> tuple[int, bool, bool]:
        assert isinstance(tx, PgTx)
        tx.hold_next()
        await tx.execute(insert, "a", "1", None)
        # the shared statement changed: sent at once, with the held insert, its count real
        tx.hold_next_as("_win", "UPDATE kv SET value = $2 WHERE key = $1", " RETURNING key")
        changed = await tx.execute("UPDATE kv SET value = $2 WHERE key = $1 AND true", "b", "x")
        sent = not tx.holding("_win")
        # the expected text is held, and reported as one row changed
        tx.hold_next_as("_win", "UPDATE kv SET value = $2 WHERE key = $1", " RETURNING key")
        held = await tx.execute("UPDATE kv SET value = $2 WHERE key = $1", "a", "y")
        return changed + 10 * held, sent, tx.holding("_win")

    assert await pg._write(unit) == (11, True, True)
    rows = await pg._read(lambda tx: tx.fetchall("SELECT key, value FROM kv ORDER BY key"))
    assert [tuple(r) for r in rows] == [("a", "y"), ("b", "x")]
