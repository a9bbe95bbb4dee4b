"""Two hubs on one PostgreSQL schema (as two gateway processes are), both group-committing:
a vendor that delivers every webhook to both, interleaved, still gets each message stored
once, one conversation and one contact per customer, nothing lost — whatever batches,
deadlocks or unique-key races the two stores' longer transactions meet on the way."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from omnichannel_sdk import Hub, WebhookRequest

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.usefixtures("store_url")]

CUSTOMERS, PER_CUSTOMER = 20, 8


@pytest.fixture(params=["postgres"])
def store_url(request: pytest.FixtureRequest, store_url: str | None) -> str | None:
    """Only the PostgreSQL side of the shared fixture: SQLite is one process's alone."""
    return store_url


async def test_two_hubs_store_each_message_once(omni_config: dict[str, Any],
                                                register_plugin: list[object]) -> None:
    first = Hub.from_config(omni_config, plugins=register_plugin)
    second = Hub.from_config(omni_config, plugins=register_plugin)
    async with first, second:
        rng = random.Random(19)
        deliveries: list[tuple[Hub, bytes, dict[str, str]]] = []
        for n in range(PER_CUSTOMER):
            for c in range(CUSTOMERS):
                body, headers = signed([{"id": f"m-{c}-{n}", "from": f"cust-{c}", "text": f"#{n}"}])
                deliveries += [(first, body, headers), (second, body, headers)]
        rng.shuffle(deliveries)

        async def deliver(hub: Hub, body: bytes, headers: dict[str, str]) -> int:
            request = WebhookRequest("POST", hub.request_url("fake"), headers, body)
            return (await hub.handle_webhook("fake", request)).status

        answers = await asyncio.gather(*[deliver(h, b, hd) for h, b, hd in deliveries])
        assert set(answers) == {200}
        conversations = await first.store.list_conversations()
        assert len(conversations) == CUSTOMERS
        stored = [m.external_id for c in conversations for m in await first.store.list_messages(c.id)]
        assert sorted(stored) == sorted(f"m-{c}-{n}" for c in range(CUSTOMERS)
                                        for n in range(PER_CUSTOMER))
        assert len({c.contact_id for c in conversations}) == CUSTOMERS
        assert not await first.store.list_dead_letters()
