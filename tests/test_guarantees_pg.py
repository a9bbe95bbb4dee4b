"""PostgreSQL: a gateway whose database connection is cut mid-request answers 503 +
Retry-After (never 500) and stores the vendor's retry. An embedded SQLite file has no
connection to lose, so this runs on PostgreSQL only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from omnichannel_sdk import Hub
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import PG_DSN, signed
from .test_guarantees import _messages

pytestmark = pytest.mark.anyio


@pytest.mark.postgres
async def test_connection_lost_mid_request_is_503_never_500(
        omni_config: dict[str, Any], register_plugin: list[object], pg_schema: str) -> None:
    """PostgreSQL only: an embedded SQLite file has no connection to lose."""
    schema = pg_schema
    # our own application_name: on a shared server only this test's backend is ever cut
    omni_config["omnichannel"]["store"] = f"{PG_DSN}?schema={schema}&application_name=lost-{schema}"
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await _lose_connection(hub, client, schema)


async def _lose_connection(hub: Hub, webhook_client: httpx.AsyncClient, schema: str) -> None:
    import asyncpg

    body, headers = signed([{"id": "lost", "from": "a", "text": "x"}])
    locker = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    try:
        async with locker.transaction():
            # the request's transaction waits on this lock; the server then cuts its connection
            await locker.execute("LOCK TABLE message_refs IN ACCESS EXCLUSIVE MODE")
            pending = asyncio.ensure_future(
                webhook_client.post("/webhooks/fake", content=body, headers=headers))
            waiting: list[Any] = []
            for _ in range(100):
                waiting = await locker.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = $1", f"lost-{schema}")
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert waiting, "the request never reached the store"
            await locker.execute("SELECT pg_terminate_backend($1)", waiting[0]["pid"])
            answer = await asyncio.wait_for(pending, 10)
    finally:
        await locker.close()
    assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
    assert await hub.store.list_dead_letters() == []
    assert (await webhook_client.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
    assert await _messages(hub) == ["lost"]
