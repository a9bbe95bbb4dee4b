"""PostgreSQL backend (asyncpg): for production and for several gateway processes.

Group commit, as on SQLite: writes queued in the same turn of the event loop run together in
one transaction on one pooled connection, which turns N commits (N WAL flushes, 2N ``BEGIN`` and
``COMMIT`` round trips) into one. A few batches run at once over the pool, so throughput is not
one connection's latency; writes queue while they run and form the next batch. Optimistic: the
units of a batch run without savepoints; if one fails (or the batch meets a deadlock or a
serialization failure, likelier now that transactions are longer), the batch rolls back and
every unit runs again in a transaction of its own, retried as before, so one failing write never
undoes the others and a write is reported done only once its transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from .._errors import ConfigurationError, OmnichannelError
from .._models import Address, Contact, Conversation, Message
from ._base import IngestItem, Job, RawPayload
from ._contacts import ContactChanges
from ._errors import store_error
from ._ingest import CLAIM_SQL, Claimed
from ._jobs import ATTEMPT_STARTED, claim_statement
from ._pg_ingest import open_new_thread
from ._pg_tx import PgTx
from ._schema import MIGRATIONS, SCHEMA_VERSION, VERSION_TABLE, newer_database_error
from ._sql import SqlStore, Tx, to_us
from ._tx import UNREAD, Unread

T = TypeVar("T")

_RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
_BATCH_UNITS = 64
"""Units per group-committed transaction at most (a long transaction holds its locks longer)."""
_BATCH_BEGIN = "BEGIN; SET LOCAL lock_timeout = '50ms'"
"""A batch's start, in one simple query (one round trip, not two): it waits at most 50 ms for a
lock before it falls back to one transaction per write."""
_MIN_SHARE = 16
"""Units a transaction takes at least when the queue is shared out over free slots."""

_OWNER_JOIN = (
    "LEFT JOIN LATERAL (SELECT o.data FROM contact_addresses a JOIN contacts o "
    "ON o.id = a.contact_id WHERE c.id IS NULL AND a.channel = $6 AND a.handle = $7 LIMIT 1) o ON true")
"""Only when the thread has no open conversation: the contact owning the first address (a
lateral subquery kept apart by its ``LIMIT``, so that its condition on ``c`` is checked before
any index is searched)."""

_WINDOW = ("CASE WHEN w.id IS NULL THEN c.last_inbound_us ELSE w.last_inbound_us END, "
           "CASE WHEN w.id IS NULL THEN c.window_expires_us ELSE w.window_expires_us END")
"""The reply window's columns as they are after a held window update (``_win``: its
``RETURNING``; the statement's snapshot still shows the row before it)."""


def _claim_thread(*, contact: bool, held_window: bool) -> str:
    """The claim of a vendor id and the thread's open conversation (with its contact's JSON
    when ``contact``; reading a held window update's ``_win`` when ``held_window``)."""
    window = _WINDOW if held_window else "c.last_inbound_us, c.window_expires_us"
    return (
        f"WITH claim AS ({CLAIM_SQL}) "  # noqa: S608 - constants
        f"SELECT c.data, {window}, {'k.data' if contact else 'NULL'}, o.data FROM claim "
        "LEFT JOIN conversations c ON c.channel_key = $4 AND c.thread_key = $5 "
        "AND c.status = 'open' "
        f"{'LEFT JOIN _win w ON w.id = c.id ' if held_window else ''}"
        f"{'LEFT JOIN contacts k ON k.id = c.contact_id ' if contact else ''}{_OWNER_JOIN}")


CLAIM_THREAD_SQL = {(contact, held): _claim_thread(contact=contact, held_window=held)
                    for contact in (False, True) for held in (False, True)}
"""The claim of a vendor id and the thread's open conversation, by (with the contact, after a
held window update): no row for a duplicate, a row of ``NULL`` when the thread has no open
conversation (but for the owner of the message's first contact address, the contact a new
conversation goes to when it has one)."""

SHARED_WINDOW_SQL = ("UPDATE conversations SET updated_us = $2, last_inbound_us = $3, "
                     "window_expires_us = $4 WHERE id = $1")
"""The shared reply-window update (``ConversationSql._save_window``) as this backend expects
it: held only when the shared code sends exactly this text (the claim reads what it returns)."""
WINDOW_RETURNING = " RETURNING id, last_inbound_us, window_expires_us"
"""What the held update returns for the next claim that joins it."""

_Unit = tuple[Callable[[Any], Awaitable[Any]], "asyncio.Future[Any]"]


