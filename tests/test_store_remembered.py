"""A conversation or contact the store just created is remembered under its stored JSON, so
the customer's next message does not parse it: what is remembered must be what parsing that
JSON gives (the same fields, the same set fields), and a contact whose profile would not come
back from JSON unchanged is not remembered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from omnichannel_sdk import InboundMessage
from omnichannel_sdk._ids import new_id
from omnichannel_sdk._models import Address, Contact, Conversation, TextPart
from omnichannel_sdk._store import IngestItem, _parsed
from omnichannel_sdk._store._sqlite import SQLiteStore

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def _state(model: BaseModel) -> tuple[Any, ...]:
    return (type(model), model.model_dump(), list(model.__dict__), model.__pydantic_fields_set__,
            model.__pydantic_extra__, model.__pydantic_private__)


def _item(ext: str, handle: str, profile: dict[str, Any]) -> IngestItem:
    draft = InboundMessage(external_id=ext, sender=Address(channel="sms", handle=handle),
                           recipients=[Address(channel="sms", handle="+15550000")],
                           parts=[TextPart(text="hi")], profile=profile)
    return IngestItem(message_id=new_id("msg"), channel="sms", channel_key="sms", adapter="t",
                      draft=draft, thread_key=f"{handle}|+15550000",
                      contact_addresses=[draft.sender], received_at=NOW,
                      window=timedelta(hours=24))


@pytest.mark.anyio
async def test_created_rows_are_remembered_as_their_parse(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        remembered: dict[str, Any] = {}
        monkeypatch.setattr(_parsed, "_remembered", remembered)
        [first] = await store.ingest(
            [_item("SM1", "+14155550111", {"city": "SF", "n": 3, "ok": True, "x": None})], None)
        assert first.conversation and first.contact
        conv_data, contact_data = store.conn.execute(
            "SELECT c.data, k.data FROM conversations c JOIN contacts k ON k.id = c.contact_id "
            "WHERE c.id = ?", (first.conversation.id,)).fetchone()
        assert set(remembered) == {conv_data, contact_data}
        assert _state(remembered[conv_data]) == _state(Conversation.model_validate_json(conv_data))
        assert _state(remembered[contact_data]) == _state(Contact.model_validate_json(contact_data))
        # held apart from what the caller got: a change in place would not reach the next message
        assert remembered[conv_data].participants is not first.conversation.participants
        assert remembered[contact_data].profile is not first.contact.profile

        # the next message takes them instead of parsing
        parses: list[str] = []
        for cls in (Conversation, Contact):
            original = cls.model_validate_json
            monkeypatch.setattr(cls, "model_validate_json", classmethod(
                lambda c, data, _o=original, **k: (parses.append(c.__name__), _o(data, **k))[1]))
        [second] = await store.ingest(
            [_item("SM2", "+14155550111", {"city": "SF", "n": 3, "ok": True, "x": None})], None)
        assert parses == [] and remembered == {}
        assert second.conversation is not None
        assert second.conversation.id == first.conversation.id and not second.conversation_created
        assert (await store.get_conversation(first.conversation.id)) == second.conversation
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_profile_json_would_change_is_not_remembered(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(str(tmp_path / "hub.db"))
    await store.open()
    try:
        remembered: dict[str, Any] = {}
        monkeypatch.setattr(_parsed, "_remembered", remembered)
        for i, value in enumerate([(1, 2), 1.5, {"nested": 1}]):
            [outcome] = await store.ingest([_item(f"SM{i}", f"+1415555020{i}", {"v": value})], None)
            assert outcome.contact is not None
            assert all(not isinstance(m, Contact) for m in remembered.values())
            assert await store.get_contact(outcome.contact.id) == Contact.model_validate_json(
                store.conn.execute("SELECT data FROM contacts WHERE id = ?",
                                   (outcome.contact.id,)).fetchone()[0])
    finally:
        await store.close()
