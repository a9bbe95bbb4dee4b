"""Dead letters and raw payloads in SQL: what could not be parsed or delivered, and the
requests as received, kept for replay."""

from __future__ import annotations

from typing import Any

import orjson

from .._models import DeadLetter
from ._base import RawPayload
from ._tx import SqlBase, Tx, from_us, now_us, to_us

__all__ = ["RAW_INSERT_SQL", "DeadLetterSql", "raw_row"]

RAW_INSERT_SQL = (
    "INSERT INTO raw_payloads (id, channel_key, received_us, method, url, headers, body) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
"""A raw payload's insert (:func:`raw_row` gives its values)."""


def raw_row(raw: RawPayload) -> tuple[Any, ...]:
    """The values of ``RAW_INSERT_SQL`` for ``raw``."""
    return (raw.id, raw.channel_key, to_us(raw.received_at), raw.method, raw.url,
            orjson.dumps(raw.headers).decode(), raw.body)


class DeadLetterSql(SqlBase):
    """Dead letters (with their batch fragment) and raw payloads, for a store that provides
    the transactions."""

    async def list_dead_letters(self, *, include_replayed: bool = False) -> list[DeadLetter]:
        """Dead letters, oldest first (by default only those not yet replayed)."""
        sql = ("SELECT id, kind, channel_key, adapter, error, created_us, replayed_us, raw_id, "
               "message_id FROM dead_letters")
        if not include_replayed:
            sql += " WHERE replayed_us IS NULL"
        rows = await self._read(lambda tx: tx.fetchall(sql + " ORDER BY id"))
        return [
            DeadLetter(id=r[0], kind=r[1], channel_key=r[2], adapter=r[3], error=r[4],
                       created_at=from_us(r[5]), replayed_at=from_us(r[6]), raw_id=r[7],
                       message_id=r[8])
            for r in rows
        ]

    async def add_dead_letter(self, letter: DeadLetter, raw: RawPayload | None = None,
                              fragment: Any = None) -> None:
        """Record a dead letter (with its raw payload, stored in the same transaction)."""

        async def unit(tx: Tx) -> None:
            if raw is not None:
                await self._insert_raw(tx, raw)
            await self._insert_dead_letter(tx, letter, fragment)

        await self._write(unit)

    async def _insert_dead_letter(self, tx: Tx, letter: DeadLetter, fragment: Any = None) -> None:
        await tx.execute(
            "INSERT INTO dead_letters (id, kind, channel_key, adapter, error, created_us, "
            "replayed_us, raw_id, message_id, fragment) VALUES ($1, $2, $3, $4, $5, $6, NULL, "
            "$7, $8, $9)", letter.id, letter.kind, letter.channel_key, letter.adapter,
            letter.error, to_us(letter.created_at), letter.raw_id, letter.message_id,
            None if fragment is None else orjson.dumps(fragment, default=str).decode())

    async def dead_letter_fragment(self, letter_id: str) -> Any:
        """The batch fragment a dead letter is about, if it is about one item of a batch."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT fragment FROM dead_letters WHERE id = $1", letter_id))
        return orjson.loads(row[0]) if row and row[0] else None

    async def mark_replayed(self, letter_id: str) -> None:
        """Mark a dead letter replayed."""
        await self._write(lambda tx: tx.execute(
            "UPDATE dead_letters SET replayed_us = $2 WHERE id = $1", letter_id, now_us()))

    async def save_raw(self, raw: RawPayload) -> None:
        """Store a raw payload on its own."""
        await self._write(lambda tx: self._insert_raw(tx, raw))

    async def _insert_raw(self, tx: Tx, raw: RawPayload) -> None:
        await tx.execute(RAW_INSERT_SQL, *raw_row(raw))

    async def get_raw(self, raw_id: str) -> RawPayload | None:
        """A stored raw payload."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT id, channel_key, received_us, method, url, headers, body FROM raw_payloads "
            "WHERE id = $1", raw_id))
        if not row:
            return None
        return RawPayload(id=row[0], channel_key=row[1], received_at=from_us(row[2]),  # type: ignore[arg-type]
                          method=row[3], url=row[4], headers=orjson.loads(row[5]),
                          body=bytes(row[6]))
