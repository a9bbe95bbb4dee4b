"""PostgreSQL backend (asyncpg): for production and for several gateway processes."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from .._errors import ConfigurationError, OmnichannelError
from ._errors import store_error
from ._schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, newer_database_error
from ._sql import SqlStore

T = TypeVar("T")

_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


class _PgTx:
    __slots__ = ("conn",)

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self.conn.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        row: Sequence[Any] | None = await self.conn.fetchrow(sql, *args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self.conn.fetch(sql, *args)
        return rows


class PostgresStore(SqlStore):
    """The production store (``postgresql://user@host:5432/db``)."""

    lock_clause = " FOR UPDATE"

    claim_sql = """UPDATE jobs SET state = 'running', lease_us = $1, owner = $4
        WHERE id IN (SELECT id FROM jobs WHERE (state = 'pending' AND next_us <= $2)
                     OR (state = 'running' AND lease_us < $2) ORDER BY next_us LIMIT $3
                     FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, channel_key, message_id, attempts, payload, attempt_us,
                  vendor_attempts, possible_duplicates"""

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 10,
                 schema: str | None = None) -> None:
        parts = urlsplit(dsn)
        query = parse_qsl(parts.query)
        found = [v for k, v in query if k == "schema"]
        if found:  # ``?schema=name`` keeps the tables in their own schema
            schema = schema or found[0]
            dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query
                                                              if k != "schema"])))
        if schema is not None and not schema.replace("_", "").isalnum():
            raise ConfigurationError("schema names are letters, digits and '_'", field="store")
        self.schema = schema
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._identity_conn: asyncpg.Connection | None = None

    async def open(self) -> None:
        """Connect a pool and create the schema (under an advisory lock)."""
        settings = {"search_path": self.schema} if self.schema else None
        try:
            if self.schema:
                conn = await asyncpg.connect(self.dsn)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                finally:
                    await conn.close()
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self.min_size, max_size=self.max_size,
                server_settings=settings)
        except (OSError, asyncpg.PostgresError) as exc:
            raise OmnichannelError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
        try:
            await self._upgrade()
        except BaseException:
            await self.close()
            raise

    async def _upgrade(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` under an advisory lock (one process
        upgrades, the others wait and find it done), each step in its own transaction."""
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(4242001)")
            try:
                while True:
                    async with conn.transaction():
                        await conn.execute(VERSION_TABLE)
                        found = await conn.fetchval("SELECT version FROM schema_version")
                        if found is None:
                            # 0.1.0 recorded no version: its tables are step 1
                            legacy = await conn.fetchval("SELECT to_regclass('messages') IS NOT NULL")
                            found = 1 if legacy else 0
                            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", found)
                        current = int(found)
                        if current > SCHEMA_VERSION:
                            raise newer_database_error(current)
                        if current == SCHEMA_VERSION:
                            return
                        for statement in MIGRATIONS[current]:
                            await conn.execute(statement.replace("{blob}", "BYTEA"))
                        await conn.execute("UPDATE schema_version SET version = $1", current + 1)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(4242001)")

    async def _lock_identity(self, name: str) -> bool:
        """A session advisory lock on the identity (scoped by schema), on a connection of its
        own kept open while the store is: PostgreSQL drops it when the process dies and its
        connection closes."""
        if self._identity_conn is None:
            try:
                self._identity_conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                raise store_error(exc, "PostgreSQL") from exc
        try:
            held = await self._identity_conn.fetchval(
                "SELECT pg_try_advisory_lock(4242002, hashtext($1))",
                f"{self.schema or ''}:{name}")
        except Exception as exc:
            raise store_error(exc, "PostgreSQL") from exc
        return bool(held)

    async def close(self) -> None:
        """Close the pool (and the connection holding the process identity)."""
        if self._identity_conn is not None:
            with contextlib.suppress(Exception):
                await self._identity_conn.close()
            self._identity_conn = None
            self.identity = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise OmnichannelError("store is not open (use `async with hub` or `await store.open()`)")
        return self._pool

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        pool = self.pool
        try:
            async with pool.acquire() as conn:
                return await fn(_PgTx(conn))
        except Exception as exc:
            raise store_error(exc, "PostgreSQL") from exc

    async def _write(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        pool = self.pool
        for attempt in range(5):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    return await fn(_PgTx(conn))
            except (*_RETRYABLE, asyncpg.UniqueViolationError) as exc:
                # a serialization failure, or a race the ON CONFLICTs did not cover: again
                if attempt == 4:
                    raise store_error(exc, "PostgreSQL") from exc
            except Exception as exc:
                raise store_error(exc, "PostgreSQL") from exc
        raise OmnichannelError("unreachable")
