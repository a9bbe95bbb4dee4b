"""The SQL store: every part written once against :class:`~._tx.Tx`, put together for the
backends (SQLite and PostgreSQL provide ``_write`` and ``_read``).

Its parts, by what they hold: inbound messages (:mod:`._ingest`), messages, sends and receipts
(:mod:`._messages`), conversations (:mod:`._conversations`), contacts and merges
(:mod:`._contacts`, :mod:`._merges`), the outbox's jobs (:mod:`._jobs`), dead letters
(:mod:`._dead_letters`), key-value (:mod:`._kv`); the durable feed's log is :mod:`._feed`.
"""

from __future__ import annotations

import abc

from ._base import Store
from ._ingest import IngestSql
from ._kv import KvSql
from ._messages import early_receipt_key, status_moves
from ._tx import Tx, from_us, now_us, to_us

__all__ = ["SqlStore", "Tx", "early_receipt_key", "from_us", "now_us", "status_moves", "to_us"]


class SqlStore(IngestSql, KvSql, Store, abc.ABC):
    """Everything a SQL backend does, given ``_write`` and ``_read`` transactions."""

    async def schema_version(self) -> int:
        """The schema version of the open database (the last upgrade step applied)."""
        row = await self._read(lambda tx: tx.fetchone("SELECT version FROM schema_version"))
        return int(row[0]) if row else 0
