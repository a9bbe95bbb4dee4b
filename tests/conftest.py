"""Shared fixtures of the core tests."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from omnichannel_sdk.testing import FakeAdapter, LocalCA, require_service

PG_DSN = os.environ.get("OMNICHANNEL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("OMNICHANNEL_TEST_NATS", "nats://127.0.0.1:4222")
FAKE_SECRET = "fake-webhook-secret"


def need_service(name: str, port: int) -> None:
    """Skip without the service on a laptop; fail under CI=true."""
    require_service(name, port)


async def drop_pg_schema(schema: str) -> None:
    """Drop a test's PostgreSQL schema (``pg_schema``) and everything in it."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def local_ca(tmp_path: Path) -> LocalCA:
    """A certificate authority of this test's own (the transport tests' HTTPS servers)."""
    pytest.importorskip("cryptography")
    return LocalCA(tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_schema() -> str:
    """A fresh PostgreSQL schema name for one test."""
    need_service("PostgreSQL", 5432)
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
async def pg(pg_schema: str) -> AsyncIterator[Any]:
    """An open :class:`PostgresStore` on a fresh schema, dropped after."""
    from omnichannel_sdk._store._postgres import PostgresStore

    opened = PostgresStore(f"{PG_DSN}?schema={pg_schema}")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        await drop_pg_schema(pg_schema)


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[Any]:
    """An open :class:`SQLiteStore` in the test's own folder (to compare with ``pg``)."""
    from omnichannel_sdk._store._sqlite import SQLiteStore

    opened = SQLiteStore(str(tmp_path / "store.db"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Run a hub test on SQLite (the kit's file: ``None``) and on PostgreSQL (a schema of its
    own, dropped after). A module opts in with ``pytest.mark.usefixtures("store_url")``."""
    if request.param == "sqlite":
        yield None
        return
    need_service("PostgreSQL", 5432)
    schema = "t_" + uuid.uuid4().hex[:12]
    yield f"{PG_DSN}?schema={schema}"
    asyncio.run(drop_pg_schema(schema))


@pytest.fixture
def omni_config(omni_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The kit config with a ``fake`` channel at key ``fake``, on the store ``store_url`` picks
    when the test uses it."""
    omni_config["channels"]["fake"] = {"adapter": "fake", "secret": FAKE_SECRET}
    if "store_url" in request.fixturenames:
        url = request.getfixturevalue("store_url")
        if url is not None:
            omni_config["omnichannel"]["store"] = url
    return omni_config


class _FakePlugin:
    from omnichannel_sdk import hookimpl

    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(FakeAdapter)


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_FakePlugin())
    return register_plugin


def signed(events: list[dict[str, Any]] | bytes, secret: str = FAKE_SECRET) -> tuple[bytes, dict[str, str]]:
    """A fake-vendor body and its headers."""
    import orjson

    from omnichannel_sdk.testing import fake_signature

    body = events if isinstance(events, bytes) else orjson.dumps({"events": events})
    return body, {"content-type": "application/json", "x-fake-signature": fake_signature(secret, body)}
