"""The events inbound storing builds without validation are the events validation builds."""

from __future__ import annotations

from datetime import UTC, datetime

from omnichannel_sdk import Address, Conversation, Message, TextPart
from omnichannel_sdk._events import (
    ConversationOpened,
    MessageReceived,
    conversation_opened,
    event_adapter,
    message_received,
)

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def _models() -> tuple[Message, Conversation]:
    customer = Address(channel="sms", handle="+14155550100")
    message = Message(id="msg_1", channel="sms", channel_key="sms", adapter="twilio-sms",
                      external_id="SM1", direction="inbound", conversation_id="conv_1",
                      sender=customer, parts=[TextPart(text="hello")], created_at=NOW,
                      received_at=NOW, status="received")
    conversation = Conversation(id="conv_1", channel="sms", channel_key="sms",
                                contact_id="ct_1", participants=[customer],
                                thread_key="+14155550100|+15005550006", created_at=NOW)
    return message, conversation


def _same(built: object, validated: object) -> None:
    assert type(built) is type(validated)
    assert built.__dict__.keys() == validated.__dict__.keys()  # field order
    assert built.model_fields_set == validated.model_fields_set  # type: ignore[attr-defined]
    assert built.__pydantic_extra__ == validated.__pydantic_extra__  # type: ignore[attr-defined]
    assert built.__pydantic_private__ == validated.__pydantic_private__  # type: ignore[attr-defined]
    at = {"at": NOW}
    assert built.model_copy(update=at) == validated.model_copy(update=at)  # type: ignore[attr-defined]
    assert (event_adapter.dump_json(built.model_copy(update=at))  # type: ignore[attr-defined]
            == event_adapter.dump_json(validated.model_copy(update=at)))  # type: ignore[attr-defined]
    assert built.at.tzinfo is not None  # type: ignore[attr-defined]
    assert built.model_dump(exclude_unset=True).keys() == validated.model_dump(  # type: ignore[attr-defined]
        exclude_unset=True).keys()


def test_message_received_is_the_validated_event() -> None:
    message, conversation = _models()
    built = message_received(message, conversation)
    _same(built, MessageReceived(message=message, conversation=conversation))
    assert built.message is message and built.conversation is conversation


def test_conversation_opened_is_the_validated_event() -> None:
    _, conversation = _models()
    built = conversation_opened(conversation)
    _same(built, ConversationOpened(conversation=conversation))
    assert built.conversation is conversation


def test_a_subclassed_model_is_validated_as_before() -> None:
    class Special(Message):
        """A message type of an application's own (validated, not built)."""

    message, conversation = _models()
    special = Special(**dict(message))
    built = message_received(special, conversation)
    _same(built, MessageReceived(message=special, conversation=conversation))
    assert built.message is special
