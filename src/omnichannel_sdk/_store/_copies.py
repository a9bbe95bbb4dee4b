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

__all__ = ["constructed", "copied"]

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__


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
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def copied(model: M, update: dict[str, Any]) -> M:
    """``model.model_copy(update=update)`` (a shallow copy, ``update`` not validated)."""
    cls = type(model)
    if not _plain(cls) or model.__pydantic_extra__ is not None:
        return model.model_copy(update=update)
    new = cls.__new__(cls)
    values = model.__dict__.copy()
    values.update(update)
    _set(new, "__dict__", values)
    _set(new, "__pydantic_extra__", None)
    _set(new, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    _set(new, "__pydantic_private__", None)
    return new
