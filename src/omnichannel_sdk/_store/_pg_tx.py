"""The PostgreSQL backend's transaction: the statements of the shared store logic, with fewer
round trips where the logic allows.

Three savings, all invisible inside the transaction:

- raw payloads (which no write reads back in its own transaction) are kept and inserted with
  one multi-row statement before the commit (:meth:`PgTx.flush`), with whatever is held then;
- a plain single-row ``INSERT`` the caller marks (:meth:`PgTx.hold_next`: the new message, a
  new contact) is held back, and so is a data-modifying statement the caller hands over by
  name (:meth:`PgTx.hold`: the conversation's reply-window update); what is held is sent with
  the next statement the caller marks (:meth:`PgTx.join_next`: the next message's claim and
  thread read, or a new contact's look-up of the same person on other channels), as one
  statement with the held ones in its ``WITH`` clause. The statements of a ``WITH`` clause
  share one snapshot, so a marked statement must read nothing a held one writes, or read it
  through the held statement's ``RETURNING`` (the claim reads a held window update as
  ``_win``). Any other statement sends what is held first, as one statement, so every read
  still sees it.
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
_Held = tuple[str, str, tuple[Any, ...]]
"""A held statement: its name in the ``WITH`` clause, its text, its arguments."""
_joined: dict[tuple[tuple[tuple[str, str, int], ...], str], str] = {}


def _moved(sql: str, by: int) -> str:
    return _PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + by}", sql) if by else sql


def _join(held: Sequence[_Held], main: str) -> str:
    """``main`` with the ``held`` statements in its ``WITH`` clause (the placeholders of each
    moved past those before it); the same text for the same statements, so asyncpg's prepared
    statement is reused."""
    key = (tuple((name, sql, len(args)) for name, sql, args in held), main)
    found = _joined.get(key)
    if found is None:
        clauses = []
        offset = 0
        for name, sql, args in held:
            clauses.append(f"{name} AS ({_moved(sql, offset)})")
            offset += len(args)
        moved = _moved(main, offset)
        if moved.startswith("WITH "):  # one WITH clause, the held statements first
            found = f"WITH {', '.join(clauses)}, {moved[5:]}"
        else:
            found = f"WITH {', '.join(clauses)} {moved}"
        _joined[key] = found
    return found


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

    __slots__ = ("_answer", "_held", "_hold", "_hold_as", "_join", "conn", "raw_rows")

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.raw_rows: list[tuple[Any, ...]] = []
        self._held: list[_Held] = []
        self._hold = False
        self._join = False
        self._answer: tuple[str, tuple[Any, ...], list[Sequence[Any]]] | None = None
        self._hold_as: tuple[str, str, str] | None = None

    def answer(self, sql: str | None, args: tuple[Any, ...] = (),
               rows: list[Sequence[Any]] | None = None) -> None:
        """Answer the next :meth:`fetchall` of exactly ``sql`` with ``args`` by ``rows``, read
        already (by a statement of this transaction whose snapshot gives the same rows);
        ``answer(None)`` takes it back."""
        self._answer = None if sql is None else (sql, args, rows or [])

    def hold_next(self) -> None:
        """Hold the next statement if it is a plain single-row ``INSERT`` run by
        :meth:`execute` while no other such insert is held (it then reports one row
        changed)."""
        self._hold = True

    def join_next(self) -> None:
        """Send the next statement together with what is held, if anything is."""
        self._join = True

    def cancel_join(self) -> None:
        """Take back a :meth:`join_next` no statement used."""
        self._join = False

    async def hold(self, name: str, sql: str, *args: Any) -> None:
        """Hold the data-modifying statement ``sql`` as ``name`` (its ``RETURNING`` readable
        under that name by the statement it joins). A statement held under the same name
        before is sent first."""
        if any(held[0] == name for held in self._held):
            await self.release()
        self._held.append((name, sql, args))

    def hold_next_as(self, name: str, expected: str, returning: str) -> None:
        """Hold the next :meth:`execute` as ``name`` (with ``returning`` appended) if its text is
        ``expected``; any other text is sent joined with what is held (as :meth:`join_next`),
        so a change of the caller's statement costs a round trip, never a wrong read."""
        self._hold_as = (name, expected, returning)

    def holding(self, name: str) -> bool:
        """Whether a statement is held as ``name`` (the next joined statement may read it)."""
        return any(held[0] == name for held in self._held)

    async def release(self) -> None:
        """Send what is held, as one statement (before another statement, and at a unit's
        end)."""
        if self._held:
            held, self._held = self._held, []
            *first, (_, last, last_args) = held
            sql = _join(first, last) if first else last
            await self.conn.execute(sql, *[a for _, _, args in first for a in args], *last_args)

    async def flush(self) -> None:
        """Everything still kept: what is held, and the raw payloads, in one statement (before
        the commit)."""
        if not self.raw_rows:
            await self.release()
            return
        columns = [list(column) for column in zip(*self.raw_rows, strict=True)]
        self.raw_rows = []
        held, self._held = self._held, []
        await self.conn.execute(_join(held, RAW_INSERT) if held else RAW_INSERT,
                                *[a for _, _, args in held for a in args], *columns)

    def _take(self, sql: str) -> tuple[str, list[Any]] | None:
        """The statement to send for a marked ``sql`` and the held arguments before its own,
        or ``None`` when it goes alone (unmarked, or nothing held)."""
        join = self._join
        self._hold = self._join = False
        if not join or not self._held:
            return None
        held, self._held = self._held, []
        return _join(held, sql), [a for _, _, args in held for a in args]

    async def execute(self, sql: str, *args: Any) -> int:
        if self._hold_as is not None:
            (name, expected, returning), self._hold_as = self._hold_as, None
            if sql == expected:
                await self.hold(name, sql + returning, *args)
                return 1
            self._join = True
        if self._hold and not self._join and _holdable(sql) and not any(
                held[0] == "_ins" for held in self._held):
            self._hold = False
            self._held.append(("_ins", sql, args))
            return 1
        joined = self._take(sql)
        if joined is None:
            await self.release()
            status: str = await self.conn.execute(sql, *args)
        else:
            status = await self.conn.execute(joined[0], *joined[1], *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        joined = self._take(sql)
        row: Sequence[Any] | None
        if joined is None:
            await self.release()
            row = await self.conn.fetchrow(sql, *args)
        else:
            row = await self.conn.fetchrow(joined[0], *joined[1], *args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        answer = self._answer
        if answer is not None and answer[0] == sql and answer[1] == args:
            self._answer = None
            self._hold = self._join = False
            return answer[2]
        joined = self._take(sql)
        rows: list[Sequence[Any]]
        if joined is None:
            await self.release()
            rows = await self.conn.fetch(sql, *args)
        else:
            rows = await self.conn.fetch(joined[0], *joined[1], *args)
        return rows
