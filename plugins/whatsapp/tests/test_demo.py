"""The demo hooks: the channel, signed simulated traffic and the loopback Cloud API, end to end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from omnichannel_whatsapp import _plugin
from starlette.applications import Starlette
from starlette.routing import Mount

from omnichannel_sdk import Hub, MediaPart

PUBLIC = "http://127.0.0.1:8700"  # the demo serves on loopback


@pytest.mark.anyio
async def test_demo_round_trip(tmp_path: Path) -> None:
    channels = _plugin.DEMO.channels(public_url=PUBLIC)
    assert set(channels) == {"demo-whatsapp"}
    config = {"omnichannel": {"store": f"sqlite:///{tmp_path / 'demo.db'}", "bus": "memory",
                              "blobs": "memory://", "public_url": PUBLIC, "http_transport": "httpx",
                              "media_allow_http_loopback": True},
              "channels": channels}
    hub = Hub.from_config(config, plugins=[_plugin])
    async with hub:
        vendor = _plugin.DEMO.vendor(adapter_name="whatsapp", hub=hub)
        assert _plugin.DEMO.vendor(adapter_name="messenger", hub=hub) is None
        app = Starlette(routes=[Mount("/demo/vendor/whatsapp", app=vendor), Mount("/", app=hub.asgi(lifespan=False))])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
            hub.http = client
            adapter = hub.adapters["demo-whatsapp"]
            adapter.context.http = client
            requests = _plugin.DEMO.simulate(channel_key="demo-whatsapp", adapter_name="whatsapp",
                                                  public_url=PUBLIC)
            assert requests
            for request in requests:
                adapter.verify(request)
                response = await client.post(request.url[len(PUBLIC):], content=request.body, headers=request.headers)
                assert response.status_code == 200
            [conversation] = await hub.store.list_conversations()
            inbound = await hub.store.list_messages(conversation.id)
            assert [m.parts[0].type for m in inbound] == ["text", "media"]
            deadline = time.monotonic() + 5
            while True:  # the photo comes through the media lookup and the authenticated download
                photo = await hub.store.get_message(inbound[1].id)
                assert photo is not None
                part = photo.parts[0]
                if (isinstance(part, MediaPart) and part.blob_key) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert isinstance(part, MediaPart) and part.blob_key and part.content_type == "image/png"
            sent = await hub.send(conversation.id, text="Sorry about that! A replacement is on its way.", wait=True)
            assert sent.status == "sent" and (sent.external_id or "").startswith("wamid.")
            deadline = time.monotonic() + 5
            while True:
                fresh = await hub.store.get_message(sent.id)
                assert fresh is not None
                if fresh.status == "read" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert fresh.status == "read" and fresh.metadata["pricing"]["category"] == "service"
            await adapter.mark_read(inbound[0], typing=True)  # type: ignore[attr-defined]
    assert _plugin.DEMO.simulate(channel_key="x", adapter_name="webchat", public_url=PUBLIC) is None
