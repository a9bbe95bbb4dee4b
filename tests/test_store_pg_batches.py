"""PostgreSQL's group commit and its fewer round trips: a held insert is seen by every later
statement of its transaction, fails its own write only, and writes queued together commit
together without one failing write undoing the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from omnichannel_sdk._store._pg_tx import PgTx
from omnichannel_sdk._store._postgres import PostgresStore

from .conftest import PG_DSN, drop_pg_schema

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
def store(pg: PostgresStore) -> PostgresStore:
    """The open store of a fresh schema (conftest's ``pg``)."""
    return pg


INSERT = "INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, $3)"


async def test_a_held_insert_joins_the_next_marked_statement(store: PostgresStore) -> None:
    async def unit(tx: Any) -> tuple[int, int]:
        assert isinstance(tx, PgTx)
        tx.hold_next()
        held = await tx.execute(INSERT, "a", "1", None)
        tx.join_next()
        updated = await tx.execute("UPDATE kv SET value = $2 WHERE key = $1", "b", "x")
        return held, updated

    await store._write(lambda tx: tx.execute(INSERT, "b", "2", None))
    assert await store._write(unit) == (1, 1)
    rows = await store._read(lambda tx: tx.fetchall("SELECT key, value FROM kv ORDER BY key"))
    assert [tuple(r) for r in rows] == [("a", "1"), ("b", "x")]


async def test_a_held_insert_is_seen_by_the_next_read(store: PostgresStore) -> None:
    async def unit(tx: Any) -> Any:
        tx.hold_next()
        await tx.execute(INSERT, "seen", "1", None)
        row = await tx.fetchone("SELECT value FROM kv WHERE key = $1", "seen")
        return row[0] if row else None

    assert await store._write(unit) == "1"


async def test_only_plain_single_row_inserts_are_held(store: PostgresStore) -> None:
    await store._write(lambda tx: tx.execute(INSERT, "dup", "1", None))

    async def unit(tx: Any) -> int:
        tx.hold_next()  # ON CONFLICT: its row count matters, so it runs at once
        return int(await tx.execute(
            "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING", "dup", "2"))

    assert await store._write(unit) == 0


async def test_a_failing_held_insert_fails_its_write_only(store: PostgresStore) -> None:
    await store._write(lambda tx: tx.execute(INSERT, "taken", "1", None))

    async def bad(tx: Any) -> None:
        tx.hold_next()
        await tx.execute(INSERT, "taken", "2", None)  # a unique violation, sent at the unit's end

    async def good(tx: Any, key: str) -> None:
        await tx.execute(INSERT, key, "ok", None)

    results = await asyncio.gather(store._write(bad), store._write(lambda tx: good(tx, "g1")),
                                   store._write(lambda tx: good(tx, "g2")), return_exceptions=True)
    assert isinstance(results[0], Exception)
    assert results[1:] == [None, None]
    rows = await store._read(lambda tx: tx.fetchall("SELECT key, value FROM kv ORDER BY key"))
    assert [tuple(r) for r in rows] == [("g1", "ok"), ("g2", "ok"), ("taken", "1")]


async def test_writes_of_one_turn_share_a_transaction(store: PostgresStore) -> None:
    async def unit(tx: Any, key: str) -> int:
        await tx.execute(INSERT, key, "v", None)
        row = await tx.fetchone("SELECT txid_current()")
        return int(row[0])

    txids = await asyncio.gather(*[store._write(lambda tx, k=f"k{i}": unit(tx, k))
                                   for i in range(20)])
    assert len(set(txids)) < 20  # batched (at most `store.batches` batches were free)
    count = await store._read(lambda tx: tx.fetchone("SELECT count(*) FROM kv"))
    assert count is not None and count[0] == 20


async def test_a_batch_begins_with_its_lock_timeout_in_one_query(store: PostgresStore) -> None:
    import asyncpg

    sent: list[str] = []
    original = asyncpg.Connection.execute

    async def counted(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return await original(self, query, *args, **kwargs)

    async def unit(tx: Any, key: str) -> str:
        await tx.execute(INSERT, key, "v", None)
        row = await tx.fetchone("SELECT current_setting('lock_timeout')")
        return str(row[0])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncpg.Connection, "execute", counted)
        timeouts = await asyncio.gather(*[store._write(lambda tx, k=f"t{i}": unit(tx, k))
                                          for i in range(20)])
    assert set(timeouts) == {"50ms"}  # every unit ran in a batch, under the batch's timeout
    begins = [q for q in sent if q.startswith("BEGIN")]
    assert begins and all("lock_timeout" in q for q in begins)  # BEGIN and SET LOCAL together
    assert not [q for q in sent if q.startswith("SET LOCAL")]
    assert len([q for q in sent if q == "COMMIT"]) == len(begins)
    count = await store._read(lambda tx: tx.fetchone("SELECT count(*) FROM kv"))
    assert count is not None and count[0] == 20


async def test_a_held_insert_goes_with_the_next_units_marked_read(store: PostgresStore) -> None:
    async def holding(tx: Any, key: str) -> None:
        tx.hold_next()
        await tx.execute(INSERT, key, "held", None)

    async def joining(tx: Any) -> Any:
        tx.join_next()  # reads nothing the held insert writes: one statement with it
        row = await tx.fetchone("WITH one AS (SELECT $1::text AS v) SELECT v FROM one", "x")
        return row[0] if row else None

    async def reading(tx: Any) -> Any:  # not marked: the held insert goes first, and is seen
        row = await tx.fetchone("SELECT value FROM kv WHERE key = $1", "h2")
        return row[0] if row else None

    results = await asyncio.gather(store._write(lambda tx: holding(tx, "h1")), store._write(joining),
                                   store._write(lambda tx: holding(tx, "h2")), store._write(reading),
                                   store._write(lambda tx: holding(tx, "h3")))
    assert results == [None, "x", None, "held", None]
    rows = await store._read(lambda tx: tx.fetchall("SELECT key FROM kv ORDER BY key"))
    assert [r[0] for r in rows] == ["h1", "h2", "h3"]  # the last one went before the commit


async def test_close_finishes_queued_writes(pg_schema: str) -> None:
    opened = PostgresStore(f"{PG_DSN}?schema={pg_schema}")
    await opened.open()
    writes = [asyncio.ensure_future(opened._write(lambda tx, k=f"c{i}": tx.execute(INSERT, k, "v", None)))
              for i in range(10)]
    await asyncio.sleep(0)
    await opened.close()
    assert all(w.done() and w.exception() is None for w in writes)
    reopened = PostgresStore(f"{PG_DSN}?schema={pg_schema}")
    await reopened.open()
    try:
        count = await reopened._read(lambda tx: tx.fetchone("SELECT count(*) FROM kv"))
        assert count is not None and count[0] == 10
    finally:
        await reopened.close()
        await drop_pg_schema(pg_schema)


async def test_a_write_to_a_closed_store_says_so(pg_schema: str) -> None:
    from omnichannel_sdk import OmnichannelError

    closed = PostgresStore(f"{PG_DSN}?schema={pg_schema}")
    with pytest.raises(OmnichannelError, match="not open"):
        await closed._write(lambda tx: tx.execute("SELECT 1"))
