"""One store suite, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from omnichannel_sdk import (
    Action,
    Address,
    DeadLetter,
    EventPart,
    InboundMessage,
    Message,
    StatusUpdate,
    TextPart,
)
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import IngestItem, Job, RawPayload, SqlStore
from omnichannel_sdk._store._postgres import PostgresStore
from omnichannel_sdk._store._sqlite import SQLiteStore

from .conftest import PG_DSN, drop_pg_schema, need_service

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        s: SqlStore = SQLiteStore(str(tmp_path / "store.db"))
        await s.open()
        yield s
        await s.close()
    else:
        need_service("PostgreSQL", 5432)
        schema = "t_" + new_id("s").split("_")[1].lower()
        s = PostgresStore(PG_DSN, schema=schema)
        await s.open()
        yield s
        await s.close()
        await drop_pg_schema(schema)


def sms(handle: str) -> Address:
    return Address(channel="sms", handle=handle)


def item(ext: str, sender: str = "+14155550100", text: str = "hi", *, thread: str | None = None,
         refs: list[str] | None = None, hints: list[Address] | None = None,
         parts: list | None = None, hint: str | None = None, ours: str = "+14155550199",
         when: datetime | None = None) -> IngestItem:
    draft = InboundMessage(external_id=ext, sender=sms(sender), recipients=[sms(ours)],
                           parts=parts if parts is not None else [TextPart(text=text)],
                           references=refs or [], conversation_hint=hint)
    return IngestItem(message_id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      draft=draft, thread_key=thread or f"{sender}|{ours}",
                      contact_addresses=[draft.sender, *(hints or [])],
                      received_at=when or datetime.now(UTC), window=timedelta(hours=24))


async def test_ingest_stores_threads_and_deduplicates(store: SqlStore) -> None:
    [first] = await store.ingest([item("SM1")], None)
    assert not first.duplicate and first.conversation_created
    assert first.message and first.conversation and first.contact
    assert first.conversation.window_expires_at is not None
    [again] = await store.ingest([item("SM1")], None)
    assert again.duplicate
    [second] = await store.ingest([item("SM2", text="more")], None)
    assert second.conversation and second.conversation.id == first.conversation.id
    assert not second.conversation_created
    messages = await store.list_messages(first.conversation.id)
    assert [m.external_id for m in messages] == ["SM1", "SM2"]
    assert (await store.get_message(first.message.id)) == first.message
    found = await store.find_message_by_external("sms", "SM2")
    assert found and found.text == "more"
    contact = await store.get_contact(first.conversation.contact_id)
    assert contact and contact.addresses == [sms("+14155550100")]


def _written(draft_item: IngestItem, when: datetime) -> IngestItem:
    """The item with the vendor's own time of the message."""
    draft = draft_item.draft.model_copy(update={"created_at": when})
    return IngestItem(**{**draft_item.__dict__, "draft": draft})


async def test_reply_window_runs_from_vendor_time(store: SqlStore) -> None:
    now = datetime.now(UTC)
    [first] = await store.ingest([_written(item("W1"), now - timedelta(hours=23))], None)
    assert first.conversation is not None
    assert first.conversation.window_expires_at == now + timedelta(hours=1)
    [newer] = await store.ingest([_written(item("W2"), now - timedelta(hours=2))], None)
    assert newer.conversation is not None
    assert newer.conversation.window_expires_at == now + timedelta(hours=22)
    # an older message whose webhook came late does not move the window back
    [late] = await store.ingest([_written(item("W3"), now - timedelta(hours=20))], None)
    assert late.conversation is not None
    assert late.conversation.last_inbound_at == now - timedelta(hours=2)
    # a vendor clock ahead of ours does not extend it past our receive time
    [ahead] = await store.ingest([_written(item("W4", when=now), now + timedelta(hours=5))], None)
    assert ahead.conversation is not None
    assert ahead.conversation.window_expires_at == now + timedelta(hours=24)


