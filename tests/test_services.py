"""The typed port adapters reach the hub through (``context.services``)."""

from __future__ import annotations

import pytest

from omnichannel_sdk import (
    AdapterServices,
    Address,
    ConfigurationError,
    DetachedServices,
    Hub,
    InboundMessage,
    StoreReader,
    TextPart,
)
from omnichannel_sdk.testing import FakeAdapter

pytestmark = pytest.mark.anyio


async def test_adapters_in_a_hub_get_running_services(hub: Hub) -> None:
    services = hub.adapter("fake").context.services
    assert isinstance(services, AdapterServices)
    assert isinstance(services.store, StoreReader)
    assert services.running
    sender = Address(channel="fake", handle="u1")
    stored = await services.ingest([InboundMessage(external_id="e1", sender=sender,
                                                   parts=[TextPart(text="hi")])])
    assert len(stored) == 1 and stored[0].channel_key == "fake"
    assert (await services.store.get_message(stored[0].id)) == stored[0]
    # scoped to the adapter's channel key: a second ingest of the same id is a duplicate
    assert await services.ingest([InboundMessage(external_id="e1", sender=sender,
                                                 parts=[TextPart(text="hi")])]) == []
    conversation = await services.start_conversation("u2")
    assert conversation.channel_key == "fake"


async def test_detached_services_refuse_clearly() -> None:
    services = DetachedServices("k")
    assert not services.running
    with pytest.raises(ConfigurationError, match="ingest needs a running hub"):
        await services.ingest([])
    with pytest.raises(ConfigurationError, match="needs a running hub"):
        await services.store.get_message("m")

    async def work() -> None:
        return None

    with pytest.raises(ConfigurationError, match="spawn needs a running hub"):
        services.spawn(work())


async def test_an_adapter_outside_a_hub_is_detached() -> None:
    import httpx

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    async with httpx.AsyncClient() as http:
        context = AdapterContext(key="k", public_url="http://x", http=http, kv=MemoryKV())
        adapter = FakeAdapter(FakeAdapter.Settings(secret="s"), context)
        assert not adapter.context.services.running
