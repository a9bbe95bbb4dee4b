"""SQLite backend: the embedded default. WAL mode, and group commit.

Writes from concurrent webhooks are queued and run together in one transaction at the next turn
of the event loop (each in its own savepoint, so one failing write never undoes the others), which
turns N commits into one. SQLite calls take microseconds, so they run on the event loop itself
rather than paying for a thread hop; the shared logic's coroutines never really suspend inside a
transaction, and :func:`_run_now` checks that. The one slow step of WAL mode, copying the log
back into the database (a checkpoint, with its fsync), runs in a thread on a connection of its
own instead of inside whichever commit crossed SQLite's threshold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigurationError, OmnichannelError
from ._base import RawPayload
from ._dead_letters import RAW_INSERT_SQL, raw_row
from ._errors import store_error
from ._schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, newer_database_error
from ._sql import SqlStore
from ._tx import Tx

log = logging.getLogger("omnichannel_sdk.store")
T = TypeVar("T")
_PLACEHOLDER = re.compile(r"\$(\d+)")
_CHECKPOINT_COMMITS = 200
"""Group commits between WAL checkpoints (at most a second apart while writes go on)."""


def _run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to completion, synchronously."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise OmnichannelError("a store transaction suspended; SQLite units must not await I/O")


class _SqliteTx:
    """One transaction's statements, on one cursor: ``Connection.execute`` makes (and frees) a
    cursor per statement, about a seventh of what a statement costs from Python. Each
    statement is finished (reset) by the next one, and the last one by :meth:`close`, which
    runs before the transaction ends, as a per-statement cursor's release did."""

    __slots__ = ("cursor", "raw_rows")

    def __init__(self, conn: sqlite3.Connection, *, write: bool = False) -> None:
        self.cursor = conn.cursor()
        self.raw_rows: list[tuple[Any, ...]] | None = [] if write else None
        """A write transaction's raw payloads, inserted together by :meth:`flush` (nothing
        reads a raw payload in the transaction that stores it)."""

    def flush(self) -> None:
        """Insert the raw payloads held so far, in one ``executemany``."""
        if self.raw_rows:
            rows, self.raw_rows = self.raw_rows, []
            self.cursor.executemany(_sql(RAW_INSERT_SQL), rows)

    # (``_cache.get(sql) or _sql(sql)``: the converted text without a call, once it is known)
    async def execute(self, sql: str, *args: Any) -> int:
        return self.cursor.execute(_cache.get(sql) or _sql(sql), args).rowcount

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        plan = _fetches.get(sql)
        if plan is None:
            plan = _fetches[sql] = _fetch_plan(sql, self.cursor.connection)
        converted, short, returned = plan
        if short is not None and type(args[returned]) is str:
            # the row's own value, when the insert wrote the row (see _insert_plan)
            return (args[returned],) if self.cursor.execute(short, args).rowcount == 1 else None
        row: Sequence[Any] | None = self.cursor.execute(converted, args).fetchone()
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return self.cursor.execute(_cache.get(sql) or _sql(sql), args).fetchall()

    def close(self) -> None:
        """Finish the last statement (a read may still hold its snapshot) and free the cursor."""
        self.cursor.close()


_cache: dict[str, str] = {}

_INSERT_RETURNING = re.compile(
    r"INSERT INTO (\w+) \(([^()]*)\) VALUES \(([^()]*)\) "
    r"ON CONFLICT (?:\([^()]*\) (?:WHERE [^()]*? )?)?DO NOTHING RETURNING (\w+)")
_fetches: dict[str, tuple[str, str | None, int]] = {}
"""Per statement text read with ``fetchone``: its SQLite form and, for an insert
``_insert_plan`` plans, its form without ``RETURNING`` and the argument its returned column
takes (else ``None``, -1): one dictionary look-up a statement."""


def _fetch_plan(sql: str, conn: sqlite3.Connection) -> tuple[str, str | None, int]:
    """What :data:`_fetches` keeps for ``sql``."""
    insert = _insert_plan(sql, conn)
    return (_sql(sql), None, -1) if insert is None else (_sql(sql), *insert)


def _insert_plan(sql: str, conn: sqlite3.Connection) -> tuple[str, int] | None:
    """For ``INSERT INTO t (..., col, ...) VALUES (..., $n, ...) ON CONFLICT ... DO NOTHING
    RETURNING col`` into a column of ``TEXT`` affinity: the statement without ``RETURNING``,
    and the index of ``$n``'s argument.

    A one-row insert that does nothing on conflict returns a row exactly when it wrote one,
    and a ``TEXT`` column returns a string argument as given; so its ``rowcount`` and the
    argument give the row ``RETURNING`` would. SQLite runs ``RETURNING`` through a temporary
    table of its own: about half of what a vendor id's claim costs (``tests/test_store_sqlite_returning.py``
    compares both forms)."""
    match = _INSERT_RETURNING.fullmatch(sql)
    if match is None:
        return None
    table, columns, values, returned = match.groups()
    names = [c.strip() for c in columns.split(",")]
    given = [v.strip() for v in values.split(",")]
    if len(names) != len(given) or returned not in names:
        return None
    value = given[names.index(returned)]
    if not re.fullmatch(r"\$\d+", value):
        return None
    declared = {str(row[1]): str(row[2]).upper()
                for row in conn.execute(f"PRAGMA table_info({table})")}  # our own tables
    if "TEXT" not in declared.get(returned, "") or "INT" in declared[returned]:
        return None
    return _sql(sql[:match.start(4) - len(" RETURNING ")]), int(value[1:]) - 1


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", lambda m: f"%{ord(m.group()):02x}", name)[:200]


