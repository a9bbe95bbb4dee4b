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

import functools
from typing import Any

from pydantic import BaseModel

from omnichannel_sdk import InboundMessage, TextPart

_set = object.__setattr__
_DecoratorKinds = ("validators", "field_validators", "root_validators", "model_validators",
                   "field_serializers", "model_serializers", "computed_fields")


@functools.cache
def _defaults(cls: type[BaseModel], allowed: frozenset[str] = frozenset()) -> (
        tuple[tuple[str, Any, Any], ...] | None):
    """Each field's name, default and default factory; ``None`` when validating ``cls`` may do
    more than keep its values (decorators other than ``allowed``, aliases, private state)."""
    decorators = cls.__pydantic_decorators__
    names = {name for kind in _DecoratorKinds for name in getattr(decorators, kind, {})}
    if (names - allowed or cls.__private_attributes__ or cls.__pydantic_post_init__ is not None
            or cls.model_config.get("extra") == "allow"):
        return None
    fields = cls.__pydantic_fields__
    if any(f.alias is not None or f.validation_alias is not None
           or getattr(f, "default_factory_takes_data", False) for f in fields.values()):
        return None
    return tuple((name, f.default, f.default_factory) for name, f in fields.items())


@functools.cache
def _names(cls: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """The names of all fields of ``cls`` and of its required ones."""
    fields = cls.__pydantic_fields__
    return frozenset(fields), frozenset(n for n, f in fields.items() if f.is_required())


def _built(cls: type[BaseModel], given: dict[str, Any], plan: tuple[tuple[str, Any, Any], ...]) -> Any:
    values = {name: given[name] if name in given else factory() if factory is not None else default
              for name, default, factory in plan}
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(given))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def text_part(text: str) -> TextPart:
    """``TextPart(text=text)`` (plain text: its only validator, the HTML sanitizer, does
    nothing to it)."""
    plan = _defaults(TextPart, frozenset({"_sanitize"}))
    if plan is None or type(text) is not str:
        return TextPart(text=text)
    built: TextPart = _built(TextPart, {"text": text}, plan)
    return built


def inbound_message(**given: Any) -> InboundMessage:
    """``InboundMessage(**given)`` for values that are already what validation would keep: the
    caller passes ``str`` ids, :class:`Address` and part instances, lists and ``dict``s."""
    plan = _defaults(InboundMessage)
    names, required = _names(InboundMessage)
    if plan is None or not required <= given.keys() <= names:  # validation says what is wrong
        return InboundMessage(**given)
    built: InboundMessage = _built(InboundMessage, given, plan)
    return built
