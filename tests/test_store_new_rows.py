"""A new thread's conversation and a new customer's contact are built without validating them
again when every value is already what validation gives, and equal what validation makes;
anything else (a string subclass, a dict address, a key that is not a string) is validated as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from omnichannel_sdk._models import Address, Contact, Conversation
from omnichannel_sdk._store._contacts import new_contact
from omnichannel_sdk._store._conversations import new_conversation
from omnichannel_sdk._store._tx import dump

NOW = datetime(2026, 12, 3, 6, 30, 1, 250, tzinfo=UTC)
CUSTOMER = Address(channel="sms", handle="+14155550100")
OURS = Address(channel="sms", handle="+15005550006")


class _Key(str):
    """A string subclass: not what validation gives back."""


class _Refuses:
    """A validator that fails the test when called: the fast way must not validate."""

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("validated")


def _refuse(monkeypatch: pytest.MonkeyPatch, cls: type[BaseModel]) -> None:
    monkeypatch.setattr(cls, "__pydantic_validator__", _Refuses())


def _validated_conversation(conv: Conversation, participants: list[Any], now: datetime,
                            window: timedelta | bool | None, spoke: datetime | None
                            ) -> Conversation:
    start = spoke or now
    return Conversation(
        id=conv.id, channel="sms", channel_key="sms", contact_id="ct_1",
        participants=participants, thread_key="t", subject=None, created_at=now,
        last_inbound_at=None if window is False else start,
        window_expires_at=start + window if isinstance(window, timedelta) else None)


@pytest.mark.parametrize("window", [timedelta(hours=24), None, False, True])
def test_new_conversation_is_not_validated_and_equals_validation(
        monkeypatch: pytest.MonkeyPatch, window: timedelta | bool | None) -> None:
    spoke = NOW - timedelta(seconds=5)
    participants = [CUSTOMER, OURS, CUSTOMER]
    with monkeypatch.context() as patched:
        _refuse(patched, Conversation)
        built = new_conversation("sms", "sms", "t", "ct_1", participants, None, NOW, window,
                                 spoke)
    expected = _validated_conversation(built, [CUSTOMER, OURS], NOW, window, spoke)
    assert built == expected
    assert dump(built) == dump(expected)
    assert Conversation.model_validate_json(dump(built)) == built
    assert built.participants[0] is CUSTOMER  # the validated addresses themselves


def test_new_conversation_validates_what_is_not_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    built = new_conversation("sms", "sms", _Key("t"), "ct_1", [CUSTOMER], None, NOW,
                             timedelta(hours=1), None)
    assert type(built.thread_key) is str  # what validation makes of a subclass
    with monkeypatch.context() as patched:
        _refuse(patched, Conversation)
        with pytest.raises(AssertionError, match="validated"):
            new_conversation("sms", "sms", _Key("t"), "ct_1", [CUSTOMER], None, NOW, None, None)


def test_new_conversation_naive_time_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    naive = datetime(2026, 12, 3, 6, 30)
    with monkeypatch.context() as patched:
        _refuse(patched, Conversation)
        built = new_conversation("sms", "sms", "t", "ct_1", [CUSTOMER], None, naive,
                                 timedelta(hours=1), None)
    assert built.created_at == naive.replace(tzinfo=UTC) and built.created_at.tzinfo is UTC
    assert dump(built) == dump(_validated_conversation(built, [CUSTOMER], naive,
                                                       timedelta(hours=1), None))


def test_new_conversation_in_another_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    with monkeypatch.context() as patched:
        _refuse(patched, Conversation)
        built = new_conversation("sms", "sms", "t", "ct_1", [CUSTOMER], None, paris,
                                 timedelta(hours=24), None)
    assert built.created_at.tzinfo is UTC and built.created_at == NOW
    assert built.window_expires_at is not None and built.window_expires_at.tzinfo is UTC
    assert dump(built) == dump(_validated_conversation(built, [CUSTOMER], paris,
                                                       timedelta(hours=24), None))


def test_new_contact_is_not_validated_and_equals_validation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    profile = {"country": "US", "vip": True}
    with monkeypatch.context() as patched:
        _refuse(patched, Contact)
        built = new_contact("ct_1", "Ann", [CUSTOMER], profile)
    expected = Contact(id="ct_1", display_name="Ann", addresses=[CUSTOMER], profile=profile)
    assert built == expected
    assert dump(built) == dump(expected)
    assert built.profile is not profile  # a copy: the caller's dict stays its own
    assert new_contact("ct_2", None, [], None) == Contact(id="ct_2")


def test_new_contact_validates_what_is_not_exact() -> None:
    built = new_contact("ct_1", None, [{"channel": "sms", "handle": "+1 415 555 0100"}],  # type: ignore[list-item]
                        None)
    assert built.addresses == [CUSTOMER]
    with pytest.raises(ValueError):
        new_contact("ct_1", None, [CUSTOMER], {1: "not a string key"})  # type: ignore[dict-item]
