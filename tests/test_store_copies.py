"""The store's short ``model_construct`` / ``model_copy``: the very instance pydantic makes, and
pydantic itself for models the short way does not cover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from omnichannel_sdk import InboundMessage
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._models import Address, Contact, Conversation, Message, TextPart
from omnichannel_sdk._store import IngestItem, _parsed
from omnichannel_sdk._store._copies import constructed, copied, updated_own
from omnichannel_sdk._store._sqlite import SQLiteStore

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _state(model: BaseModel) -> tuple[Any, ...]:
    return (type(model), list(model.__dict__.items()), model.__pydantic_fields_set__,
            model.__pydantic_extra__, model.__pydantic_private__)


def _message_fields() -> dict[str, Any]:
    sender = Address(channel="sms", handle="+15550001")
    return {"id": "msg_1", "channel": "sms", "channel_key": "sms", "adapter": "twilio-sms",
            "external_id": "SM1", "direction": "inbound", "conversation_id": "conv_1",
            "sender": sender, "recipients": [Address(channel="sms", handle="+15550002")],
            "parts": [TextPart(text="hi")], "subject": None, "reply_to": None, "created_at": NOW,
            "received_at": NOW, "status": "received", "error": None, "author": None,
            "metadata": {"k": 1}}


def test_constructed_is_model_construct() -> None:
    fields = _message_fields()
    assert _state(constructed(Message, dict(fields))) == _state(Message.model_construct(**fields))
    # not every field, or not in field order: pydantic's own (defaults, its order)
    partial = {k: v for k, v in fields.items() if k != "metadata"}
    assert _state(constructed(Message, dict(partial))) == _state(Message.model_construct(**partial))
    shuffled = dict(reversed(list(fields.items())))
    assert _state(constructed(Message, dict(shuffled))) == _state(Message.model_construct(**shuffled))


def test_copied_is_model_copy() -> None:
    conversation = Conversation.model_validate_json(Conversation(
        id="conv_1", channel="sms", channel_key="sms", contact_id="ct_1",
        participants=[Address(channel="sms", handle="+1")], thread_key="t", created_at=NOW,
    ).model_dump_json())
    for update in ({}, {"last_inbound_at": NOW, "window_expires_at": NOW + timedelta(hours=24)},
                   {"participants": list(conversation.participants)}):
        mine, theirs = copied(conversation, update), conversation.model_copy(update=update)
        assert _state(mine) == _state(theirs)
        assert mine.__dict__ is not conversation.__dict__
        assert mine.__pydantic_fields_set__ is not conversation.__pydantic_fields_set__
    contact = Contact(id="ct_1", addresses=[Address(channel="sms", handle="+1")])
    assert _state(copied(contact, {"profile": {"a": 1}})) == _state(
        contact.model_copy(update={"profile": {"a": 1}}))


def test_updated_own_is_model_copy_without_the_copy() -> None:
    """What ``model_copy(update=...)`` gives, set on the caller's own model."""
    def made() -> Conversation:  # some fields left to their defaults: not in the fields set
        return Conversation(id="conv_1", channel="sms", channel_key="sms", contact_id="ct_1",
                            participants=[Address(channel="sms", handle="+1")], thread_key="t",
                            created_at=NOW)

    for update in ({}, {"last_inbound_at": NOW, "window_expires_at": NOW + timedelta(hours=24)},
                   {"participants": [Address(channel="sms", handle="+2")]}):
        mine, theirs = made(), made().model_copy(update=update)
        assert updated_own(mine, update) is mine
        assert _state(mine) == _state(theirs)
    extra = _Extra(a=1, b=2)
    assert updated_own(extra, {"c": 3}).__pydantic_extra__ == {"b": 2, "c": 3}
    assert extra.__pydantic_extra__ == {"b": 2}  # not the short way: pydantic's copy


