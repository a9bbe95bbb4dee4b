"""How a conversation is stored: its JSON, and its reply window in columns of its own.

An inbound message moves a conversation's reply window; keeping ``last_inbound_at`` and
``window_expires_at`` in columns (schema step 3) lets it do so with a small update instead of
rewriting the conversation's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .._models import Conversation
from ._parsed import parsed_conversation

__all__ = [
    "CONVERSATION_COLUMNS",
    "conversation_from_row",
    "exact_us",
    "utc",
    "window_columns",
]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (naive means UTC), as the models' validators store it."""
    if value is None or value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

CONVERSATION_COLUMNS = "data, last_inbound_us, window_expires_us"
"""What to select for :func:`conversation_from_row`: the JSON and the reply window's columns."""


def exact_us(value: datetime | None) -> int | None:
    """A datetime as microseconds since the epoch, exactly (no float rounding)."""
    return None if value is None else (utc(value) - _EPOCH) // _MICRO  # type: ignore[operator]


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    """A conversation from ``CONVERSATION_COLUMNS``.

    The reply window (``last_inbound_us``, ``window_expires_us``) is kept in columns that an
    inbound message updates without rewriting the JSON; when ``last_inbound_us`` is set they
    hold both fields, when it is ``NULL`` the JSON does (rows older than the columns, and
    conversations no customer wrote in yet).
    """
    if row[1] is None:
        return parsed_conversation(row[0])
    return parsed_conversation(row[0], {
        "last_inbound_at": _EPOCH + timedelta(microseconds=int(row[1])),
        "window_expires_at": None if row[2] is None else _EPOCH + timedelta(microseconds=int(row[2]))})


def window_columns(conversation: Conversation) -> tuple[int | None, int | None]:
    """``last_inbound_us`` and ``window_expires_us`` of a conversation (see
    :func:`conversation_from_row`: ``NULL`` in the first means the JSON holds both)."""
    last = exact_us(conversation.last_inbound_at)
    return last, None if last is None else exact_us(conversation.window_expires_at)
