"""The demo's hub configuration and its signed sample traffic."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from .._demos import demo_channels, demo_requests
from .._hub import Hub
from .._plugins import build_plugin_manager
from .._webhook import WebhookRequest

__all__ = ["DEMO_SECRET", "demo_config", "next_id", "simulate_requests"]

DEMO_SECRET = "demo-secret"  # a demo credential, published on purpose
_ids = itertools.count(1)


def next_id() -> int:
    """A process-wide counter for sample ids."""
    return next(_ids)


def demo_config(public_url: str, data_dir: Path, *, plugins: Sequence[object] = (),
                entry_points: bool = True) -> dict[str, Any]:
    """The demo's hub configuration: SQLite + memory bus + every plugin's demo channels
    (installed plugins, plus ``plugins`` registered explicitly, as in tests)."""
    channels: dict[str, Any] = {
        "demo-json": {
            "adapter": "json-mapping",
            "channel": "custom",
            "secret": DEMO_SECRET,
            "signature_header": "x-demo-signature",
            "items": "messages",
            "external_id": "id",
            "sender": "from",
            "sender_name": "name",
            "text": "text",
            "send_url": f"{public_url}/demo/vendor/json",
        }
    }
    pm, _ = build_plugin_manager(plugins, entry_points=entry_points)
    channels.update(demo_channels(pm, public_url))
    return {
        "omnichannel": {
            "store": f"sqlite:///{data_dir / 'demo.db'}",
            "bus": "memory",
            "blobs": f"file://{data_dir / 'blobs'}",
            "public_url": public_url,
            # the demo's vendors are loopback stubs on plain http
            "media_allow_http_loopback": True,
            "http_transport": "httpx",
        },
        "channels": channels,
    }


def simulate_requests(hub: Hub, channel_key: str) -> list[WebhookRequest]:
    """Signed sample traffic for a demo channel (the built-in JSON channel or a plugin's)."""
    adapter = hub.adapter(channel_key)
    if adapter.name == "json-mapping":
        n = next_id()
        body = orjson.dumps({"messages": [{
            "id": f"demo-{n}-{asyncio.get_running_loop().time():.0f}", "from": f"customer-{n}",
            "name": f"Customer {n}", "text": "Hello! Where is my order #1234?"}]})
        signature = hmac.new(DEMO_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return [WebhookRequest("POST", hub.request_url(channel_key),
                               {"content-type": "application/json",
                                "x-demo-signature": signature}, body)]
    return demo_requests(hub.pm, channel_key, adapter.name, hub.public_url)
