"""The demo hooks: channels, signed sample mail, the loopback vendor."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from omnichannel_email import _plugin
from omnichannel_email._demo import demo_channels, demo_requests, demo_vendor

from omnichannel_sdk import Author, Hub
from omnichannel_sdk.testing import PUBLIC_URL


@pytest.mark.anyio
async def test_demo_traffic_end_to_end(omni_config: dict[str, Any]) -> None:
    omni_config["channels"].update(demo_channels(PUBLIC_URL))
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        gateway = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=gateway, base_url=PUBLIC_URL) as client:
            for key, adapter in hub.adapters.items():
                for request in demo_requests(key, adapter.name, PUBLIC_URL):
                    response = await client.post(request.url[len(PUBLIC_URL):],
                                                 headers=request.headers, content=request.body)
                    assert response.status_code == 200, (key, response.text)
        conversations = await hub.store.list_conversations()
        assert {c.channel_key for c in conversations} == set(hub.adapters)
        assert not await hub.store.list_dead_letters()

        # sends go to the loopback vendor stubs, served in process
        stubs = {name: demo_vendor(name, hub) for name in ("mailgun", "sendgrid", "postmark")}

        async def route(request: httpx.Request) -> httpx.Response:
            name = request.url.path.split("/demo/vendor/")[1].split("/")[0]
            transport = httpx.ASGITransport(app=stubs[name])
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as stub:
                return await stub.send(request)

        with respx.mock(assert_all_called=True) as router:
            router.route(url__startswith=f"{PUBLIC_URL}/demo/vendor/").mock(side_effect=route)
            for conversation in conversations:
                sent = await hub.send(conversation.id, text="Thanks!",
                                      author=Author(kind="human"), wait=True)
                assert sent.status in ("sent", "queued"), (conversation.channel_key, sent.error)
                assert len(sent.metadata["external_ids"]) == 2  # our Message-ID + the vendor's
            # each stub posts its signed delivery event back through the webhook pipeline
            import asyncio

            outbound = [m for c in conversations for m in await hub.store.list_messages(c.id)
                        if m.direction == "outbound"]
            for _ in range(100):
                states = [(await hub.store.get_message(m.id)).status for m in outbound]  # type: ignore[union-attr]
                if states == ["delivered"] * len(outbound):
                    break
                await asyncio.sleep(0.05)
            assert states == ["delivered"] * len(outbound), states
            assert not await hub.store.list_dead_letters()
    assert demo_requests("x", "twilio-sms", PUBLIC_URL) == []
    assert demo_vendor("twilio-sms", None) is None