def try_lock_file(path: str) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path`` (created), or ``None``
    when another open file holds it (or the platform has no ``flock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no identity lock, no takeover
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _sql(sql: str) -> str:
    converted = _cache.get(sql)
    if converted is None:
        converted = _cache[sql] = _PLACEHOLDER.sub(r"?\1", sql)
    return converted


class SQLiteStore(SqlStore):
    """The embedded store (``sqlite:///path.db``, or ``sqlite:///:memory:``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._identity_lock: int | None = None
        self._scheduled = False
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._commits = 0
        self._checkpointed = time.monotonic()

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
        if not url.startswith("sqlite:///"):
            raise ConfigurationError(f"not a sqlite URL: {url!r}", field="store")
        return cls(url[len("sqlite:///"):] or ":memory:")

    async def open(self) -> None:
        """Open the database file (creating folders) and the schema."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA foreign_keys=OFF")
        if self.path != ":memory:":  # checkpoints run in a thread (see _after_commit)
            conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            _upgrade(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def _lock_identity(self, name: str) -> bool:
        """An exclusive ``flock`` on ``<database>-worker-<name>.lock`` beside the database,
        kept while the store is open: the operating system drops it when the process dies.
        An in-memory database is this process's alone."""
        if self.path == ":memory:":
            return True
        fd = try_lock_file(f"{self.path}-worker-{_file_safe(name)}.lock")
        if fd is None:
            return False
        self._identity_lock = fd
        return True

    async def close(self) -> None:
        """Flush queued writes and close (giving up the process identity)."""
        if self._identity_lock is not None:
            os.close(self._identity_lock)  # closing the descriptor drops the flock
            self._identity_lock = None
            self.identity = None
        if self._conn is None:
            return
        if self._pending:
            self._flush()
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        self._conn.close()
        self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OmnichannelError("store is not open (use `async with hub` or `await store.open()`)")
        return self._conn

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        tx = _SqliteTx(self.conn)
        try:
            return _run_now(fn(tx))  # type: ignore[arg-type]
        except Exception as exc:
            raise store_error(exc, "SQLite") from exc
        finally:
            tx.close()

    async def _write(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """Run every queued write in one transaction.

        Optimistic: the batch runs without savepoints (two statements fewer per write). If a
        write fails, the batch is rolled back and every write runs again in a transaction of
        its own, so one failing write never undoes the others.
        """
        self._scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        results = self._run_batch(batch) if len(batch) > 1 else None
        if results is None:
            results = [self._run_batch([unit])[0] for unit in batch]  # type: ignore[index]
        for (_, future), (ok, value) in zip(batch, results, strict=True):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._after_commit()

    def _after_commit(self) -> None:
        """Every ``_CHECKPOINT_COMMITS`` batches (or a second after the last checkpoint), start a
        checkpoint in a thread unless one is running: the event loop never waits for one."""
        self._commits += 1
        if self._checkpoint is not None or self.path == ":memory:":
            return
        now = time.monotonic()
        if self._commits < _CHECKPOINT_COMMITS and now - self._checkpointed < 1.0:
            return
        self._commits, self._checkpointed = 0, now
        loop = asyncio.get_running_loop()
        self._checkpoint = loop.run_in_executor(None, self._run_checkpoint)
        self._checkpoint.add_done_callback(self._checkpoint_done)

    def _run_checkpoint(self) -> None:
        # PASSIVE: copies what no reader still needs, never blocks the writer on the loop
        if self._checkpoint_conn is None:
            self._checkpoint_conn = sqlite3.connect(self.path, isolation_level=None,
                                                    check_same_thread=False)
            self._checkpoint_conn.execute("PRAGMA busy_timeout=5000")
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("WAL checkpoint failed: %s", future.exception())

    async def _insert_raw(self, tx: Tx, raw: RawPayload) -> None:
        """Held on a write transaction, inserted with the batch's others before it commits."""
        if isinstance(tx, _SqliteTx) and tx.raw_rows is not None:
            tx.raw_rows.append(raw_row(raw))
            return
        await super()._insert_raw(tx, raw)

    def _run_batch(
        self, batch: list[tuple[Callable[[Any], Awaitable[Any]], asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]] | None:
        """Run ``batch`` in one transaction: its results, or ``None`` if a write failed (a
        batch of one reports the failure instead)."""
        conn = self.conn
        tx = _SqliteTx(conn, write=True)
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for index, (fn, _) in enumerate(batch):
                try:
                    value: Any = _run_now(fn(tx))  # type: ignore[arg-type]
                    if index == len(batch) - 1:
                        tx.flush()  # part of the last unit: a failure is handled as its own
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                    tx.close()
                    if len(batch) > 1:
                        conn.execute("ROLLBACK")
                        return None
                    conn.execute("ROLLBACK")
                    return [(False, store_error(exc, "SQLite"))]
                results.append((True, value))
            tx.close()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            tx.close()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, store_error(exc, "SQLite"))] * len(batch)
        return results


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring the database to :data:`SCHEMA_VERSION`, one step per transaction (``BEGIN
    IMMEDIATE`` so two processes opening it at once never apply a step twice)."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(VERSION_TABLE)
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                # 0.1.0 recorded no version: its tables are step 1
                legacy = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                      "AND name = 'messages'").fetchone()
                current = 1 if legacy else 0
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (current,))
            else:
                current = int(row[0])
            if current > SCHEMA_VERSION:
                raise newer_database_error(current)
            if current == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[current]:
                conn.execute(statement.replace("{blob}", "BLOB"))
            conn.execute("UPDATE schema_version SET version = ?", (current + 1,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
