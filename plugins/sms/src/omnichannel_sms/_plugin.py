"""The pluggy hooks of omnichannel-sms (entry point ``omnichannel``: ``sms``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnichannel_sdk import ChannelAdapter, Demo, WebhookRequest, hookimpl

from . import _demo
from ._twilio import TwilioSmsAdapter
from ._vonage import VonageSmsAdapter

__all__ = ["DEMO", "omni_register_adapters", "omni_register_demos"]


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``twilio-sms`` and ``vonage-sms``."""
    register(TwilioSmsAdapter)
    register(VonageSmsAdapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """A Twilio and a Vonage demo channel against loopback vendor stubs."""
    return _demo.demo_channels(public_url)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest] | None:
    """Signed sample SMS for the demo channels."""
    return _demo.simulate(channel_key, adapter_name, public_url)


def _demo_vendor(adapter_name: str, hub: Any) -> Any:
    """The loopback Twilio / Vonage APIs of the demo."""
    return _demo.vendor_app(adapter_name, hub)


DEMO = Demo(adapters=frozenset({"twilio-sms", "vonage-sms"}), channels=_demo_channels,
            simulate=_demo_simulate, vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
