"""The twilio-sms parse builds its message and text part without validation: the instances
must be the ones validation makes (values, field order, fields set), for plain SMS, MMS and
keyword messages, and anything unusual goes through validation."""

from __future__ import annotations

from typing import Any

import pytest
from omnichannel_sms import TwilioSmsAdapter
from omnichannel_sms._built import inbound_message, text_part
from pydantic import BaseModel, ValidationError

from omnichannel_sdk import AdapterContext, Address, InboundMessage, TextPart
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV


def _validated(model: BaseModel) -> BaseModel:
    """The same model made by validation from the fields that were set."""
    return type(model)(**{name: getattr(model, name) for name in model.model_fields_set})


def _same(built: BaseModel, validated: BaseModel) -> None:
    assert type(built) is type(validated)
    assert built == validated
    assert list(built.__dict__) == list(validated.__dict__)
    assert built.model_fields_set == validated.model_fields_set
    assert built.__pydantic_extra__ == validated.__pydantic_extra__
    assert built.__pydantic_private__ == validated.__pydantic_private__
    assert built.model_dump_json() == validated.model_dump_json()


@pytest.mark.parametrize("sample", ["twilio_inbound_sms", "twilio_inbound_mms"])
def test_parsed_messages_are_the_validated_ones(samples: Any, sample: str) -> None:
    import httpx

    settings = TwilioSmsAdapter.Settings.model_validate(
        {"account_sid": "AC" + "X" * 32, "auth_token": "t", "from_number": "+15005550006"})
    adapter = TwilioSmsAdapter(settings, AdapterContext(key="twilio", public_url=PUBLIC_URL,
                                                        http=httpx.AsyncClient(), kv=MemoryKV()))
    (message,) = adapter.parse(samples.twilio(sample)).items
    assert isinstance(message, InboundMessage)
    _same(message, _validated(message))
    for part in message.parts:
        _same(part, _validated(part))


def test_keyword_and_empty_texts() -> None:
    sender = Address(channel="sms", handle="+14155550100")
    for text in ("STOP", "", " Hello ", "<b>not html</b>"):
        part = text_part(text)
        _same(part, TextPart(text=text))
        message = inbound_message(external_id="SM1", sender=sender, parts=[part],
                                  metadata={"twilio": {}}, profile={})
        _same(message, InboundMessage(external_id="SM1", sender=sender, parts=[part],
                                      metadata={"twilio": {}}, profile={}))
        assert message.references == [] and message.references is not inbound_message(
            external_id="SM2", sender=sender).references  # a new default list each


def test_missing_or_unknown_fields_are_refused_by_validation() -> None:
    with pytest.raises(ValidationError):
        inbound_message(external_id="SM1")
    with pytest.raises(ValidationError):
        inbound_message(external_id="SM1", sender=Address(channel="sms", handle="+14155550100"),
                        unknown=1)


def test_a_model_with_checks_validation_makes_has_no_plan() -> None:
    from typing import Annotated

    from omnichannel_sms._built import _plan
    from pydantic import AfterValidator, Field

    class Plain(BaseModel):
        text: str

    class Limited(BaseModel):
        text: str = Field(max_length=3)

    class Checked(BaseModel):
        text: Annotated[str, AfterValidator(str.strip)]

    assert _plan(Plain) is not None
    assert _plan(Limited) is None  # a constraint: built without it, "toolong" would get in
    assert _plan(Checked) is None