async def test_references_and_hints_pick_the_conversation(store: SqlStore) -> None:
    [a] = await store.ingest([item("A1", thread="t-a")], None)
    [b] = await store.ingest([item("B1", thread="t-b", refs=["A1"])], None)
    assert a.conversation and b.conversation and b.conversation.id == a.conversation.id
    assert b.message and a.message and b.message.reply_to == a.message.id
    [c] = await store.ingest([item("C1", thread="t-c", hint=a.conversation.id)], None)
    assert c.conversation and c.conversation.id == a.conversation.id
    [d] = await store.ingest([item("D1", thread="t-d")], None)
    assert d.conversation and d.conversation.id != a.conversation.id


async def test_closed_conversation_is_not_reused(store: SqlStore) -> None:
    [a] = await store.ingest([item("X1")], None)
    assert a.conversation
    await store.set_conversation_status(a.conversation.id, "closed")
    [b] = await store.ingest([item("X2")], None)
    assert b.conversation and b.conversation.id != a.conversation.id and b.conversation_created
    assert b.conversation.contact_id == a.conversation.contact_id


async def test_contact_hints_link_channels(store: SqlStore) -> None:
    email = Address(channel="email", handle="Ann@Example.COM")
    [web] = await store.ingest([item("W1", sender="+14155550111", hints=[email])], None)
    assert web.contact
    draft = InboundMessage(external_id="<m1@example.com>", sender=email, parts=[TextPart(text="x")])
    mail = IngestItem(message_id=new_id("msg"), channel="email", channel_key="mail", adapter="t",
                      draft=draft, thread_key="subject", contact_addresses=[email],
                      received_at=datetime.now(UTC))
    [out] = await store.ingest([mail], None)
    assert out.contact and out.contact.id == web.contact.id
    assert {a.handle for a in out.contact.addresses} == {"+14155550111", "ann@example.com"}
    assert (await store.find_contact(email)) == out.contact


async def test_opt_out_and_back_in(store: SqlStore) -> None:
    [out] = await store.ingest([item("O1", parts=[TextPart(text="STOP"), EventPart(name="opt_out")])], None)
    assert out.contact and out.contact.opted_out == ["sms"] and out.opt_change == "opt_out"
    [back] = await store.ingest([item("O2", parts=[EventPart(name="opt_in")])], None)
    assert back.contact and back.contact.opted_out == []


async def test_numbered_reply_maps_to_action(store: SqlStore) -> None:
    [first] = await store.ingest([item("N1")], None)
    assert first.conversation
    conv = first.conversation
    now = datetime.now(UTC)
    actions = [Action(id="yes", title="Yes"), Action(id="no", title="No")]
    outbound = Message(id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                       direction="outbound", conversation_id=conv.id, sender=sms("+14155550199"),
                       recipients=[sms("+14155550100")], parts=[TextPart(text="1. Yes\n2. No")],
                       created_at=now, received_at=now, status="queued",
                       metadata={"numbered_actions": [a.model_dump() for a in actions]})
    job = Job(id=new_id("job"), kind="send", channel_key="sms", message_id=outbound.id)
    await store.create_outbound(outbound, job, lease=60)
    [answer] = await store.ingest([item("N2", text=" 2 ")], None)
    assert answer.message
    events = [p for p in answer.message.parts if isinstance(p, EventPart)]
    assert events and events[0].name == "action" and events[0].data["id"] == "no"
    [other] = await store.ingest([item("N3", text="7")], None)
    assert other.message and len(other.message.parts) == 1


async def _outbound(store: SqlStore, ext: str) -> Message:
    [first] = await store.ingest([item("in-" + ext)], None)
    assert first.conversation
    now = datetime.now(UTC)
    message = Message(id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      direction="outbound", conversation_id=first.conversation.id,
                      sender=sms("+14155550199"), recipients=[sms("+14155550100")],
                      parts=[TextPart(text="out")], created_at=now, received_at=now, status="queued")
    job = Job(id=new_id("job"), kind="send", channel_key="sms", message_id=message.id)
    await store.create_outbound(message, job, lease=60)
    return await store.record_sent(message.model_copy(update={"status": "sent", "external_id": ext}),
                                   [ext], job.id)


