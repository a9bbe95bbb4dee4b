"""The demo hooks: channels, signed simulated traffic and the loopback Send API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from omnichannel_messenger import _plugin
from starlette.applications import Starlette
from starlette.routing import Mount

from omnichannel_sdk import Hub

PUBLIC = "http://demo.test"


@pytest.mark.anyio
async def test_demo_round_trip(tmp_path: Path) -> None:
    channels = _plugin.DEMO.channels(public_url=PUBLIC)
    assert set(channels) == {"demo-messenger", "demo-instagram"}
    config = {"omnichannel": {"store": f"sqlite:///{tmp_path / 'demo.db'}", "bus": "memory",
                              "blobs": "memory://", "public_url": PUBLIC, "http_transport": "httpx"},
              "channels": channels}
    hub = Hub.from_config(config, plugins=[_plugin])
    async with hub:
        routes = [Mount(f"/demo/vendor/{name}", app=_plugin.DEMO.vendor(adapter_name=name, hub=hub))
                  for name in ("messenger", "instagram")]
        assert _plugin.DEMO.vendor(adapter_name="twilio-sms", hub=hub) is None
        app = Starlette(routes=[*routes, Mount("/", app=hub.asgi(lifespan=False))])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
            hub.http = client
            for adapter in hub.adapters.values():
                adapter.context.http = client
            for key, adapter in hub.adapters.items():
                requests = _plugin.DEMO.simulate(channel_key=key, adapter_name=adapter.name,
                                                      public_url=PUBLIC)
                assert requests
                for request in requests:
                    adapter.verify(request)
                    response = await client.post(request.url[len(PUBLIC):], content=request.body,
                                                 headers=request.headers)
                    assert response.status_code == 200
            conversations = await hub.store.list_conversations()
            assert len(conversations) == 2
            sent = [await hub.send(c.id, text="Thanks, an agent is on it.", wait=True) for c in conversations]
            assert [m.status for m in sent] == ["sent", "sent"]
            deadline = time.monotonic() + 5
            while True:
                statuses = [(await hub.store.get_message(m.id)).status for m in sent]  # type: ignore[union-attr]
                if statuses == ["read", "read"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert statuses == ["read", "read"]
            await hub.adapters["demo-messenger"].sender_action("7000000000000001", "typing_on")  # type: ignore[attr-defined]
    assert _plugin.DEMO.simulate(channel_key="x", adapter_name="webchat", public_url=PUBLIC) is None
