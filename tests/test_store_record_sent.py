"""``record_sent``'s one-statement way for the usual send (the stored message still ``queued``,
no receipt waiting) gives what the general way gives, on SQLite and PostgreSQL; whatever it
does not cover falls through to the general way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from omnichannel_sdk import Message, StatusUpdate, TextPart
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._store import Job, SqlStore
from omnichannel_sdk._store._messages import MessageSql, early_receipt_key

from .test_store import item, sms
from .test_store import store as store  # the fixture, both databases

pytestmark = pytest.mark.anyio


async def _queued(store: SqlStore, ext: str) -> tuple[Message, Job]:
    [first] = await store.ingest([item("in-" + ext)], None)
    assert first.conversation
    now = datetime.now(UTC)
    message = Message(id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      direction="outbound", conversation_id=first.conversation.id,
                      sender=sms("+14155550199"), recipients=[sms("+14155550100")],
                      parts=[TextPart(text="out")], created_at=now, received_at=now,
                      status="queued", metadata={"k": 1})
    job = Job(id=new_id("job"), kind="send", channel_key="sms", message_id=message.id)
    await store.create_outbound(message, job, lease=60)
    return message, job


async def _case(store: SqlStore, case: str, ext: str) -> tuple[Any, ...]:
    """Record one send in situation ``case``; what a caller can see afterwards."""
    message, job = await _queued(store, ext)
    if case == "receipt first":
        await store.kv_set(early_receipt_key("sms", ext), StatusUpdate(
            external_id=ext, status="delivered").model_dump_json(), ttl=60)
    elif case in ("moved meanwhile", "failed meanwhile"):
        status = "delivered" if case == "moved meanwhile" else "failed"
        await store.update_message(message.model_copy(update={"status": status}))
    sent = message.model_copy(update={"status": "sent", "external_id": ext,
                                      "metadata": {"k": 1, "attempts": 1}})
    final = await store.record_sent(sent, [ext], job.id)
    stored = await store.get_message(message.id)
    found = await store.find_message_by_external("sms", ext)
    return (final.status, final.external_id, final.metadata, final.error,
            stored.model_dump(exclude={"id", "conversation_id", "created_at", "received_at"})
            if stored else None, stored == final, found is not None and found.id == message.id,
            await store.kv_get(early_receipt_key("sms", ext)), await store.pending_jobs())


@pytest.mark.parametrize("case", ["usual", "receipt first", "moved meanwhile",
                                  "failed meanwhile"])
async def test_the_usual_send_in_one_statement_is_the_general_way(
        store: SqlStore, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    merged: list[str] = []
    general = MessageSql._merge_receipts

    async def counted(self: MessageSql, tx: Any, message: Message, ids: list[str]) -> Any:
        merged.append(message.id)
        return await general(self, tx, message, ids)

    monkeypatch.setattr(MessageSql, "_merge_receipts", counted)
    short = await _case(store, case, "A-" + case.replace(" ", "-"))
    assert bool(merged) == (case != "usual")  # the short way only for the usual send

    async def never(self: MessageSql, tx: Any, message: Message, ext: str) -> bool:
        return False

    monkeypatch.setattr(MessageSql, "_save_unreceipted", never)
    merged.clear()
    long = await _case(store, case, "A-" + case.replace(" ", "-") + "-general")
    assert merged
    assert short[0] == long[0] and short[2:4] == long[2:4] and short[5:] == long[5:]
    assert {k: v for k, v in short[4].items() if k != "external_id"} == {
        k: v for k, v in long[4].items() if k != "external_id"}
    if case == "usual":
        assert short[0] == "sent" and short[-2:] == (None, 0)


def test_the_outbox_copy_of_a_sent_message_is_model_copy() -> None:
    """``Delivery`` copies the sent message with ``copied``: the same as pydantic's copy."""
    from omnichannel_sdk._store._copies import copied

    now = datetime.now(UTC)
    message = Message(id="msg_1", channel="sms", channel_key="sms", adapter="t",
                      direction="outbound", conversation_id="conv_1",
                      sender=sms("+14155550199"), recipients=[sms("+14155550100")],
                      parts=[TextPart(text="out")], created_at=now, received_at=now,
                      status="queued", metadata={"k": 1})
    update = {"external_id": "SM1", "status": "sent", "metadata": {"k": 1, "attempts": 1}}
    mine, theirs = copied(message, update), message.model_copy(update=update)
    assert mine == theirs and mine.model_dump_json() == theirs.model_dump_json()
    assert mine.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
    assert mine.__dict__ == theirs.__dict__ and message.status == "queued"


async def test_the_read_for_a_send_is_get_conversation_and_get_contact(store: SqlStore) -> None:
    """``hub.send``'s one read gives what its two reads gave (window columns, opt-outs)."""
    [first] = await store.ingest([item("R1")], None)  # the reply window is in its columns
    assert first.conversation and first.contact
    await store.set_opted_out(first.contact.id, "whatsapp", True)
    conversation, contact = await store.conversation_for_send(first.conversation.id)
    assert conversation == await store.get_conversation(first.conversation.id)
    assert conversation is not None and conversation.window_expires_at is not None
    assert contact == await store.get_contact(first.conversation.contact_id)
    assert contact is not None and "whatsapp" in contact.opted_out
    assert await store.conversation_for_send("conv_none") == (None, None)
    opened, _ = await store.open_conversation(  # no inbound yet: the window in the JSON
        "sms", "sms", "+14155550111|+14155550199", [sms("+14155550111")],
        [sms("+14155550111")], None)
    assert await store.conversation_for_send(opened.id) == (
        await store.get_conversation(opened.id), await store.get_contact(opened.contact_id))


async def _job_attempt(store: SqlStore, job_id: str) -> tuple[Any, ...] | None:
    async def read(tx: Any) -> Any:
        return await tx.fetchone(
            "SELECT attempt_us, vendor_attempts, possible_duplicates FROM jobs WHERE id = $1",
            job_id)

    row = await store._read(read)
    return tuple(row) if row is not None else None


async def test_record_sent_records_the_next_send_s_call_as_begin_attempt_would(
        store: SqlStore) -> None:
    """The outbox hands a finished send's channel slot to the channel's next send: that send's
    first vendor call is recorded with the finished one's result, as ``begin_attempt`` records
    it in a transaction of its own."""
    first, first_job = await _queued(store, "N-1")
    _, next_job = await _queued(store, "N-2")
    _, alone_job = await _queued(store, "N-3")
    assert await _job_attempt(store, next_job.id) == (None, 0, 0)
    sent = first.model_copy(update={"status": "sent", "external_id": "N-1"})
    final = await store.record_sent(sent, ["N-1"], first_job.id, next_attempt=next_job.id)
    assert final.status == "sent" and await _job_attempt(store, first_job.id) is None
    await store.begin_attempt(alone_job.id)
    handed, alone = await _job_attempt(store, next_job.id), await _job_attempt(store, alone_job.id)
    assert handed is not None and alone is not None
    assert handed[0] is not None and handed[1:] == alone[1:] == (1, 0)
    assert await store.pending_jobs() == 2  # the next sends' jobs stay, leased and recorded