async def test_status_moves_forward_only(store: SqlStore) -> None:
    sent = await _outbound(store, "OUT1")
    assert sent.status == "sent"
    for status, expected in [("delivered", "delivered"), ("read", "read"),
                             ("delivered", "read"), ("failed", "read"), ("sent", "read")]:
        await store.apply_status("sms", StatusUpdate(external_id="OUT1", status=status))
        message = await store.get_message(sent.id)
        assert message and message.status == expected
    assert await store.apply_status("sms", StatusUpdate(external_id="unknown", status="read")) == []


async def test_watermark_marks_earlier_messages(store: SqlStore) -> None:
    first = await _outbound(store, "W1")
    second = await _outbound(store, "W2")
    moved = await store.apply_status("sms", StatusUpdate(
        status="read", watermark=datetime.now(UTC) + timedelta(seconds=1),
        recipient=sms("+14155550100")))
    assert {o.message.id for o in moved} == {first.id, second.id}


async def test_jobs_claim_retry_lease_and_fail(store: SqlStore) -> None:
    job = Job(id=new_id("job"), kind="media", channel_key="sms", message_id=None, payload={"part": 0})
    await store.enqueue_job(job)
    [claimed] = await store.claim_jobs(10, lease=60)
    assert claimed.id == job.id and claimed.payload == {"part": 0}
    assert await store.claim_jobs(10, lease=60) == []
    await store.retry_job(job.id, delay=60, error="boom")
    assert await store.claim_jobs(10, lease=60) == []
    await store.retry_job(job.id, delay=0, error="boom")
    [again] = await store.claim_jobs(10, lease=0.01)
    assert again.attempts == 2
    await asyncio.sleep(0.05)
    [orphan] = await store.claim_jobs(10, lease=60)  # its lease ran out: taken over
    assert orphan.id == job.id
    letter = DeadLetter(id=new_id("dl"), kind="outbound", channel_key="sms", adapter="t",
                        error="gave up", created_at=datetime.now(UTC))
    await store.fail_job(orphan, letter, None)
    assert await store.pending_jobs() == 0
    [stored] = await store.list_dead_letters()
    assert stored.id == letter.id
    await store.mark_replayed(letter.id)
    assert await store.list_dead_letters() == []
    assert len(await store.list_dead_letters(include_replayed=True)) == 1


async def test_raw_payload_roundtrip(store: SqlStore) -> None:
    raw = RawPayload(id=new_id("raw"), channel_key="sms", received_at=datetime.now(UTC),
                     method="POST", url="https://x/webhooks/sms", headers={"a": "b"},
                     body=b"\x00\xffbody")
    await store.ingest([], raw)
    loaded = await store.get_raw(raw.id)
    assert loaded and loaded.body == raw.body and loaded.headers == {"a": "b"}


async def test_kv(store: SqlStore) -> None:
    assert await store.kv_get("k") is None
    assert await store.kv_add("k", "1", ttl=60)
    assert not await store.kv_add("k", "2", ttl=60)
    await store.kv_set("k", "3")
    assert await store.kv_get("k") == "3"
    await store.kv_set("short", "x", ttl=0.01)
    await asyncio.sleep(0.05)
    assert await store.kv_get("short") is None
    assert await store.kv_add("short", "y", ttl=60)  # an expired lock can be taken
    await store.kv_set("p:1", "a")
    await store.kv_set("p:2", "b")
    assert await store.kv_scan("p:") == [("p:1", "a"), ("p:2", "b")]
    await store.kv_delete("p:1")
    assert await store.kv_scan("p:") == [("p:2", "b")]


async def test_concurrent_duplicates_store_once(store: SqlStore) -> None:
    results = await asyncio.gather(*[store.ingest([item("DUP")], None) for _ in range(20)])
    assert sum(1 for [r] in results if not r.duplicate) == 1
    assert len(await store.list_conversations()) == 1


