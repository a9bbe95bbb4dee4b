"""The demo hooks: the demo bot, simulated updates (text and photo) and the loopback Bot API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from omnichannel_telegram import _plugin
from starlette.applications import Starlette
from starlette.routing import Mount

from omnichannel_sdk import Hub, MediaPart

PUBLIC = "http://127.0.0.1:8700"  # the demo serves on loopback


@pytest.mark.anyio
async def test_demo_round_trip(tmp_path: Path) -> None:
    channels = _plugin.DEMO.channels(public_url=PUBLIC)
    assert list(channels) == ["demo-telegram"]
    config = {"omnichannel": {"store": f"sqlite:///{tmp_path / 'demo.db'}", "bus": "memory",
                              "blobs": "memory://", "public_url": PUBLIC, "http_transport": "httpx",
                              "media_allow_http_loopback": True},
              "channels": channels}
    hub = Hub.from_config(config, plugins=[_plugin])
    async with hub:
        vendor = _plugin.DEMO.vendor(adapter_name="telegram", hub=hub)
        assert _plugin.DEMO.vendor(adapter_name="messenger", hub=hub) is None
        app = Starlette(routes=[Mount("/demo/vendor/telegram", app=vendor),
                                Mount("/", app=hub.asgi(lifespan=False))])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
            hub.http = client
            for adapter in hub.adapters.values():
                adapter.context.http = client
            requests = _plugin.DEMO.simulate(channel_key="demo-telegram", adapter_name="telegram",
                                                  public_url=PUBLIC)
            assert requests and len(requests) == 2
            adapter = hub.adapter("demo-telegram")
            for request in requests:
                adapter.verify(request)
                response = await client.post(request.url[len(PUBLIC):], content=request.body,
                                             headers=request.headers)
                assert response.status_code == 200
            [conversation] = await hub.store.list_conversations()
            deadline = time.monotonic() + 5
            while True:  # the photo is fetched through getFile and the file URL of the stub
                photo = (await hub.store.list_messages(conversation.id))[1].parts[0]
                if (isinstance(photo, MediaPart) and photo.blob_key) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert isinstance(photo, MediaPart) and photo.blob_key
            reply = await hub.send(conversation.id, text="Thanks, **an agent** is on it.", wait=True)
            assert reply.status == "sent" and reply.external_id
            await adapter.chat_action(conversation.participants[0])  # type: ignore[attr-defined]
    assert _plugin.DEMO.simulate(channel_key="x", adapter_name="webchat", public_url=PUBLIC) is None
