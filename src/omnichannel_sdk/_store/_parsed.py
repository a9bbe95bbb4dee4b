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

__all__ = ["parsed_contact", "parsed_conversation", "remember_contact", "remember_conversation"]

_SIZE = 2048
"""Remembered parses per model (about the active conversations of a busy process); the least
recently used is dropped first."""


_remembered: dict[str, Conversation | Contact] = {}
"""Models the store just wrote, by their JSON: what the next parse of that JSON takes instead
of parsing (see :func:`remember_conversation`). Emptied past ``_SIZE``."""


@functools.lru_cache(maxsize=_SIZE)
def _conversation(data: str) -> Conversation:
    model = _remembered.pop(data, None)
    if isinstance(model, Conversation):
        return model
    return Conversation.model_validate_json(data)


@functools.lru_cache(maxsize=_SIZE)
def _contact(data: str) -> Contact:
    model = _remembered.pop(data, None)
    if isinstance(model, Contact):
        return model
    return Contact.model_validate_json(data)


def _remember(data: str, model: Conversation | Contact) -> None:
    if len(_remembered) >= _SIZE:
        _remembered.clear()  # rows never read again (rolled back, or read by no one)
    # a parse sets every field (the stored JSON holds them all)
    object.__setattr__(model, "__pydantic_fields_set__", set(type(model).__pydantic_fields__))
    _remembered[data] = model


def remember_conversation(data: str, conversation: Conversation) -> None:
    """Remember that ``data`` (``conversation``'s JSON, as just stored) parses to
    ``conversation``: a customer's second message reads the conversation its first one created,
    and parsing it costs more than the rest of storing a message's conversation.

    A conversation has only typed fields (no ``Any``) whose validators give their own output
    back unchanged (UTC datetimes, normalized handles), so the validated model and the parse of
    its JSON are equal (``tests/test_store_parsed.py``). A copy is kept: the caller's lists
    are its own."""
    _remember(data, copied(conversation, {"participants": list(conversation.participants)}))


def remember_contact(data: str, contact: Contact) -> None:
    """:func:`remember_conversation` for a contact, when its profile holds only strings,
    booleans, integers and ``None`` (values JSON gives back as they were; a tuple, a float or a
    date would come back changed, so such a contact is parsed from its JSON as before)."""
    if all(type(v) in _EXACT for v in contact.profile.values()):
        _remember(data, copied(contact, {"addresses": list(contact.addresses),
                                         "opted_out": list(contact.opted_out),
                                         "profile": dict(contact.profile)}))


_EXACT = frozenset({str, bool, int, type(None)})


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
