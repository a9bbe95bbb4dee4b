"""The store's small key-value table in SQL: values with an optional expiry."""

from __future__ import annotations

from ._tx import SqlBase, now_us

__all__ = ["KvSql"]


class KvSql(SqlBase):
    """Keys and values (idempotency keys, early receipts, adapters' state) in SQL."""

    async def kv_get(self, key: str) -> str | None:
        """Return the value, or ``None`` when absent or expired."""
        row = await self._read(lambda tx: tx.fetchone(
            "SELECT value FROM kv WHERE key = $1 AND (expires_us IS NULL OR expires_us > $2)",
            key, now_us()))
        return str(row[0]) if row else None

    async def kv_set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given."""
        expires = None if ttl is None else now_us() + int(ttl * 1e6)
        await self._write(lambda tx: tx.execute(
            "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_us = excluded.expires_us",
            key, value, expires))

    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent or expired; ``True`` if stored."""
        now = now_us()
        expires = None if ttl is None else now + int(ttl * 1e6)
        row = await self._write(lambda tx: tx.fetchone(
            "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_us = excluded.expires_us "
            "WHERE kv.expires_us IS NOT NULL AND kv.expires_us <= $4 RETURNING key",
            key, value, expires, now))
        return row is not None

    async def kv_delete(self, key: str) -> None:
        """Remove ``key``."""
        await self._write(lambda tx: tx.execute("DELETE FROM kv WHERE key = $1", key))

    async def kv_scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every live ``(key, value)`` whose key starts with ``prefix``."""
        rows = await self._read(lambda tx: tx.fetchall(
            "SELECT key, value FROM kv WHERE substr(key, 1, $1) = $2 "
            "AND (expires_us IS NULL OR expires_us > $3) ORDER BY key",
            len(prefix), prefix, now_us()))
        return [(str(r[0]), str(r[1])) for r in rows]
