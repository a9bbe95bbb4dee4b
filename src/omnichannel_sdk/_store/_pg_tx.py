"""The PostgreSQL backend's transaction: the statements of the shared store logic, with fewer
round trips where the logic allows.

Two savings, both invisible inside the transaction:

- raw payloads (which no write reads back in its own transaction) are kept and inserted with
  one multi-row statement before the commit (:meth:`PgTx.flush`);
- a plain single-row ``INSERT`` the caller marks (:meth:`PgTx.hold_next`: the new message) is
  held back and sent with the next statement when that one is marked too
  (:meth:`PgTx.join_next`: the conversation's reply-window update, or the next message's
  claim when a new conversation has no window to update; a new contact's insert goes with
  the look-up of the same person on other channels), as one statement with the insert in a
  ``WITH`` clause. The statements of a ``WITH`` clause share one snapshot, so only a
  statement that reads nothing the insert writes may be marked. Any other statement sends
  the held insert first, on its own, so every read still sees it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg

__all__ = ["RAW_INSERT", "PgTx"]

RAW_INSERT = (
    "INSERT INTO raw_payloads (id, channel_key, received_us, method, url, headers, body) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], "
    "$6::text[], $7::bytea[]) ON CONFLICT DO NOTHING")
"""Every raw payload of a transaction in one statement (one array per column)."""

_PLACEHOLDER = re.compile(r"\$(\d+)")
_joined: dict[tuple[str, str], str] = {}


def _join(first: str, first_args: int, second: str) -> str:
    """``second`` with ``first`` in a ``WITH`` clause (``second``'s placeholders moved past
    ``first``'s); the same text for the same pair, so asyncpg's prepared statement is reused."""
    key = (first, second)
    sql = _joined.get(key)
    if sql is None:
        moved = _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + first_args}", second)
        if moved.startswith("WITH "):  # one WITH clause, the held insert first
            sql = _joined[key] = f"WITH _held AS ({first}), {moved[5:]}"
        else:
            sql = _joined[key] = f"WITH _held AS ({first}) {moved}"
    return sql


_holdable_sql: dict[str, bool] = {}


def _holdable(sql: str) -> bool:
    """Whether ``sql`` is a plain single-row insert of parameters, which changes exactly one
    row or fails (so its row count says nothing the caller could need)."""
    found = _holdable_sql.get(sql)
    if found is None:
        upper = " ".join(sql.upper().split())
        values = upper.split(" VALUES ", 1)[1].replace(" ", "") if " VALUES " in upper else ""
        found = _holdable_sql[sql] = (
            upper.startswith("INSERT INTO ") and upper.count(" VALUES ") == 1
            and all(word not in upper for word in ("ON CONFLICT", "RETURNING", "SELECT", "WITH"))
            and values.startswith("(") and values.endswith(")") and values.count("(") == 1)
    return found


class PgTx:
    """One PostgreSQL transaction (or read) on a pooled connection."""

    __slots__ = ("_held", "_hold", "_join", "conn", "raw_rows")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.raw_rows: list[tuple[Any, ...]] = []
        self._held: tuple[str, tuple[Any, ...]] | None = None
        self._hold = False
        self._join = False

    def hold_next(self) -> None:
        """Hold the next statement if it is a plain single-row ``INSERT`` run by
        :meth:`execute` (it then reports one row changed)."""
        self._hold = True

    def join_next(self) -> None:
        """Send the next :meth:`execute` together with a held insert, if there is one."""
        self._join = True

    async def release(self) -> None:
        """Send a held insert on its own (before another statement, and at a unit's end)."""
        if self._held is not None:
            sql, args = self._held
            self._held = None
            await self.conn.execute(sql, *args)

    async def flush(self) -> None:
        """Everything still kept: a held insert, then the raw payloads (before the commit)."""
        await self.release()
        if self.raw_rows:
            columns = [list(column) for column in zip(*self.raw_rows, strict=True)]
            self.raw_rows = []
            await self.conn.execute(RAW_INSERT, *columns)

    async def execute(self, sql: str, *args: Any) -> int:
        hold, join = self._hold, self._join
        self._hold = self._join = False
        if hold and self._held is None and _holdable(sql):
            self._held = (sql, args)
            return 1
        if join and self._held is not None:
            first, first_args = self._held
            self._held = None
            status: str = await self.conn.execute(_join(first, len(first_args), sql),
                                                  *first_args, *args)
        else:
            await self.release()
            status = await self.conn.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        join = self._join
        self._hold = self._join = False
        row: Sequence[Any] | None
        if join and self._held is not None:
            first, first_args = self._held
            self._held = None
            row = await self.conn.fetchrow(_join(first, len(first_args), sql), *first_args, *args)
            return row
        await self.release()
        row = await self.conn.fetchrow(sql, *args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        join = self._join
        self._hold = self._join = False
        rows: list[Sequence[Any]]
        if join and self._held is not None:
            first, first_args = self._held
            self._held = None
            rows = await self.conn.fetch(_join(first, len(first_args), sql), *first_args, *args)
            return rows
        await self.release()
        rows = await self.conn.fetch(sql, *args)
        return rows

    def cancel_join(self) -> None:
        """Take back a :meth:`join_next` no statement used."""
        self._join = False