@pytest.mark.anyio
async def test_the_remembered_conversation_is_not_the_one_updated(tmp_path: Any) -> None:
    """A returning customer's window is set on the conversation its row's parse handed out:
    the parse remembered for the next message keeps the stored JSON's values."""
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        outcomes = [(await store.ingest([_sms(f"SM{i}")], None))[0] for i in (1, 2, 3, 4)]
        [data] = [r[0] for r in store.conn.execute("SELECT data FROM conversations")]
        assert _state(_parsed._conversation(data)) == _state(Conversation.model_validate_json(data))
        for index, outcome in enumerate(outcomes[1:], 1):
            assert outcome.conversation is not None
            assert outcome.conversation.last_inbound_at == NOW + timedelta(minutes=index)
            assert outcome.conversation.window_expires_at == NOW + timedelta(minutes=index, hours=24)
            assert outcome.conversation.__pydantic_fields_set__ >= {"last_inbound_at",
                                                                     "window_expires_at"}
        assert len({id(o.conversation) for o in outcomes}) == 4  # each message's own
        assert await store.get_conversation(outcomes[3].conversation.id) == outcomes[3].conversation  # type: ignore[union-attr]
    finally:
        await store.close()


class _Extra(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int = 0


class _Private(BaseModel):
    a: int = 0
    _seen: int = PrivateAttr(default=3)


class _Aliased(BaseModel):
    a: int = Field(default=0, alias="A")


def test_other_models_go_through_pydantic() -> None:
    extra = _Extra(a=1, b=2)
    assert copied(extra, {"c": 3}).__pydantic_extra__ == {"b": 2, "c": 3}
    assert constructed(_Extra, {"a": 1}).__pydantic_extra__ == {}
    private = _Private(a=1)
    assert copied(private, {"a": 2})._seen == 3
    assert constructed(_Private, {"a": 1}).__pydantic_private__ == _Private.model_construct(a=1).__pydantic_private__
    assert constructed(_Aliased, {"a": 5}).a == _Aliased.model_construct(a=5).a


@pytest.mark.anyio
async def test_a_returning_customer_is_stored_without_pydantic_copies(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case (a returning customer, its window moved, a profile field unchanged):
    no ``model_copy`` / ``model_construct`` of pydantic's on the store's path (until
    2026-12-02 three copies and a construct, a sixth of the store's share of the message)."""
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        [first] = await store.ingest([_sms("SM1")], None)
        [second] = await store.ingest([_sms("SM2")], None)  # the conversation's first parse
        calls: list[str] = []
        for name in ("model_copy", "model_construct"):
            original = getattr(BaseModel, name)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                calls.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(BaseModel, name, spy if name == "model_copy" else classmethod(
                lambda cls, *a, _spy=spy, _o=original, **k: (calls.append("model_construct"),
                                                              _o.__func__(cls, *a, **k))[1]))
        [third] = await store.ingest([_sms("SM3")], None)
        monkeypatch.undo()
        assert calls == []
        assert third.conversation and first.conversation and third.contact
        assert third.conversation.id == first.conversation.id and not third.conversation_created
        assert third.conversation.last_inbound_at == NOW + timedelta(minutes=2)
        assert third.conversation.window_expires_at == NOW + timedelta(minutes=2, hours=24)
        assert third.message and third.message.status == "received"
        assert third.contact.profile == {"country": "US"}
        assert (await store.get_conversation(first.conversation.id)) == third.conversation
        assert (await store.get_message(third.message.id)) == third.message
        assert second.message is not None
    finally:
        await store.close()


def _sms(ext: str) -> IngestItem:
    minutes = int(ext[2:]) - 1
    draft = InboundMessage(external_id=ext, sender=Address(channel="sms", handle="+14155550100"),
                           recipients=[Address(channel="sms", handle="+15550000")],
                           parts=[TextPart(text="hi")], profile={"country": "US"})
    return IngestItem(message_id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      draft=draft, thread_key="+14155550100|+15550000",
                      contact_addresses=[draft.sender],
                      received_at=NOW + timedelta(minutes=minutes), window=timedelta(hours=24))
