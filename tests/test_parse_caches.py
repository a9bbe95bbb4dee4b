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


def test_redact_url_answers_as_without_its_cache() -> None:
    from omnichannel_sdk._redact import _redact_url, redact_url

    secret = frozenset({"Token", "key"})
    for url in ["https://bench.test/webhooks/sms", "HTTPS://u:pw@bench.test/webhooks/x?token=1&a=2",
                "https://bench.test/webhooks/x?KEY=s%20e&b=", "http://[::1/x"]:
        for _ in range(2):
            assert redact_url(url, secret) == _redact_url(url, secret)
            assert redact_url(url, {"Token", "key"}) == _redact_url(url, secret)
            assert redact_url(url) == _redact_url(url, None)


def test_sms_addresses_are_made_once_per_number_and_equal_to_a_fresh_one() -> None:
    from omnichannel_sms._numbers import address

    first = address("sms", "+14155550100", "US")
    assert address("sms", "+14155550100", "US") is first
    assert first == Address(channel="sms", handle="+14155550100")
    assert address("sms", "4155550100", "US") == first
    assert address("sms", "4155550100", "GB") != first
    for _ in range(2):  # a refused number is refused every time (nothing cached)
        with pytest.raises(ValueError, match="phone number"):
            address("sms", "+9978073627", None)
