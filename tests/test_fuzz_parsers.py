"""Every non-email parse path under hostile input (hypothesis, fixed seed): each input ends in
a message, a receipt, nothing, or a typed refusal that the hub dead-letters — never an untyped
exception; and through a real hub each verified input ends in a stored message, an applied
receipt or a dead letter with its raw request, never a 500.

The long run (>= 100,000 per path) is ``scripts/fuzz_parsers.py``; its last result is in
docs/security.md.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnichannel_sdk import Hub, InboundMessage, OmnichannelError, RetryLaterError
from omnichannel_sdk.testing import PUBLIC_URL

from .fuzz_targets import Target, outcome, targets

TARGETS = {t.name: t for t in targets()}
# hypothesis picks the mutator's seed (one draw per example keeps thousands of examples cheap;
# a failure prints the seed, and fuzz_targets reproduces the input from it)
SEEDS = st.integers(min_value=0, max_value=2**63)
PER_EXAMPLE = 4  # inputs per hypothesis example: 500 examples = 2,000 inputs per path
PARSE = settings(max_examples=500, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
HUB = settings(max_examples=150, derandomize=True, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# the same through a hub on PostgreSQL (where NUL and other values the store refuses differ
# from SQLite's), fewer examples: each is a few round trips to the database
HUB_PG = settings(HUB, max_examples=40)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parse_path_never_raises_untyped(name: str) -> None:
    target = TARGETS[name]
    adapter = target.make()
    seen: set[str] = set()

    @PARSE
    @given(SEEDS)
    def check(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(PER_EXAMPLE):
            result = outcome(adapter, target.request(rng))
            assert not result.startswith("untyped"), result
            seen.add(result)

    check()
    assert "dead-letter" in seen and seen & {"message", "receipt"}  # both sides were reached


async def _hub_on(store: str, name: str) -> AsyncIterator[tuple[Hub, Target]]:
    target = TARGETS[name]
    vendors = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(404)))
    hub = Hub.from_config({
        "omnichannel": {"store": store, "public_url": PUBLIC_URL,
                        "blobs": "memory://", "delivery": {"poll_interval": 3600}},
        "channels": {"fuzz": {"adapter": target.adapter.name, **target.settings}}}, http=vendors)
    async with hub:
        # follow-up jobs stay queued: one finishing while the next is added would hide it
        # from the count the test compares
        hub.delivery.poke = lambda: None  # type: ignore[method-assign]
        yield hub, target
    await vendors.aclose()


@pytest.fixture(params=sorted(TARGETS))
async def fuzz_hub(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[tuple[Hub, Target]]:
    async for pair in _hub_on(f"sqlite:///{tmp_path / 'fuzz.db'}", request.param):
        yield pair


@pytest.fixture(params=sorted(TARGETS))
async def fuzz_pg_hub(request: pytest.FixtureRequest, pg_schema: str) -> AsyncIterator[tuple[Hub, Target]]:
    import asyncpg

    from .conftest import PG_DSN

    try:
        async for pair in _hub_on(f"{PG_DSN}?schema={pg_schema}", request.param):
            yield pair
    finally:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{pg_schema}" CASCADE')
        finally:
            await conn.close()


@pytest.mark.anyio
@HUB
@given(seed=SEEDS)
async def test_every_verified_input_ends_stored_or_dead_lettered(
        fuzz_hub: tuple[Hub, Target], seed: int) -> None:
    await _ends_stored_or_dead_lettered(*fuzz_hub, seed)


@pytest.mark.anyio
@pytest.mark.postgres
@HUB_PG
@given(seed=SEEDS)
async def test_every_verified_input_ends_stored_or_dead_lettered_on_postgres(
        fuzz_pg_hub: tuple[Hub, Target], seed: int) -> None:
    await _ends_stored_or_dead_lettered(*fuzz_pg_hub, seed)


async def _ends_stored_or_dead_lettered(hub: Hub, target: Target, seed: int) -> None:
    request = target.request(random.Random(seed))
    try:
        parsed = target.make().parse(request)
    except OmnichannelError:
        parsed = None
    before = len(await hub.store.list_dead_letters())
    jobs_before = await hub.store.pending_jobs()
    try:
        response = await hub.handle_webhook("fuzz", request, trusted=True)
    except RetryLaterError:
        return  # answered 503: the vendor delivers it again, nothing was acknowledged
    assert response.status < 500
    letters = len(await hub.store.list_dead_letters())
    # a durable follow-up job (a lookup the adapter must make in a hub before storing: the
    # parse outside a hub cannot) also keeps the input
    queued = await hub.store.pending_jobs() > jobs_before
    if parsed is None or parsed.failures:
        assert letters > before or queued, "a refused input left no dead letter"
        return
    for item in parsed.items:
        if isinstance(item, InboundMessage):  # stored (now or before: a duplicate) or kept
            if letters > before or queued:
                continue  # kept as a dead letter (an id PostgreSQL cannot even look up, with NUL)
            found = await hub.store.find_message_by_external("fuzz", item.external_id)
            assert found is not None, item.external_id
