"""The pluggy hooks of omnichannel-sms (entry point ``omnichannel``: ``sms``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnichannel_sdk import ChannelAdapter, WebhookRequest, hookimpl

from . import _demo
from ._twilio import TwilioSmsAdapter
from ._vonage import VonageSmsAdapter

__all__ = ["omni_demo_channels", "omni_demo_simulate", "omni_demo_vendor", "omni_register_adapters"]


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``twilio-sms`` and ``vonage-sms``."""
    register(TwilioSmsAdapter)
    register(VonageSmsAdapter)


@hookimpl
def omni_demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """A Twilio and a Vonage demo channel against loopback vendor stubs."""
    return _demo.demo_channels(public_url)


@hookimpl
def omni_demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest] | None:
    """Signed sample SMS for the demo channels."""
    return _demo.simulate(channel_key, adapter_name, public_url)


@hookimpl
def omni_demo_vendor(adapter_name: str, hub: Any) -> Any:
    """The loopback Twilio / Vonage APIs of the demo."""
    return _demo.vendor_app(adapter_name, hub)
