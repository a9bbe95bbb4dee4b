"""Conversations and contacts parsed from their stored JSON, remembered by that JSON.

An inbound message reads its conversation (and, when the vendor sends profile fields, its
contact) on every message, and that JSON rarely changes: the reply window lives in columns of
its own. Parsing is a pure function of the text, so a parse remembered under the exact text is
the parse the text would give again, in every process, whoever wrote the row. The remembered
models are never handed out: callers get a copy with fresh lists and dicts, so a change to one
caller's model in place cannot reach another's.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from .._models import Contact, Conversation
from ._copies import copied

__all__ = ["parsed_contact", "parsed_conversation"]

_SIZE = 2048
"""Remembered parses per model (about the active conversations of a busy process); the least
recently used is dropped first."""


@functools.lru_cache(maxsize=_SIZE)
def _conversation(data: str) -> Conversation:
    return Conversation.model_validate_json(data)


@functools.lru_cache(maxsize=_SIZE)
def _contact(data: str) -> Contact:
    return Contact.model_validate_json(data)


def parsed_conversation(data: str, update: dict[str, Any] | None = None) -> Conversation:
    """The conversation stored as ``data``, with ``update`` applied (the window's columns)."""
    model = _conversation(data)
    return copied(model, {"participants": list(model.participants), **(update or {})})


def parsed_contact(data: str) -> Contact:
    """The contact stored as ``data``."""
    model = _contact(data)
    return copied(model, {
        "addresses": list(model.addresses), "opted_out": list(model.opted_out),
        "profile": copy.deepcopy(model.profile) if _nested(model.profile) else dict(model.profile)})


def _nested(values: dict[str, Any]) -> bool:
    return any(isinstance(v, dict | list) for v in values.values())
