"""The normalized model: normalization, sanitizing, discriminated parts, JSON round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from omnichannel_sdk import (
    Action,
    ActionsPart,
    Address,
    Contact,
    Conversation,
    EventPart,
    LocationPart,
    MediaPart,
    Message,
    Part,
    TemplatePart,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
    normalize_email,
    normalize_phone,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("+1 (415) 555-0100", None, "+14155550100"),
    ("14155550100", None, "+14155550100"),
    ("0044 20 7946 0958", None, "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("138 0013 8000", "CN", "+8613800138000"),
    ("ACME", None, "ACME"),
    ("55555", None, "55555"),
])
def test_phone_numbers_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_impossible_phone_is_refused() -> None:
    with pytest.raises(ValueError):
        normalize_phone("+999 12345678")
    with pytest.raises(ValidationError):
        Address(channel="sms", handle="+999 1234567890123456")


def test_addresses_normalize_by_channel() -> None:
    assert Address(channel="sms", handle="+1 415 555 0100").handle == "+14155550100"
    assert Address(channel="email", handle=" <Ann@Example.COM> ").handle == "ann@example.com"
    assert Address(channel="wechat", handle=" oAbC ").handle == "oAbC"
    with pytest.raises(ValidationError):
        Address(channel="email", handle="not-an-address")
    assert normalize_email("A@B.C") == "a@b.c"


def test_html_is_sanitized() -> None:
    part = TextPart(text='<p onclick="x()">Hi<script>alert(1)</script></p>', format="html")
    assert "script" not in part.text and "onclick" not in part.text and "Hi" in part.text
    assert TextPart(text="<b>kept</b>", format="plain").text == "<b>kept</b>"


def test_parts_are_discriminated_by_type() -> None:
    adapter = TypeAdapter(list[Part])
    parts = adapter.validate_python([
        {"type": "text", "text": "hi"},
        {"type": "media", "kind": "image", "url": "https://x/y.png"},
        {"type": "location", "latitude": 31.2, "longitude": 121.5, "label": "Shanghai"},
        {"type": "actions", "actions": [{"id": "a", "title": "A"}]},
        {"type": "template", "name": "welcome", "params": {"name": "Ann"}},
        {"type": "transcript", "segments": [{"start": 0, "end": 1.5, "text": "hello", "speaker": "caller"}]},
        {"type": "event", "name": "subscribe"},
    ])
    assert [type(p) for p in parts] == [TextPart, MediaPart, LocationPart, ActionsPart, TemplatePart,
                                        TranscriptPart, EventPart]
    with pytest.raises(ValidationError):
        adapter.validate_python([{"type": "hologram"}])
    with pytest.raises(ValidationError):
        LocationPart(latitude=91, longitude=0)


def test_models_are_frozen_and_times_are_utc() -> None:
    local = datetime(2026, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    message = Message(id="msg_1", channel="sms", channel_key="k", adapter="a", direction="inbound",
                      conversation_id="conv_1", sender=Address(channel="sms", handle="+14155550100"),
                      parts=[TextPart(text="a"), TextPart(text="b")], created_at=local,
                      received_at=datetime(2026, 1, 1), status="received")
    assert message.created_at.tzinfo == UTC and message.created_at.hour == 0
    assert message.received_at.tzinfo == UTC
    assert message.text == "a\n\nb"
    with pytest.raises(ValidationError):
        message.status = "read"  # type: ignore[misc]


def test_json_field_names_are_the_public_ones() -> None:
    fields = set(Message.model_json_schema()["properties"])
    assert {"id", "channel", "channel_key", "adapter", "external_id", "direction", "conversation_id",
            "sender", "recipients", "parts", "subject", "reply_to", "created_at", "received_at",
            "status", "error", "metadata"} <= fields
    assert {"id", "channel", "channel_key", "contact_id", "participants", "thread_key", "subject",
            "status", "created_at", "last_inbound_at", "window_expires_at"} <= set(
                Conversation.model_json_schema()["properties"])
    assert {"id", "display_name", "addresses", "profile", "opted_out"} <= set(
        Contact.model_json_schema()["properties"])
    schema = Message.model_json_schema()
    assert schema["properties"]["sender"]
    assert "description" in schema["$defs"]["Address"]["properties"]["handle"]


texts = st.text(max_size=200)
parts = st.one_of(
    st.builds(TextPart, text=texts),
    st.builds(MediaPart, kind=st.sampled_from(["image", "audio", "video", "file", "sticker"]),
              url=st.none() | st.just("https://x.test/a"), size=st.none() | st.integers(0, 10**9)),
    st.builds(LocationPart, latitude=st.floats(-90, 90), longitude=st.floats(-180, 180)),
    st.builds(ActionsPart, actions=st.lists(st.builds(Action, id=st.text(min_size=1, max_size=5),
                                                       title=texts), min_size=1, max_size=4)),
    st.builds(EventPart, name=st.sampled_from(["subscribe", "postback"]),
              data=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
    st.builds(TranscriptPart, segments=st.lists(st.builds(
        TranscriptSegment, start=st.floats(0, 100), end=st.floats(0, 100), text=texts), max_size=3)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(parts, max_size=5), st.text(max_size=50) | st.none())
def test_messages_round_trip_through_json(message_parts: list, subject: str | None) -> None:
    message = Message(id="msg_x", channel="webchat", channel_key="web", adapter="webchat",
                      direction="outbound", conversation_id="conv_x",
                      sender=Address(channel="webchat", handle="v1"), parts=message_parts,
                      subject=subject, created_at=NOW, received_at=NOW, status="queued",
                      metadata={"k": [1, "two"]})
    assert Message.model_validate_json(message.model_dump_json()) == message
