"""The plugin's hook implementations (entry point ``omnichannel: whatsapp``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnichannel_sdk import ChannelAdapter, Conversation, Demo, EventPart, Message, hookimpl, observes

from ._adapter import WhatsAppAdapter
from ._demo import demo_channels, demo_requests, demo_vendor

if TYPE_CHECKING:
    from omnichannel_sdk import Hub

__all__ = ["DEMO", "omni_inbound_received", "omni_register_adapters", "omni_register_demos"]


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``whatsapp``."""
    register(WhatsAppAdapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's WhatsApp channel."""
    return demo_channels(public_url)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """Signed customer messages for a demo WhatsApp channel."""
    if adapter_name != WhatsAppAdapter.name:
        return None
    return list(demo_requests(channel_key, public_url))


def _demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """The loopback Cloud API of the demo."""
    if adapter_name != WhatsAppAdapter.name:
        return None
    return demo_vendor(hub)


@hookimpl
@observes(adapters=[WhatsAppAdapter])  # the hub skips the call for other channels' messages
def omni_inbound_received(hub: Hub, message: Message, conversation: Conversation) -> None:
    """A reply button or list row was chosen: complete its ``action`` event with the action we
    offered (kind and value), in the background."""
    if message.adapter != WhatsAppAdapter.name or not message.reply_to:
        return
    if not any(isinstance(p, EventPart) and p.name == "action" for p in message.parts):
        return
    adapter = hub.adapters.get(message.channel_key)
    if isinstance(adapter, WhatsAppAdapter):
        adapter.context.services.spawn(adapter.resolve_action(message),
                                       name=f"whatsapp-action-{message.id}")


DEMO = Demo(adapters=frozenset({"whatsapp"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
