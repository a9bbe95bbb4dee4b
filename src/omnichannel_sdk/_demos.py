"""What plugins add to ``omnichannel demo``: one :class:`Demo` per plugin, registered through the
``omni_register_demos`` hook (it replaced three demo-only hooks, still honoured until 0.3)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._webhook import WebhookRequest

__all__ = ["Demo", "demo_channels", "demo_requests", "demo_vendor", "registered_demos"]


@dataclass(frozen=True)
class Demo:
    """A plugin's part of ``omnichannel demo``: its channels, sample traffic and vendor stubs."""

    adapters: frozenset[str]
    """The adapter names this demo serves: :attr:`simulate` and :attr:`vendor` are asked only
    for these."""
    channels: Callable[[str], Mapping[str, Mapping[str, Any]]]
    """``channels(public_url)``: ``{channel key: settings table}`` added to the demo's
    configuration. Tables must work offline: point ``api_base`` at
    ``{public_url}/demo/vendor/<adapter name>`` (the stub :attr:`vendor` returns)."""
    simulate: Callable[[str, str, str], Sequence[WebhookRequest] | None] | None = None
    """``simulate(channel_key, adapter_name, public_url)``: signed sample requests for
    ``{public_url}/webhooks/{channel_key}`` (``omnichannel simulate``, the inbox's buttons)."""
    vendor: Callable[[str, Any], Any] | None = None
    """``vendor(adapter_name, hub)`` (the demo's :class:`~omnichannel_sdk.Hub`; typed ``Any`` so
    this module needs no import of the hub): an ASGI app playing that vendor's API, mounted at
    ``/demo/vendor/{adapter_name}``; it answers sends as the vendor does and may report delivery
    back through ``hub.apply_status`` or signed status callbacks. ``None``: no stub."""


def registered_demos(pm: pluggy.PluginManager) -> list[Demo]:
    """Every :class:`Demo` the plugins register (``omni_register_demos``)."""
    demos: list[Demo] = []
    pm.hook.omni_register_demos(register=demos.append)
    return demos


def demo_channels(pm: pluggy.PluginManager, public_url: str) -> dict[str, dict[str, Any]]:
    """The channel tables of every plugin's demo, merged."""
    tables: dict[str, dict[str, Any]] = {}
    for demo in registered_demos(pm):
        tables.update({key: dict(table) for key, table in demo.channels(public_url).items()})
    for extra in pm.hook.omni_demo_channels(public_url=public_url):  # deprecated hook
        tables.update(extra or {})
    return tables


def demo_requests(pm: pluggy.PluginManager, channel_key: str, adapter_name: str,
                  public_url: str) -> list[WebhookRequest]:
    """Signed sample requests for one demo channel, from the plugin that serves its adapter."""
    found: list[WebhookRequest] = []
    for demo in registered_demos(pm):
        if demo.simulate is not None and adapter_name in demo.adapters:
            found.extend(demo.simulate(channel_key, adapter_name, public_url) or [])
    for batch in pm.hook.omni_demo_simulate(  # deprecated hook
            channel_key=channel_key, adapter_name=adapter_name, public_url=public_url):
        found.extend(batch or [])
    return found


def demo_vendor(pm: pluggy.PluginManager, adapter_name: str, hub: Any) -> Any:
    """The ASGI app playing ``adapter_name``'s vendor, or ``None``."""
    for demo in registered_demos(pm):
        if demo.vendor is not None and adapter_name in demo.adapters:
            app = demo.vendor(adapter_name, hub)
            if app is not None:
                return app
    return pm.hook.omni_demo_vendor(adapter_name=adapter_name, hub=hub)  # deprecated hook
