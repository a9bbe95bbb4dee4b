"""The plugin's hook implementations (entry point ``omnichannel: telegram``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnichannel_sdk import ChannelAdapter, Demo, hookimpl

from ._adapter import TelegramAdapter
from ._demo import demo_channels, demo_requests, demo_vendor

if TYPE_CHECKING:
    from omnichannel_sdk import Hub

__all__ = ["DEMO", "omni_register_adapters", "omni_register_demos"]


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``telegram``."""
    register(TelegramAdapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's Telegram bot."""
    return demo_channels(public_url)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """Updates from a customer for a demo Telegram channel."""
    if adapter_name != TelegramAdapter.name:
        return None
    return list(demo_requests(channel_key, public_url))


def _demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """The loopback Bot API of the demo."""
    return demo_vendor() if adapter_name == TelegramAdapter.name else None


DEMO = Demo(adapters=frozenset({"telegram"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
