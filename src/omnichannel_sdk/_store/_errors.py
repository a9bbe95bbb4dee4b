"""Database driver errors translated into the SDK's :class:`StoreError` tree, in one place.

Both backends pass every exception a store unit raises through :func:`store_error`, so the hub
sees two kinds only: :class:`StoreDataError` (this data can never be stored: dead-letter it) and
:class:`StoreUnavailableError` (try again later: 503 + Retry-After). The SDK's own errors raised
on purpose inside a unit (``NotFoundError``…) pass through unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import orjson

from .._errors import OmnichannelError, StoreDataError, StoreError, StoreUnavailableError

__all__ = ["store_error"]

# PostgreSQL classes (SQLSTATE's first two characters) that say "this data", not "this moment":
# 22 data exception (U+0000 in text, untranslatable character), 23 integrity constraint,
# 42 syntax/undefined (a value the statement cannot take), 54 program limit (row too big)
_PG_DATA_CLASSES = frozenset({"22", "23", "42", "54"})


def store_error(exc: BaseException, backend: str) -> BaseException:
    """The exception a store caller should see for ``exc`` raised inside ``backend``.

    Driver errors (and the value errors drivers raise while encoding a parameter) become a
    :class:`StoreDataError` or a :class:`StoreUnavailableError` chained to the original.
    Anything else (the SDK's own errors, a ``ValueError`` a unit raises on purpose,
    cancellation) is returned as it is.
    """
    kind = _classify(exc)
    if kind is None:
        return exc
    detail = _describe(exc)
    error: StoreError
    if kind == "data":
        error = StoreDataError(f"{backend} cannot store this data: {detail}")
    else:
        error = StoreUnavailableError(f"{backend} is unavailable: {detail}")
    error.__cause__ = exc
    return error


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, (OmnichannelError, asyncio.CancelledError)):
        return None
    if isinstance(exc, (UnicodeEncodeError, OverflowError, orjson.JSONEncodeError)):
        # a lone surrogate, an integer out of range: the value itself cannot be stored
        return "data"
    if isinstance(exc, sqlite3.Error):
        if isinstance(exc, sqlite3.OperationalError):
            return "transient"  # locked, busy, disk full, I/O error
        return "data"
    # asyncpg is the [postgres] extra: only an error of a loaded asyncpg can be one of its own
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is not None:
        from asyncpg.exceptions._base import DataError as client_data_error

        if isinstance(exc, asyncpg.PostgresError):
            state = str(getattr(exc, "sqlstate", "") or "")
            return "data" if state[:2] in _PG_DATA_CLASSES else "transient"
        if isinstance(exc, client_data_error):  # client side: a parameter it cannot encode
            return "data"
        if isinstance(exc, asyncpg.InterfaceError):
            return "transient"
    if isinstance(exc, (OSError, TimeoutError)):
        return "transient"  # connection lost, timed out, the pool closed
    return None


def _describe(exc: BaseException) -> str:
    # driver messages can quote the value; a NUL in a dead letter's error would fail again
    text = f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:500]
