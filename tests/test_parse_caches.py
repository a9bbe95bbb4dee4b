"""The caches of the inbound path answer exactly what the uncached code answers, and the models
they hand out are the caller's own (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from omnichannel_sdk import Address
from omnichannel_sdk._addresses import _normalize_phone, normalize_phone
from omnichannel_sdk._models import Contact, Conversation
from omnichannel_sdk._store._parsed import parsed_contact, parsed_conversation
from omnichannel_sdk._store._tx import dump

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def _conversation() -> Conversation:
    return Conversation(id="conv_1", channel="sms", channel_key="sms", contact_id="ct_1",
                        participants=[Address(channel="sms", handle="+14155550100")],
                        thread_key="+14155550100|+15005550006", created_at=NOW)


def test_a_remembered_conversation_is_the_parse_of_its_json_and_the_callers_own() -> None:
    data = dump(_conversation())
    first = parsed_conversation(data)
    assert first == Conversation.model_validate_json(data)
    first.participants.append(Address(channel="sms", handle="+14155550199"))
    again = parsed_conversation(data, {"last_inbound_at": NOW})
    assert again.participants == [Address(channel="sms", handle="+14155550100")]
    assert again.last_inbound_at == NOW
    assert again == Conversation.model_validate_json(data).model_copy(update={"last_inbound_at": NOW})


def test_a_remembered_contact_is_the_parse_of_its_json_and_the_callers_own() -> None:
    contact = Contact(id="ct_1", addresses=[Address(channel="sms", handle="+14155550100")],
                      profile={"country": "US", "tags": ["vip"], "extra": {"a": 1}},
                      opted_out=["sms"])
    data = dump(contact)
    first = parsed_contact(data)
    assert first == Contact.model_validate_json(data)
    first.profile["tags"].append("changed")
    first.profile["extra"]["a"] = 2
    first.profile["country"] = "CA"
    first.addresses.clear()
    first.opted_out.clear()
    assert parsed_contact(data) == Contact.model_validate_json(data)


@pytest.mark.parametrize(("number", "region"), [
    ("+14155550100", "US"), ("+14155550100", "GB"), ("+442079460958", "US"),
    ("+9978073627", "KP"),  # no such country code: phonenumbers falls back on the region
    ("4155550100", "US"), (" +1 415 555 0100", "US"), ("12345", "US"), ("ACME", "GB"),
    ("0044 20 7946 0958", "US"),
])
def test_normalize_phone_answers_as_without_its_cache(number: str, region: str) -> None:
    def uncached(value: str, where: str | None) -> str:
        try:
            return _normalize_phone(value, where, False)
        except ValueError:
            return "invalid"

    def cached(value: str, where: str | None) -> str:
        try:
            return normalize_phone(value, where)
        except ValueError:
            return "invalid"

    for _ in range(2):  # the first call fills the cache (and may seed the region-less entry)
        assert cached(number, region) == uncached(number, region)
        assert cached(number, None) == uncached(number, None)
