"""The plugin manager: hookspecs, entry-point discovery and the adapter registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pluggy

from . import hookspecs
from ._adapter import ChannelAdapter
from ._errors import ConfigurationError, PluginError

__all__ = ["AdapterRegistry", "build_plugin_manager"]

PROJECT = "omnichannel"


class AdapterRegistry:
    """Adapter classes by name, as plugins registered them."""

    def __init__(self) -> None:
        self._adapters: dict[str, type[ChannelAdapter]] = {}

    def register(self, adapter: type[ChannelAdapter]) -> None:
        """Add an adapter class; refuse a second one with the same name or missing attributes."""
        if not (isinstance(adapter, type) and issubclass(adapter, ChannelAdapter)):
            raise PluginError(f"{adapter!r} is not a ChannelAdapter subclass")
        for attr in ("name", "channel"):
            if not isinstance(getattr(adapter, attr, None), str):
                raise PluginError(f"{adapter.__qualname__} has no {attr!r}")
        existing = self._adapters.get(adapter.name)
        if existing is not None and existing is not adapter:
            raise PluginError(
                f"adapter name {adapter.name!r} registered twice "
                f"({existing.__module__} and {adapter.__module__})"
            )
        self._adapters[adapter.name] = adapter

    def get(self, name: str, *, channel_key: str | None = None) -> type[ChannelAdapter]:
        """The adapter class called ``name``; a :class:`ConfigurationError` when unknown."""
        try:
            return self._adapters[name]
        except KeyError:
            known = ", ".join(sorted(self._adapters)) or "none installed"
            raise ConfigurationError(
                f"unknown adapter {name!r} (installed: {known})",
                channel_key=channel_key,
                field="adapter",
            ) from None

    def __iter__(self) -> Any:
        return iter(sorted(self._adapters.values(), key=lambda a: a.name))

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def names(self) -> list[str]:
        """Registered adapter names, sorted."""
        return sorted(self._adapters)


def build_plugin_manager(
    plugins: Iterable[object] = (), *, entry_points: bool = True
) -> tuple[pluggy.PluginManager, AdapterRegistry]:
    """A plugin manager with our hookspecs, installed plugins and ``plugins`` registered."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    from . import _builtin

    pm.register(_builtin, name="omnichannel-builtin")
    if entry_points:
        pm.load_setuptools_entrypoints(PROJECT)
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        pm.register(plugin)
    registry = AdapterRegistry()
    pm.hook.omni_register_adapters(register=registry.register)
    return pm, registry
