"""SQLite's inserts that return the row they wrote (``ON CONFLICT DO NOTHING RETURNING col``)
run without ``RETURNING`` (``_insert_plan``): the same answer, from ``rowcount`` and the
argument, for a row written and for a conflict."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from omnichannel_sdk._store._ingest import CLAIM_SQL
from omnichannel_sdk._store._sqlite import SQLiteStore, _insert_plan, _run_now, _sql, _SqliteTx

ADDRESS_SQL = ("INSERT INTO contact_addresses (channel, handle, contact_id) VALUES ($1, $2, $3) "
               "ON CONFLICT DO NOTHING RETURNING contact_id")
CONVERSATION_SQL = (
    "INSERT INTO conversations (id, channel_key, thread_key, contact_id, status, "
    "updated_us, data, last_inbound_us, window_expires_us) "
    "VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8) "
    "ON CONFLICT (channel_key, thread_key) WHERE status = 'open' DO NOTHING RETURNING id")
PROPOSAL_SQL = ("INSERT INTO merge_proposals (id, status, data) VALUES ($1, 'open', $2) "
                "ON CONFLICT DO NOTHING RETURNING id")

CASES: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = [
    # (statement, first arguments, arguments that conflict with the first)
    (CLAIM_SQL, ("sms", "SM1", "msg_1"), ("sms", "SM1", "msg_2")),
    (ADDRESS_SQL, ("sms", "+1555", "ct_1"), ("sms", "+1555", "ct_2")),
    (CONVERSATION_SQL, ("conv_1", "sms", "t1", "ct_1", 1, "{}", None, None),
     ("conv_2", "sms", "t1", "ct_2", 2, "{}", None, None)),
    (PROPOSAL_SQL, ("mp_1", "{}"), ("mp_1", "{}")),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("sql", "first", "conflicting"), CASES)
async def test_planned_insert_answers_as_returning(tmp_path: Any, sql: str, first: tuple[Any, ...],
                                                   conflicting: tuple[Any, ...]) -> None:
    answers = []
    for planned in (True, False):
        store = SQLiteStore(str(tmp_path / f"{planned}.db"))
        await store.open()
        try:
            assert _insert_plan(sql, store.conn) is not None  # the shortcut is taken
            tx = _SqliteTx(store.conn)
            if planned:
                rows = [_run_now(tx.fetchone(sql, *args)) for args in (first, conflicting)]
            else:  # what RETURNING gives
                rows = [tx.cursor.execute(_sql(sql), args).fetchone() for args in (first, conflicting)]
            tx.close()
            table = sql.split()[2]
            stored = store.conn.execute(f"SELECT * FROM {table}").fetchall()
            answers.append(([tuple(r) if r is not None else None for r in rows], stored))
        finally:
            await store.close()
    assert answers[0] == answers[1]
    assert answers[0][0][0] is not None and answers[0][0][1] is None


def test_no_plan_for_other_columns_or_statements() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a TEXT PRIMARY KEY, n INTEGER, b)")
    # an integer column would give back the converted value, not the argument
    assert _insert_plan("INSERT INTO t (a, n) VALUES ($1, $2) ON CONFLICT DO NOTHING "
                        "RETURNING n", conn) is None
    # a returned literal, an update on conflict, more than one returned column
    assert _insert_plan("INSERT INTO t (a, b) VALUES ($1, 'x') ON CONFLICT DO NOTHING "
                        "RETURNING b", conn) is None
    assert _insert_plan("INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO UPDATE SET n = 1 "
                        "RETURNING a", conn) is None
    assert _insert_plan("INSERT INTO t (a, n) VALUES ($1, $2) ON CONFLICT DO NOTHING "
                        "RETURNING a, n", conn) is None
    assert _insert_plan("INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING a",
                        conn) == ("INSERT INTO t (a) VALUES (?1) ON CONFLICT DO NOTHING", 0)
