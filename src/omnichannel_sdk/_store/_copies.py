"""Pydantic's ``model_construct`` and ``model_copy(update=...)`` for the store's hot path,
without their generic handling (aliases, defaults, extra fields, private attributes).

An inbound message builds its message and copies its conversation and contact: pydantic's own
two functions were about a sixth of the store's share of ingesting a message, most of it
looking for aliases and extras our models do not have. The result is the same instance
pydantic makes (``__dict__`` in field order, ``__pydantic_fields_set__``, no extra, no private
state); a model that has aliases, extra fields, private attributes or a post-init hook goes
through pydantic itself.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["constructed", "copied", "updated_own"]

M = TypeVar("M", bound=BaseModel)

# the setters of BaseModel's four slots, bound once: ``object.__setattr__(model, name, v)``
# looks the slot up by name and makes a bound wrapper on every call (a third of a copy's cost)
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


@functools.cache
def _names(cls: type[BaseModel]) -> tuple[str, ...]:
    """The field names of ``cls`` in order."""
    return tuple(cls.__pydantic_fields__)


@functools.cache
def _plain(cls: type[BaseModel]) -> bool:
    """Whether ``cls`` has nothing the short ways skip (checked once per class)."""
    return (not cls.__private_attributes__ and cls.__pydantic_post_init__ is None
            and not cls.__pydantic_root_model__ and cls.model_config.get("extra") != "allow"
            and all(f.alias is None and f.validation_alias is None
                    for f in cls.__pydantic_fields__.values()))


def constructed(cls: type[M], fields: dict[str, Any]) -> M:
    """``cls.model_construct(**fields)`` for ``fields`` naming every field, in field order
    (``fields`` becomes the instance's ``__dict__``: the caller hands it over)."""
    if not _plain(cls) or tuple(fields) != _names(cls):
        return cls.model_construct(**fields)
    model = cls.__new__(cls)
    _set_dict(model, fields)
    _set_fields_set(model, set(fields))
    _set_extra(model, None)
    _set_private(model, None)
    return model


def copied(model: M, update: dict[str, Any]) -> M:
    """``model.model_copy(update=update)`` (a shallow copy, ``update`` not validated)."""
    cls = type(model)
    if not _plain(cls) or model.__pydantic_extra__ is not None:
        return model.model_copy(update=update)
    new = cls.__new__(cls)
    values = model.__dict__.copy()
    values.update(update)
    _set_dict(new, values)
    _set_extra(new, None)
    _set_fields_set(new, model.__pydantic_fields_set__ | update.keys())
    _set_private(new, None)
    return new


def updated_own(model: M, update: dict[str, Any]) -> M:
    """``copied(model, update)`` for a ``model`` the caller alone holds (one it made, or a copy
    handed to it, with its own ``__dict__`` and fields set): ``update`` set on it, no second
    copy. A returning customer's conversation is copied from its parse once, not twice."""
    if not _plain(type(model)) or model.__pydantic_extra__ is not None:
        return model.model_copy(update=update)
    model.__dict__.update(update)
    model.__pydantic_fields_set__.update(update)
    return model
