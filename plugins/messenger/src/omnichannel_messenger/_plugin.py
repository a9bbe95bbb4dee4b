"""The plugin's hook implementations (entry point ``omnichannel: messenger``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omnichannel_sdk import ChannelAdapter, Conversation, Demo, hookimpl, observes

from ._adapter import InstagramAdapter, MessengerAdapter, MetaAdapter
from ._demo import DEMO_SETTINGS, demo_channels, demo_requests, demo_vendor

if TYPE_CHECKING:
    from omnichannel_sdk import Hub

__all__ = ["DEMO", "omni_conversation_opened", "omni_register_adapters", "omni_register_demos"]


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``messenger`` and ``instagram``."""
    register(MessengerAdapter)
    register(InstagramAdapter)


@hookimpl
@observes(adapters=[MetaAdapter])  # the hub skips the call for other channels' conversations
def omni_conversation_opened(hub: Hub, conversation: Conversation) -> None:
    """A new Messenger / Instagram conversation: fetch the customer's profile in the background
    (``fetch_profiles``) and store the name, locale and timezone into the contact."""
    adapter = hub.adapters.get(conversation.channel_key)
    if isinstance(adapter, MetaAdapter) and adapter.settings.fetch_profiles:
        adapter.context.services.spawn(adapter.refresh_profile(conversation),
                                       name=f"meta-profile-{conversation.id}")


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's Messenger and Instagram channels."""
    return demo_channels(public_url)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """Signed customer messages for a demo Messenger / Instagram channel."""
    if adapter_name not in DEMO_SETTINGS:
        return None
    return list(demo_requests(adapter_name, channel_key, public_url))


def _demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """The loopback Send API of the demo."""
    if adapter_name not in DEMO_SETTINGS:
        return None
    return demo_vendor(adapter_name, hub)


DEMO = Demo(adapters=frozenset({"messenger", "instagram"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
