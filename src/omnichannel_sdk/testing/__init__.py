"""Test kit for plugin authors (pytest plugin, entry point ``pytest11``).

Fixtures: ``omni_config`` (a hub config dict on a temporary SQLite file), ``register_plugin``
(add plugins to the hub under test), ``hub`` (an open :class:`~omnichannel_sdk.Hub`),
``webhook_client`` (an ``httpx.AsyncClient`` talking to ``hub.asgi()`` in process).

:class:`ChannelContract` is the suite every adapter proves itself with; :class:`FakeAdapter`
is a complete small adapter to read and to test against; :class:`LocalCA` makes a
certificate authority for loopback TLS servers. Async tests use anyio
(``@pytest.mark.anyio``).
"""

from __future__ import annotations

from ._contract import ChannelContract, MemoryKV
from ._fake import FakeAdapter, fake_signature
from ._fixtures import (
    PUBLIC_URL,
    hub,
    omni_config,
    register_plugin,
    webhook_client,
)
from ._requirements import free_port, require, require_binary, require_package, require_service
from ._tls import LocalCA
from ._vendor import SendCase

__all__ = [
    "PUBLIC_URL",
    "ChannelContract",
    "FakeAdapter",
    "LocalCA",
    "MemoryKV",
    "SendCase",
    "fake_signature",
    "free_port",
    "hub",
    "omni_config",
    "register_plugin",
    "require",
    "require_binary",
    "require_package",
    "require_service",
    "webhook_client",
]
