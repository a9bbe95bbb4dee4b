"""pytest fixtures of the kit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .._hub import Hub

PUBLIC_URL = "https://hooks.example.test"
"""The ``public_url`` of hubs made by the kit; requests are signed against it."""


@pytest.fixture
def register_plugin() -> list[object]:
    """A list: append plugin objects (modules, classes with hookimpls) before using ``hub``."""
    return []


@pytest.fixture
def omni_config(tmp_path: Path) -> dict[str, Any]:
    """A hub configuration on a temporary SQLite file and in-memory blobs. Vendor calls go
    through the default transport, httpx's own, so a plain ``respx.mock()`` intercepts them.
    Add channels under ``["channels"]``."""
    return {
        "omnichannel": {
            "store": f"sqlite:///{tmp_path / 'omnichannel.db'}",
            "bus": "memory",
            "blobs": "memory://",
            "public_url": PUBLIC_URL,
            "delivery": {"base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05,
                         "max_attempts": 3},
        },
        "channels": {},
    }


@pytest.fixture
async def hub(omni_config: dict[str, Any], register_plugin: list[object]) -> AsyncIterator[Hub]:
    """An open hub built from ``omni_config`` with ``register_plugin`` registered."""
    instance = Hub.from_config(omni_config, plugins=register_plugin)
    async with instance:
        yield instance


@pytest.fixture
async def webhook_client(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that calls ``hub.asgi()`` in process, at the kit's public URL."""
    transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client