async def test_new_senders_concurrently_get_one_conversation_each(store: SqlStore) -> None:
    await asyncio.gather(*[store.ingest([item(f"S{i}", sender=f"+1415555{i:04d}")], None)
                           for i in range(30)])
    conversations = await store.list_conversations()
    assert len(conversations) == 30
    assert len({c.contact_id for c in conversations}) == 30


async def test_list_conversations_filters_and_orders(store: SqlStore) -> None:
    await store.ingest([item("L1", sender="+14155550001")], None)
    await store.ingest([item("L2", sender="+14155550002")], None)
    newest = await store.list_conversations(limit=1)
    assert newest[0].thread_key.startswith("+14155550002")
    assert len(await store.list_conversations(channel_key="sms", status="open")) == 2
    assert await store.list_conversations(channel_key="other") == []
    msgs = await store.list_messages(newest[0].id, limit=1)
    assert len(msgs) == 1 and await store.list_messages(newest[0].id, after=msgs[0].id) == []


async def test_sqlite_group_commit_batches_concurrent_writes(tmp_path) -> None:
    store = SQLiteStore(str(tmp_path / "g.db"))
    await store.open()
    flushes = 0
    original = store._flush

    def counting() -> None:
        nonlocal flushes
        flushes += 1
        original()

    store._flush = counting  # type: ignore[method-assign]
    await asyncio.gather(*[store.ingest([item(f"G{i}")], None) for i in range(50)])
    assert flushes < 5
    assert len(await store.list_messages((await store.list_conversations())[0].id)) == 50
    await store.close()


async def test_sqlite_checkpoints_in_a_thread_not_in_a_commit(tmp_path) -> None:
    path = tmp_path / "wal.db"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        # SQLite's own checkpoint (inside whichever commit crosses its threshold) is off
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        for i in range(250):  # one group commit each
            await store.kv_set(f"k{i}", "x" * 2000)
        if store._checkpoint is not None:
            await store._checkpoint
        assert store._checkpoint_conn is not None  # the thread's own connection did it
        # everything the thread copied is in the database file: nothing was lost
        assert len(await store.kv_scan("k")) == 250
    finally:
        await store.close()
    again = SQLiteStore(str(path))
    await again.open()
    try:
        assert len(await again.kv_scan("k")) == 250
    finally:
        await again.close()


