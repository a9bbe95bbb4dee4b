"""Plugins join ``omnichannel demo`` through one registration hook; the three hooks it replaced
still work, with a DeprecationWarning, until 0.3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from omnichannel_sdk import Demo, WebhookRequest, hookimpl
from omnichannel_sdk._demos import demo_channels, demo_requests, demo_vendor, registered_demos
from omnichannel_sdk._plugins import build_plugin_manager

URL = "http://127.0.0.1:8000"


def _simulate(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest]:
    return [WebhookRequest("POST", f"{public_url}/webhooks/{channel_key}", body=adapter_name.encode())]


class _Plugin:
    @hookimpl
    def omni_register_demos(self, register: Callable[[Demo], None]) -> None:
        register(Demo(adapters=frozenset({"line"}),
                      channels=lambda public_url: {"demo-line": {"adapter": "line",
                                                                "api_base": f"{public_url}/demo/vendor/line"}},
                      simulate=_simulate, vendor=lambda name, hub: f"app-for-{name}"))


def test_a_registered_demo_adds_channels_requests_and_a_vendor_for_its_adapters_only() -> None:
    pm, _ = build_plugin_manager([_Plugin()], entry_points=False)
    assert demo_channels(pm, URL)["demo-line"]["api_base"] == f"{URL}/demo/vendor/line"
    [request] = demo_requests(pm, "demo-line", "line", URL)
    assert request.url == f"{URL}/webhooks/demo-line" and request.body == b"line"
    assert demo_requests(pm, "other", "telegram", URL) == []  # not its adapter: not asked
    hub: Any = object()
    assert demo_vendor(pm, "line", hub) == "app-for-line"
    assert demo_vendor(pm, "telegram", hub) is None


def test_the_deprecated_demo_hooks_still_work_with_a_warning() -> None:
    class Old:
        @hookimpl
        def omni_demo_channels(self, public_url: str) -> dict[str, dict[str, Any]]:
            return {"old": {"adapter": "old"}}

        @hookimpl
        def omni_demo_simulate(self, channel_key: str, adapter_name: str, public_url: str) -> list[Any]:
            return [WebhookRequest("POST", f"{public_url}/webhooks/{channel_key}")]

    with pytest.warns(DeprecationWarning, match="omni_demo_(channels|simulate) is deprecated"):
        pm, _ = build_plugin_manager([Old()], entry_points=False)
    assert "old" in demo_channels(pm, URL)
    assert len(demo_requests(pm, "old", "old", URL)) == 1


def test_every_built_in_plugin_registers_a_demo() -> None:
    pm, registry = build_plugin_manager()
    served: set[str] = set().union(*(demo.adapters for demo in registered_demos(pm)))
    assert {"telegram", "whatsapp", "messenger", "twilio-sms", "webchat", "wechat-mp"} <= served
    assert served <= set(registry.names())
