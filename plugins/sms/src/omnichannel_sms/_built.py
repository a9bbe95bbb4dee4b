"""The inbound message and its text part of an SMS webhook, built from values the adapter made
itself without pydantic validating them again.

Validation of an :class:`InboundMessage` keeps every model instance it is given as it is and
fills in the defaults; for the values ``TwilioSmsAdapter._inbound`` passes (a ``str`` sid, cached
:class:`Address` instances, parts it validated, plain dicts) that is all it does, yet it was a
measurable share of a webhook's parse. These builders make the same instance (``__dict__`` in
field order, the same fields set, no extra, no private state), and fall back to validation for
a model that gained anything validation would do beyond that (a validator, an alias, private
attributes) — checked once per class.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from omnichannel_sdk import InboundMessage, TextPart

_set = object.__setattr__
_DecoratorKinds = ("validators", "field_validators", "root_validators", "model_validators",
                   "field_serializers", "model_serializers", "computed_fields")


class _Plan:
    """How to build ``cls`` without validation: its fields in order with their defaults (a
    factory's field left for the factory), the factories, the names, the required ones."""

    def __init__(self, cls: type[BaseModel]) -> None:
        fields = cls.__pydantic_fields__
        self.cls = cls
        self.template = {name: None if f.default_factory is not None or f.is_required() else f.default
                         for name, f in fields.items()}
        self.factories = tuple((name, f.default_factory) for name, f in fields.items()
                               if f.default_factory is not None)
        self.names = frozenset(fields)
        self.required = frozenset(name for name, f in fields.items() if f.is_required())

    def build(self, given: dict[str, Any]) -> Any:
        values = self.template.copy()  # every field, in field order
        values.update(given)
        for name, factory in self.factories:
            if name not in given:
                values[name] = factory()  # type: ignore[call-arg]  # none takes the data (_plan)
        model = self.cls.__new__(self.cls)
        _set(model, "__dict__", values)
        _set(model, "__pydantic_fields_set__", set(given))
        _set(model, "__pydantic_extra__", None)
        _set(model, "__pydantic_private__", None)
        return model


def _plan(cls: type[BaseModel], allowed: frozenset[str] = frozenset()) -> _Plan | None:
    """The plan for ``cls``, or ``None`` when validating it may do more than keep its values
    (decorators other than ``allowed``, aliases, field constraints, private state, extra
    fields, factories that take the data)."""
    decorators = cls.__pydantic_decorators__
    names = {name for kind in _DecoratorKinds for name in getattr(decorators, kind, {})}
    if (names - allowed or cls.__private_attributes__ or cls.__pydantic_post_init__ is not None
            or cls.model_config.get("extra") == "allow"):
        return None
    # a field's constraints or Annotated validators (``metadata``) are checks validation
    # makes on every value: such a model is validated
    if any(f.alias is not None or f.validation_alias is not None or f.metadata
           or getattr(f, "default_factory_takes_data", False) for f in cls.__pydantic_fields__.values()):
        return None
    return _Plan(cls)


# checked once, at import: the SDK's models as this process has them
_TEXT = _plan(TextPart, frozenset({"_sanitize"}))  # plain text: the sanitizer does nothing
_INBOUND = _plan(InboundMessage)
# a text part is three fields: spelled out, without the plan's copies (the commonest part)
_TEXT_AS_EXPECTED = _TEXT is not None and _TEXT.template == {
    "type": "text", "text": None, "format": "plain"} and not _TEXT.factories
_new = TextPart.__new__


def text_part(text: str) -> TextPart:
    """``TextPart(text=text)`` (plain text: its only validator, the HTML sanitizer, does
    nothing to it)."""
    if not _TEXT_AS_EXPECTED or type(text) is not str:
        return TextPart(text=text)
    part = _new(TextPart)
    _set(part, "__dict__", {"type": "text", "text": text, "format": "plain"})
    _set(part, "__pydantic_fields_set__", {"text"})
    _set(part, "__pydantic_extra__", None)
    _set(part, "__pydantic_private__", None)
    return part


def inbound_message(**given: Any) -> InboundMessage:
    """``InboundMessage(**given)`` for values that are already what validation would keep: the
    caller passes ``str`` ids, :class:`Address` and part instances, lists and ``dict``s."""
    plan = _INBOUND
    if plan is None or not plan.required <= given.keys() <= plan.names:
        return InboundMessage(**given)  # validation says what is wrong
    built: InboundMessage = plan.build(given)
    return built