async def test_sqlite_failed_unit_does_not_undo_others(tmp_path) -> None:
    store = SQLiteStore(str(tmp_path / "f.db"))
    await store.open()

    async def bad(tx):
        await tx.execute("INSERT INTO kv (key, value) VALUES ('bad', 'x')")
        raise ValueError("boom")

    results = await asyncio.gather(store.kv_set("good", "1"), store._write(bad),
                                   return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert await store.kv_get("good") == "1" and await store.kv_get("bad") is None
    await store.close()


@pytest.mark.postgres
async def test_postgres_two_processes_deduplicate(pg_schema: str) -> None:
    a, b = PostgresStore(PG_DSN, schema=pg_schema), PostgresStore(PG_DSN, schema=pg_schema)
    await a.open()
    await b.open()
    try:
        results = await asyncio.gather(*[(a if i % 2 else b).ingest([item("PG-DUP")], None)
                                         for i in range(20)])
        assert sum(1 for [r] in results if not r.duplicate) == 1
        convs = await asyncio.gather(*[(a if i % 2 else b).ingest(
            [item(f"PG-{i}", sender="+14155550777")], None) for i in range(10)])
        assert len({r.conversation.id for [r] in convs if r.conversation}) == 1
    finally:
        await a.close()
        await b.close()
        await drop_pg_schema(pg_schema)


async def test_one_person_on_two_channels_is_merged(store: SqlStore) -> None:
    email = Address(channel="email", handle="ann@example.com")
    mail = InboundMessage(external_id="<e1@x>", sender=email, parts=[TextPart(text="by mail")])
    [by_mail] = await store.ingest([IngestItem(
        message_id=new_id("msg"), channel="email", channel_key="mail", adapter="t", draft=mail,
        thread_key="mail-thread", contact_addresses=[email], received_at=datetime.now(UTC))], None)
    [by_sms] = await store.ingest([item("SMS1", sender="+14155550123")], None)
    assert by_mail.contact and by_sms.contact and by_mail.contact.id != by_sms.contact.id
    await store.set_opted_out(by_sms.contact.id, "sms", True)
    # later the SMS customer gives the email address (a pre-chat form, a hook): same person
    [linked] = await store.ingest([item("SMS2", sender="+14155550123", hints=[email])], None)
    assert linked.contact and linked.merged == [by_sms.contact.id]
    survivor = linked.contact
    assert survivor.id == by_mail.contact.id  # the older contact stays
    assert {a.handle for a in survivor.addresses} == {"ann@example.com", "+14155550123"}
    assert survivor.opted_out == ["sms"]
    assert await store.get_contact(by_sms.contact.id) is None
    conversations = await store.list_conversations(contact_id=survivor.id)
    assert len(conversations) == 2 and all(c.contact_id == survivor.id for c in conversations)
    assert (await store.find_contact(Address(channel="sms", handle="+14155550123"))) == survivor


async def test_reply_window_moves_in_its_columns_and_every_reader_sees_it(store: SqlStore) -> None:
    now = datetime.now(UTC)
    [first] = await store.ingest([_written(item("C1"), now - timedelta(hours=3))], None)
    assert first.conversation is not None
    conv_id = first.conversation.id
    [second] = await store.ingest([_written(item("C2"), now - timedelta(minutes=1))], None)
    assert second.conversation is not None
    expected = now - timedelta(minutes=1)
    assert second.conversation.last_inbound_at == expected
    assert second.conversation.window_expires_at == expected + timedelta(hours=24)
    # the small update moved the columns: every read gives the same conversation as the outcome
    assert await store.get_conversation(conv_id) == second.conversation
    assert await store.list_conversations() == [second.conversation]
    # a full save (a status change) keeps the window the columns hold
    closed = await store.set_conversation_status(conv_id, "closed")
    assert (closed.last_inbound_at, closed.window_expires_at) == (
        expected, expected + timedelta(hours=24))
    assert await store.get_conversation(conv_id) == closed
    # a new participant rewrites the JSON, window and all
    reopened = await store.set_conversation_status(conv_id, "open")
    [third] = await store.ingest([item("C3", ours="+14155550198", thread=reopened.thread_key,
                                       when=now)], None)
    assert third.conversation is not None and third.conversation.id == conv_id
    assert len(third.conversation.participants) == 3
    assert third.conversation.last_inbound_at == now
    assert await store.get_conversation(conv_id) == third.conversation


async def test_merge_and_unmerge_keep_the_window_the_columns_hold(store: SqlStore) -> None:
    now = datetime.now(UTC)
    [other] = await store.ingest([item("MW2", sender="+14155550102")], None)  # the older contact
    [first] = await store.ingest([_written(item("MW1", sender="+14155550101"),
                                           now - timedelta(hours=5))], None)
    # the second message of the first customer moves its window by the small update
    [moved] = await store.ingest([_written(item("MW3", sender="+14155550101"),
                                           now - timedelta(minutes=2))], None)
    assert first.conversation and other.conversation and moved.conversation
    window = moved.conversation.window_expires_at
    assert window == now - timedelta(minutes=2) + timedelta(hours=24)
    # merging into the older contact rewrites the moved conversation's JSON: the window stays
    first_contact, other_contact = first.conversation.contact_id, other.conversation.contact_id
    _, _, record = await store.merge_contacts(other_contact, first_contact)
    merged = await store.get_conversation(first.conversation.id)
    assert merged is not None and merged.window_expires_at == window
    assert merged.contact_id == other_contact
    await store.unmerge(record.id)
    restored = await store.get_conversation(first.conversation.id)
    assert restored is not None and restored.window_expires_at == window


def _with_profile(draft_item: IngestItem, profile: dict[str, str]) -> IngestItem:
    """The item with profile fields from the vendor (Twilio's ``FromCountry``)."""
    draft = draft_item.draft.model_copy(update={"profile": profile})
    return IngestItem(**{**draft_item.__dict__, "draft": draft})


async def test_profile_fields_meet_the_contact_as_stored(store: SqlStore) -> None:
    [first] = await store.ingest([_with_profile(item("P1"), {"country": "US"})], None)
    assert first.contact is not None and first.contact.profile == {"country": "US"}
    contact_id = first.contact.id
    assert (await store.get_contact(contact_id)) == first.contact
    # a change made elsewhere between two messages is what the next message builds on
    await store.modify_contact(contact_id, lambda c: c.model_copy(
        update={"profile": {**c.profile, "vip": True}}))
    [same] = await store.ingest([_with_profile(item("P2"), {"country": "US"})], None)
    assert same.contact is not None and same.contact.profile == {"country": "US", "vip": True}
    [moved] = await store.ingest([_with_profile(item("P3"), {"country": "CA"})], None)
    assert moved.contact is not None and moved.contact.profile == {"country": "CA", "vip": True}
    # two messages of one transaction: the second sees what the first wrote
    [[_], [b]] = await asyncio.gather(
        store.ingest([_with_profile(item("P4"), {"country": "MX"})], None),
        store.ingest([_with_profile(item("P5"), {"city": "Oaxaca"})], None))
    assert b.contact is not None
    assert b.contact.profile == {"country": "MX", "vip": True, "city": "Oaxaca"}
    [dup] = await store.ingest([_with_profile(item("P5"), {"country": "FR"})], None)
    assert dup.duplicate
    stored = await store.get_contact(contact_id)
    assert stored is not None and stored.profile == b.contact.profile


@pytest.mark.postgres
async def test_postgres_statements_of_a_message(pg_schema: str) -> None:
    import asyncpg

    store = PostgresStore(PG_DSN, schema=pg_schema)
    await store.open()
    sent: list[str] = []
    try:
        original = {name: getattr(asyncpg.Connection, name) for name in ("execute", "fetchrow", "fetch")}

        def counted(name: str):  # type: ignore[no-untyped-def]
            async def call(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
                sent.append(query)
                return await original[name](self, query, *args, **kwargs)
            return call

        def work() -> list[str]:
            found = [q for q in sent if not q.startswith(("BEGIN", "COMMIT", "SELECT pg_advisory"))]
            sent.clear()
            return found

        with pytest.MonkeyPatch.context() as patch:
            for name in original:
                patch.setattr(asyncpg.Connection, name, counted(name))
            [first] = await store.ingest([_with_profile(item("R1"), {"country": "US"})], None)
            # the claim with the thread's read and the owner of the number; the address, the
            # contact, its look-up on other channels and the conversation; the message
            assert len(work()) == 3
            [again] = await store.ingest([_with_profile(item("R2"), {"country": "US"})], None)
            # the claim with the conversation and its contact; the insert with the window's update
            assert len(work()) == 2
        assert first.contact is not None and first.contact.profile == {"country": "US"}
        assert not again.duplicate and again.contact == first.contact
    finally:
        await store.close()
        await drop_pg_schema(pg_schema)


async def test_a_first_message_is_stored_when_a_duplicate_follows_it(store: SqlStore) -> None:
    await store.ingest([item("F1", sender="+14155550301")], None)
    # one transaction: the new customer's message, then a duplicate whose claim finds the id
    # taken (on PostgreSQL the first message's insert goes with that claim)
    [[new], [dup]] = await asyncio.gather(
        store.ingest([item("F2", sender="+14155550302")], None),
        store.ingest([item("F1", sender="+14155550301")], None))
    assert not new.duplicate and new.conversation_created and new.message is not None
    assert dup.duplicate
    assert await store.get_message(new.message.id) == new.message
    found = await store.find_message_by_external("sms", "F2")
    assert found is not None and found.id == new.message.id