class PostgresStore(SqlStore):
    """The production store (``postgresql://user@host:5432/db``)."""

    lock_clause = " FOR UPDATE"

    # (another process's claim skips the rows this one locked instead of waiting for them)
    claim_sql = claim_statement(lock=" FOR UPDATE SKIP LOCKED")

    claim_skipping_sql = claim_statement(
        " AND NOT (kind = 'send' AND channel_key = ANY($5::text[]))",
        lock=" FOR UPDATE SKIP LOCKED")

    def _key_list(self, keys: Sequence[str]) -> object:
        return list(keys)

    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 10,
                 schema: str | None = None, batches: int | None = None) -> None:
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
        # group commit: queued writes, and the batches running (each holds a pooled connection;
        # the rest of the pool serves reads)
        self.batches = batches or max(1, min(4, max_size - 1))
        self._pending: list[_Unit] = []
        self._running: set[asyncio.Task[None]] = set()
        self._scheduled = False

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
        upgrades, the others wait and find it done), each step in its own transaction. The
        lock is the schema's own: stores of other schemas in the same database open meanwhile."""
        key = self.schema or ""  # (no schema: the search path's tables; one lock for all of them)
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(4242001, hashtext($1))", key)
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
                await conn.execute("SELECT pg_advisory_unlock(4242001, hashtext($1))", key)

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

    async def _renew(self, tx: Tx, job_ids: list[str], until: int) -> int:
        """One statement for every job (a round trip each would add up in a long line)."""
        return await tx.execute(
            "UPDATE jobs SET lease_us = $1 WHERE id = ANY($2::text[]) AND state = 'running' "
            "AND owner IS NOT DISTINCT FROM $3::text", until, job_ids, self.identity)

    async def close(self) -> None:
        """Finish queued writes, close the pool (and the connection holding the process
        identity)."""
        while self._pending or self._running:
            if self._pending and not self._scheduled:
                self._start_batches()
            if self._running:
                await asyncio.wait(set(self._running))
            else:
                await asyncio.sleep(0)
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

    async def _insert_raw(self, tx: Tx, raw: RawPayload) -> None:
        """Queue the raw payload on the transaction: :meth:`PgTx.flush` inserts every one a
        transaction stored in one statement before it commits."""
        if not isinstance(tx, PgTx):
            await super()._insert_raw(tx, raw)
            return
        tx.raw_rows.append((raw.id, raw.channel_key, to_us(raw.received_at), raw.method, raw.url,
                            orjson.dumps(raw.headers).decode(), raw.body))

    async def _insert_message(self, tx: Tx, message: Message) -> str:
        """The shared insert, held back to go with a later statement (see
        :meth:`_save_window`) in one round trip."""
        if isinstance(tx, PgTx):
            tx.hold_next()
        return await super()._insert_message(tx, message)

    def _touch_conversation(self, tx: Tx, conversation_id: str, now: int) -> Awaitable[Any]:
        """Held, with the new outbound message's insert before it: both go with the send's
        job insert (:meth:`_insert_job`), one round trip for ``create_outbound``'s three."""
        if not isinstance(tx, PgTx):
            return super()._touch_conversation(tx, conversation_id, now)
        return tx.hold("_touch", "UPDATE conversations SET updated_us = $2 WHERE id = $1",
                       conversation_id, now)

    async def _insert_job(self, tx: Tx, job: Job, next_us: int, *, state: str = "pending",
                          lease_us: int | None = None, owner: str | None = None,
                          attempt_us: int | None = None) -> None:
        """The shared insert, sent with what is held (a new outbound message and its
        conversation's update): a job insert reads no table."""
        if isinstance(tx, PgTx):
            tx.join_next()
        await super()._insert_job(tx, job, next_us, state=state, lease_us=lease_us,
                                  owner=owner, attempt_us=attempt_us)

    def _insert_ref(self, tx: Tx, index: int, channel_key: str, external_id: str,
                    message_id: str) -> Awaitable[Any]:
        """Held: a sent message's vendor ids and its job's delete go with the message's
        update (:meth:`_save_unreceipted`), one round trip for ``record_sent``'s three."""
        if not isinstance(tx, PgTx):
            return super()._insert_ref(tx, index, channel_key, external_id, message_id)
        return tx.hold(f"_sentref{index}", "INSERT INTO message_refs (channel_key, external_id, "
                       "message_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                       channel_key, external_id, message_id)

    def _delete_job(self, tx: Tx, job_id: str) -> Awaitable[Any]:
        """Held, as :meth:`_insert_ref`."""
        if not isinstance(tx, PgTx):
            return super()._delete_job(tx, job_id)
        return tx.hold("_donejob", "DELETE FROM jobs WHERE id = $1", job_id)

    def _mark_attempt(self, tx: Tx, job_id: str, now: int) -> Awaitable[Any]:
        """Held, as :meth:`_insert_ref` (another job's row than the one deleted)."""
        if not isinstance(tx, PgTx):
            return super()._mark_attempt(tx, job_id, now)
        return tx.hold("_nextattempt", ATTEMPT_STARTED, job_id, now, 0)

    async def _save_unreceipted(self, tx: Tx, message: Message, external_id: str) -> bool:
        """The shared update, sent with what is held (the vendor ids, the job's delete): it
        reads ``messages`` and ``kv``, which they do not write."""
        if not isinstance(tx, PgTx):
            return await super()._save_unreceipted(tx, message, external_id)
        tx.join_next()
        try:
            return await super()._save_unreceipted(tx, message, external_id)
        finally:
            tx.cancel_join()  # not a send's status: no statement, the next one is not marked

    async def _save_window(self, tx: Tx, conversation: Conversation, updated_us: int) -> None:
        """The shared update, held with the message insert before it: both go with the next
        message's claim (which reads the window through the update's ``RETURNING``), or with
        the transaction's raw payloads, or before any other statement."""
        if isinstance(tx, PgTx):
            tx.hold_next_as("_win", SHARED_WINDOW_SQL, WINDOW_RETURNING)
        await super()._save_window(tx, conversation, updated_us)

    async def _insert_contact(self, tx: Tx, contact: Contact) -> None:
        """The shared insert, held back to go with the look-up after it (see
        :meth:`_propose_same_person`)."""
        if isinstance(tx, PgTx):
            tx.hold_next()
        await super()._insert_contact(tx, contact)

    async def _propose_same_person(self, tx: Tx, contact_id: str, addresses: Sequence[Address],
                                   changes: ContactChanges | None) -> None:
        """The shared look-up, its first query sent with a held contact insert (it reads only
        ``contact_addresses``, then ``merge_proposals``)."""
        if not isinstance(tx, PgTx):
            await super()._propose_same_person(tx, contact_id, addresses, changes)
            return
        tx.join_next()
        try:
            await super()._propose_same_person(tx, contact_id, addresses, changes)
        finally:
            tx.cancel_join()  # no address to look up: the next statement is not marked

    async def _open_conversation(
        self, tx: Tx, channel: str, channel_key: str, thread_key: str,
        contact_addresses: list[Address], participants: list[Address], subject: str | None,
        now: datetime, inbound_window: timedelta | bool | None = False,
        changes: ContactChanges | None = None, spoke_at: datetime | None = None,
        row: Sequence[Any] | Unread | None = UNREAD, profile: dict[str, Any] | None = None,
        owner: str | Unread | None = UNREAD,
    ) -> tuple[Conversation, bool, Contact | None]:
        """The shared logic, but for a thread read with its claim and found without an open
        conversation, whose only contact address nobody owned then: its address, contact and
        conversation inserted by one statement (:mod:`._pg_ingest`)."""
        if (isinstance(tx, PgTx) and row is None and owner is None and contact_addresses
                and all((a.channel, a.handle) == (contact_addresses[0].channel,
                                                  contact_addresses[0].handle)
                        for a in contact_addresses)):
            made = await open_new_thread(
                tx, self._propose_same_person, channel, channel_key, thread_key,
                contact_addresses, participants, subject, now, inbound_window, changes,
                spoke_at, profile)
            if made is not None:
                return made
            owner = UNREAD  # taken meanwhile: the shared path reads who owns it now
        return await super()._open_conversation(
            tx, channel, channel_key, thread_key, contact_addresses, participants, subject, now,
            inbound_window, changes, spoke_at, row, profile, owner)

    async def _claim(self, tx: Tx, item: IngestItem, thread: tuple[str, str] | None,
                     *, with_contact: bool) -> Claimed | None:
        """The shared claim and the thread's read as one statement (one round trip): the claim
        in a ``WITH`` clause, the conversation (and its contact) joined to the row it returns,
        so a duplicate reads nothing. The read sees the statement's snapshot, which is what a
        read right after the claim would see: the claim writes neither table."""
        if thread is None:
            return await super()._claim(tx, item, thread, with_contact=with_contact)
        held_window = False
        if isinstance(tx, PgTx):
            # what the previous message held (its insert, its conversation's window update)
            # goes with this statement: the claim and the read touch no message, and the
            # window columns are read through the held update's RETURNING
            held_window = tx.holding("_win")
            tx.join_next()
        first = item.contact_addresses[0] if item.contact_addresses else None
        row = await tx.fetchone(CLAIM_THREAD_SQL[with_contact, held_window],
                                item.channel_key, item.draft.external_id, item.message_id, *thread,
                                first.channel if first else None, first.handle if first else None)
        if row is None:
            return None
        if row[0] is None:
            return Claimed(thread_read=True, owner_read=first is not None, owner_data=row[4])
        return Claimed(thread_read=True, conversation_row=row,
                       contact_data=row[3] if with_contact else None)

    async def _read(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        pool = self.pool
        try:
            async with pool.acquire() as conn:
                return await fn(PgTx(conn))
        except Exception as exc:
            raise store_error(exc, "PostgreSQL") from exc

    async def _write(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        self.pool  # noqa: B018 - a closed store says so to its caller, as before batching
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._scheduled and len(self._running) < self.batches:
            self._scheduled = True
            loop.call_soon(self._start_batches)
        return await future

    def _start_batches(self) -> None:
        """Start a batch of the queued writes on each free slot."""
        self._scheduled = False
        while self._pending and len(self._running) < self.batches:
            # a batch's writes run one after the other on its connection (each a few round
            # trips), so a long queue is shared out over the free slots rather than handed to
            # one: 64 queued writes go as 4 transactions of 16 (2.3-2.6k msg/s on the bench
            # against 1.2-1.3k as one of 64, with less CPU per message on both sides), and
            # never fewer than 16 a transaction while more wait (each commit costs the server)
            free = self.batches - len(self._running)
            size = min(_BATCH_UNITS, max(_MIN_SHARE, -(-len(self._pending) // free)))
            batch, self._pending = self._pending[:size], self._pending[size:]
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._pending and not self._scheduled:  # what queued meanwhile is the next batch
            self._start_batches()

    async def _run(self, batch: list[_Unit]) -> None:
        """Run ``batch`` in one transaction, or its units one by one if that fails; settle
        every caller's future."""
        try:
            results = await self._run_batch(batch) if len(batch) > 1 else None
            if results is None:
                results = [await self._run_alone(fn) for fn, _ in batch]
        except Exception as exc:  # noqa: BLE001 - e.g. the store closed meanwhile: the callers get it
            results = [(False, exc)] * len(batch)
        except BaseException:  # cancelled (the loop is closing): nobody waits for more
            for _, future in batch:
                if not future.done():
                    future.set_exception(OmnichannelError("store write cancelled"))
            raise
        for (_, future), (ok, value) in zip(batch, results, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _run_batch(self, batch: list[_Unit]) -> list[tuple[bool, Any]] | None:
        """Every unit of ``batch`` in one transaction: their results once it committed, or
        ``None`` if a unit failed or the transaction met a deadlock or a serialization
        failure (rolled back: the units run again one by one)."""
        try:
            async with self.pool.acquire() as conn:
                # a batch that would wait long for a row another transaction holds (two
                # processes writing the same customers) gives up at once and its writes run
                # alone, instead of holding its own locks meanwhile: a deadlock between two
                # batches otherwise costs the server's deadlock_timeout (1 s) to detect. Begun
                # by hand with the timeout in one query (asyncpg's transaction object would
                # send BEGIN alone); the pool rolls back a connection released inside one.
                await conn.execute(_BATCH_BEGIN)
                tx = PgTx(conn)
                results: list[tuple[bool, Any]] = []
                try:
                    # what a unit held goes with the next unit's first statement when that one
                    # joins it (the claim), else on its own before it; the rest before the commit
                    for fn, _ in batch:
                        results.append((True, await fn(tx)))
                    await tx.flush()
                except Exception:  # noqa: BLE001 - the unit runs again alone and reports it
                    with contextlib.suppress(Exception):
                        await conn.execute("ROLLBACK")
                    return None
                try:
                    await conn.execute("COMMIT")
                except (*_RETRYABLE, asyncpg.UniqueViolationError):
                    return None  # rolled back by the server: nothing of it committed
                return results
        except Exception as exc:  # noqa: BLE001 - the pool or the commit failed: outcome unknown
            error = store_error(exc, "PostgreSQL")
            return [(False, error)] * len(batch)

    async def _run_alone(self, fn: Callable[[Any], Awaitable[Any]]) -> tuple[bool, Any]:
        """One unit in a transaction of its own (retried on a serialization failure, a
        deadlock, or a race the ``ON CONFLICT`` clauses did not cover)."""
        pool = self.pool
        for attempt in range(5):
            try:
                async with pool.acquire() as conn, conn.transaction():
                    tx = PgTx(conn)
                    value = await fn(tx)
                    await tx.flush()
                    return True, value
            except (*_RETRYABLE, asyncpg.UniqueViolationError) as exc:
                if attempt == 4:
                    return False, store_error(exc, "PostgreSQL")
            except Exception as exc:  # noqa: BLE001 - handed to the caller's future
                return False, store_error(exc, "PostgreSQL")
        raise OmnichannelError("unreachable")
