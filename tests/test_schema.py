"""Schema versions: a 0.1.0 database is upgraded keeping its rows, a newer one is refused."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from omnichannel_sdk import ConfigurationError
from omnichannel_sdk._store import SqlStore
from omnichannel_sdk._store._postgres import PostgresStore
from omnichannel_sdk._store._schema import MIGRATIONS, SCHEMA_VERSION
from omnichannel_sdk._store._sqlite import SQLiteStore

from .conftest import PG_DSN, need_service

pytestmark = pytest.mark.anyio

# a conversation row as 0.1.0 wrote it, with no schema_version table
LEGACY_ROW = ("c1", "sms", "t1", "k1", "open", 1, "{}")


def _legacy_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement.replace("{blob}", "BLOB"))
    conn.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)", LEGACY_ROW)
    conn.commit()
    conn.close()


async def test_sqlite_new_database_records_the_current_version(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "new.db"))
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()


async def test_sqlite_upgrades_a_database_of_0_1_0_keeping_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _legacy_sqlite(path)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT id FROM conversations").fetchall() == [("c1",)]
    conn.close()
    # opening again applies nothing and changes nothing
    again = SQLiteStore(str(path))
    await again.open()
    assert await again.schema_version() == SCHEMA_VERSION
    await again.close()


async def test_sqlite_refuses_a_newer_database(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store = SQLiteStore(str(path))
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="newer than this release"):
        await SQLiteStore(str(path)).open()


@pytest.mark.postgres
async def test_postgres_upgrades_0_1_0_and_refuses_newer() -> None:
    need_service("PostgreSQL", 5432)
    import asyncpg

    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        for statement in MIGRATIONS[0]:
            await conn.execute(statement.replace("{blob}", "BYTEA"))
        await conn.execute("INSERT INTO conversations VALUES ($1, $2, $3, $4, $5, $6, $7)", *LEGACY_ROW)
        store = PostgresStore(f"{PG_DSN}?schema={schema}")
        await store.open()
        try:
            assert await store.schema_version() == SCHEMA_VERSION
        finally:
            await store.close()
        assert await conn.fetchval("SELECT count(*) FROM conversations") == 1
        await conn.execute("UPDATE schema_version SET version = $1", SCHEMA_VERSION + 1)
        with pytest.raises(ConfigurationError, match="newer than this release"):
            await PostgresStore(f"{PG_DSN}?schema={schema}").open()
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_sqlite_upgrades_a_version_1_database_to_the_feed_tables(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _legacy_sqlite(path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION >= 2
        assert await store._read(lambda tx: tx.fetchone("SELECT last FROM feed_sequence")) == (0,)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT id FROM conversations").fetchall() == [("c1",)]
    conn.close()


def _version_2_sqlite(path: Path, proposal: str) -> None:
    """A database as the release before reversible merges wrote it: steps 1 and 2, with an open
    merge proposal kept in kv."""
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:2]:
        for statement in step:
            conn.execute(statement.replace("{blob}", "BLOB"))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (2)")
    conn.execute("INSERT INTO kv (key, value, expires_us) VALUES (?, ?, NULL)",
                 ("merge-proposal:ct_b~ct_a", proposal))
    conn.commit()
    conn.close()


OLD_PROPOSAL = ('{"id": "ct_b~ct_a", "contact_id": "ct_b", "existing_contact_id": "ct_a", '
                '"address": {"channel": "email", "handle": "ann@example.com", "display_name": null}, '
                '"message_id": "msg_1", "created_at": "2026-11-30T10:00:00Z"}')


async def test_sqlite_upgrade_moves_merge_proposals_into_their_table(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_2_sqlite(path, OLD_PROPOSAL)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION >= 3
        [proposal] = await store.list_merge_proposals(None)
        assert (proposal.id, proposal.status, proposal.reason, proposal.verified) == (
            "ct_b~ct_a", "open", "claimed", False)
        assert await store.kv_scan("merge-proposal:") == []
        assert await store.list_merges("ct_a") == []
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_upgrade_moves_merge_proposals_into_their_table() -> None:
    need_service("PostgreSQL", 5432)
    import asyncpg

    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        for step in MIGRATIONS[:2]:
            for statement in step:
                await conn.execute(statement.replace("{blob}", "BYTEA"))
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO schema_version VALUES (2)")
        await conn.execute("INSERT INTO kv (key, value, expires_us) VALUES ($1, $2, NULL)",
                           "merge-proposal:ct_b~ct_a", OLD_PROPOSAL)
        store = PostgresStore(f"{PG_DSN}?schema={schema}")
        await store.open()
        try:
            assert await store.schema_version() == SCHEMA_VERSION
            [proposal] = await store.list_merge_proposals(None)
            assert proposal.id == "ct_b~ct_a" and proposal.status == "open"
            assert await store.kv_scan("merge-proposal:") == []
        finally:
            await store.close()
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


# the step that adds the reply window's columns (whatever number it gets)
WINDOW_STEP = next(i for i, step in enumerate(MIGRATIONS) if any("last_inbound_us" in s for s in step))


def _unwindowed_conversation() -> tuple[str, str, str, str, str, int, str]:
    from omnichannel_sdk import Address, Conversation

    then = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    conversation = Conversation(
        id="c2", channel="sms", channel_key="sms", contact_id="k2",
        participants=[Address(channel="sms", handle="+14155550100"),
                      Address(channel="sms", handle="+14155550199")],
        thread_key="+14155550100|+14155550199", created_at=then, last_inbound_at=then,
        window_expires_at=then + timedelta(hours=24))
    return ("c2", "sms", conversation.thread_key, "k2", "open", 1, conversation.model_dump_json())


async def _window_survives_the_upgrade(store: SqlStore) -> None:
    """A conversation written before the window columns keeps its window (from its JSON), and
    the next inbound message moves it."""
    from omnichannel_sdk import Address, InboundMessage
    from omnichannel_sdk._store import IngestItem

    then = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    assert await store.schema_version() == SCHEMA_VERSION > WINDOW_STEP
    before = await store.get_conversation("c2")
    assert before is not None
    assert (before.last_inbound_at, before.window_expires_at) == (then, then + timedelta(hours=24))
    sender, ours = Address(channel="sms", handle="+14155550100"), Address(channel="sms", handle="+14155550199")
    now = datetime.now(UTC)
    draft = InboundMessage(external_id="SMX", sender=sender, recipients=[ours], created_at=now)
    [outcome] = await store.ingest([IngestItem(
        message_id="msg_x", channel="sms", channel_key="sms", adapter="t", draft=draft,
        thread_key=before.thread_key, contact_addresses=[sender], received_at=now,
        window=timedelta(hours=24))], None)
    assert outcome.conversation is not None and outcome.conversation.id == "c2"
    after = await store.get_conversation("c2")
    assert after == outcome.conversation
    assert after is not None
    assert (after.last_inbound_at, after.window_expires_at) == (now, now + timedelta(hours=24))


async def test_sqlite_upgrades_a_database_before_the_window_columns(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    for statement in [s for step in MIGRATIONS[:WINDOW_STEP] for s in step]:
        conn.execute(statement.replace("{blob}", "BLOB"))
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (WINDOW_STEP,))
    conn.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)", _unwindowed_conversation())
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await _window_survives_the_upgrade(store)
    finally:
        await store.close()
    again = SQLiteStore(str(path))  # and the moved window is what the next process reads
    await again.open()
    try:
        moved = await again.get_conversation("c2")
        assert moved is not None and moved.last_inbound_at is not None
        assert moved.last_inbound_at > datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)
    finally:
        await again.close()


@pytest.mark.postgres
async def test_postgres_upgrades_a_database_before_the_window_columns() -> None:
    need_service("PostgreSQL", 5432)
    import asyncpg

    schema = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        for statement in [s for step in MIGRATIONS[:WINDOW_STEP] for s in step]:
            await conn.execute(statement.replace("{blob}", "BYTEA"))
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        await conn.execute("INSERT INTO schema_version VALUES ($1)", WINDOW_STEP)
        await conn.execute("INSERT INTO conversations VALUES ($1, $2, $3, $4, $5, $6, $7)",
                           *_unwindowed_conversation())
        store = PostgresStore(f"{PG_DSN}?schema={schema}")
        await store.open()
        try:
            await _window_survives_the_upgrade(store)
        finally:
            await store.close()
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.mark.postgres
async def test_postgres_upgrade_lock_is_the_schemas_own() -> None:
    """A store's schema upgrade waits for another process upgrading the same schema, not for
    one upgrading another schema of the database."""
    need_service("PostgreSQL", 5432)
    import asyncio

    import asyncpg

    busy, free = ("t_" + uuid.uuid4().hex[:12] for _ in range(2))
    holder = await asyncpg.connect(PG_DSN)
    try:
        # another process upgrading ``busy``: it holds that schema's upgrade lock
        await holder.execute("SELECT pg_advisory_lock(4242001, hashtext($1))", busy)
        other = PostgresStore(f"{PG_DSN}?schema={free}")
        await asyncio.wait_for(other.open(), 10)  # not held up by the busy schema
        try:
            assert await other.schema_version() == SCHEMA_VERSION
        finally:
            await other.close()
        waiting = PostgresStore(f"{PG_DSN}?schema={busy}")
        opening = asyncio.create_task(waiting.open())
        await asyncio.sleep(0.5)
        assert not opening.done()  # waits for the lock of its own schema
        await holder.execute("SELECT pg_advisory_unlock(4242001, hashtext($1))", busy)
        await asyncio.wait_for(opening, 10)
        try:
            assert await waiting.schema_version() == SCHEMA_VERSION
        finally:
            await waiting.close()
    finally:
        for schema in (busy, free):
            await holder.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await holder.close()
