"""``hub.send`` builds the message it queues without validating again what is already built
(our models, plain strings, a UTC time): the very message ``Message(**fields)`` gives, field
for field, fields set and JSON; anything validation would change goes through validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from omnichannel_sdk import (
    Address,
    Author,
    LocationPart,
    MediaPart,
    Message,
    TextPart,
)
from omnichannel_sdk._outbound import queued_message
from omnichannel_sdk._store._tx import dump

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


class Text(str):
    """A string subclass (validation makes a plain ``str`` of it)."""


def fields(**changes: Any) -> dict[str, Any]:
    """What ``hub.send`` hands to ``queued_message`` for a usual send, with ``changes``."""
    base: dict[str, Any] = {
        "id": "msg_1", "channel": "sms", "channel_key": "sms", "adapter": "twilio-sms",
        "external_id": None, "direction": "outbound", "conversation_id": "conv_1",
        "sender": Address(channel="sms", handle="+15005550006"),
        "recipients": [Address(channel="sms", handle="+14155550100")],
        "parts": [TextPart(text="hello")], "subject": None, "reply_to": None,
        "created_at": NOW, "received_at": NOW, "status": "queued", "error": None,
        "author": None, "metadata": {"segments": 1, "encoding": "GSM-7"}}
    base.update(changes)
    return base


def validated(given: dict[str, Any]) -> Message:
    """What ``hub.send`` built before: ``Message(...)`` without ``external_id`` and ``error``."""
    return Message(**{k: v for k, v in given.items() if k not in ("external_id", "error")})


def same(a: Message, b: Message) -> None:
    assert a == b
    assert a.__dict__ == b.__dict__
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert dump(a) == dump(b)
    assert a.model_dump(exclude_unset=True) == b.model_dump(exclude_unset=True)
    for name, value in a.__dict__.items():
        assert type(value) is type(b.__dict__[name]), name


CASES = {
    "text": {},
    "parts": {"parts": [TextPart(text="see"), MediaPart(kind="image", url="https://x.test/a.png",
                                                        content_type="image/png"),
                        LocationPart(latitude=1.5, longitude=2.5)]},
    "markdown": {"parts": [TextPart(text="*hi*", format="markdown")]},
    "author, subject, reply": {"author": Author(kind="bot", id="b1", name="Bot"),
                               "subject": "Re: order", "reply_to": "msg_0"},
    "metadata": {"metadata": {"a": [1, {"b": None}], "c": 1.5, "d": "x"}},
    "no recipients": {"recipients": []},
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_usual_send_is_the_validated_message_without_validating(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = validated(fields(**CASES[case]))
    calls = []
    real = Message.__init__

    def counting(self: Message, **data: Any) -> None:
        calls.append(data)
        real(self, **data)

    monkeypatch.setattr(Message, "__init__", counting)
    given = fields(**CASES[case])
    lists = given["recipients"], given["parts"], given["metadata"]
    built = queued_message(given)
    assert calls == []  # not validated again
    same(built, expected)
    # fresh containers, as validation makes them
    assert built.recipients is not lists[0] and built.parts is not lists[1]
    assert built.metadata is not lists[2]


ODD = {
    "a part as a dict": {"parts": [{"type": "text", "text": "hi"}]},
    "an HTML part (sanitized on every validation)": {
        "parts": [TextPart.model_construct(text="<script>x</script>hi", format="html")]},
    "a string subclass": {"subject": Text("Re")},
    "an address as a dict": {"sender": {"channel": "sms", "handle": "+1 415 555 0100"}},
    "an author as a dict": {"author": {"kind": "bot"}},
    "a time not in UTC": {"created_at": NOW.astimezone(timezone(timedelta(hours=2)))},
    "a naive time": {"received_at": NOW.replace(tzinfo=None)},
}


@pytest.mark.parametrize("case", list(ODD))
def test_what_validation_would_change_is_validated(case: str) -> None:
    built = queued_message(fields(**ODD[case]))
    same(built, validated(fields(**ODD[case])))


def test_what_validation_refuses_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        queued_message(fields(metadata={1: "not a string key"}))
    with pytest.raises(pydantic.ValidationError):
        queued_message(fields(subject=5))


class _Caller:
    """Stands in for pluggy's caller of ``omni_outbound_render``: says whether it was called."""

    def __init__(self, impls: list[Any], answer: Any) -> None:
        self.impls, self.answer, self.calls = impls, answer, 0

    def get_hookimpls(self) -> list[Any]:
        return self.impls

    def __call__(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.answer


class _PM:
    def __init__(self, caller: _Caller) -> None:
        self.hook = type("Hooks", (), {"omni_outbound_render": caller})()


def test_render_calls_pluggy_only_when_a_plugin_renders() -> None:
    from omnichannel_sdk import Capabilities
    from omnichannel_sdk._outbound import render
    from omnichannel_sdk._render import render_parts

    adapter: Any = type("A", (), {"name": "a", "capabilities": Capabilities(formats={"plain"})})()
    parts = [TextPart(text="hello")]
    nobody = _Caller([], None)
    assert render(_PM(nobody), adapter, parts) == render_parts(  # type: ignore[arg-type]
        parts, adapter.capabilities, adapter="a")
    assert nobody.calls == 0
    custom = [TextPart(text="HELLO")]
    somebody = _Caller([object()], custom)
    assert render(_PM(somebody), adapter, parts).parts == custom  # type: ignore[arg-type]
    assert somebody.calls == 1
