"""The plugin manager: registration refuses incomplete adapters, hooks are checked against
their specifications, and plugins add hookspecs of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest

from omnichannel_sdk import (
    AdapterSettings,
    ChannelAdapter,
    ParseResult,
    PluginError,
    WebhookRequest,
    hookimpl,
    hookspec,
)
from omnichannel_sdk._plugins import AdapterRegistry, build_plugin_manager


class _NoParse(ChannelAdapter):
    name: ClassVar[str] = "no-parse"
    channel: ClassVar[str] = "test"

    def verify(self, request: WebhookRequest) -> None:
        return None


class _Complete(_NoParse):
    name: ClassVar[str] = "complete"

    def parse(self, request: WebhookRequest) -> ParseResult:
        return ParseResult()


def test_registration_names_the_missing_method() -> None:
    registry = AdapterRegistry()
    with pytest.raises(PluginError, match=r"_NoParse .* does not implement parse\(\)"):
        registry.register(_NoParse)

    class Neither(ChannelAdapter):
        name: ClassVar[str] = "neither"
        channel: ClassVar[str] = "test"

    with pytest.raises(PluginError, match=r"does not implement parse\(\), verify\(\)"):
        registry.register(Neither)
    registry.register(_Complete)
    assert registry.names() == ["complete"]


def test_registration_refuses_a_bad_settings_model() -> None:
    class BadSettings(_Complete):
        name: ClassVar[str] = "bad-settings"
        Settings = dict  # type: ignore[assignment]

    with pytest.raises(PluginError, match="Settings is not an AdapterSettings subclass"):
        AdapterRegistry().register(BadSettings)


def test_an_incomplete_adapter_is_refused_when_plugins_load() -> None:
    class Plugin:
        @hookimpl
        def omni_register_adapters(self, register: Callable[[type[ChannelAdapter]], None]) -> None:
            register(_NoParse)

    with pytest.raises(PluginError, match="does not implement parse"):
        build_plugin_manager([Plugin()], entry_points=False)


def test_a_misspelled_hook_is_an_error() -> None:
    class Typo:
        @hookimpl
        def omni_inbound_recieved(self, message: Any) -> None:  # sic
            """Never called: the name matches no hook."""

    with pytest.raises(PluginError, match="omni_inbound_recieved"):
        build_plugin_manager([Typo()], entry_points=False)


def test_an_optional_hook_of_an_absent_plugin_is_allowed() -> None:
    class Optional:
        @hookimpl(optionalhook=True)
        def omni_other_plugins_hook(self) -> None:
            """Meant for a plugin that may not be installed."""

    build_plugin_manager([Optional()], entry_points=False)


class _Specs:
    """Hookspecs a plugin offers to others."""

    @hookspec(firstresult=True)
    def omni_greeting_text(self, name: str) -> str | None:
        """The greeting for ``name``.

        :param name: who is greeted.
        """


def test_plugins_add_hookspecs_before_the_check() -> None:
    class Offers:
        @hookimpl
        def omni_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
            pluginmanager.add_hookspecs(_Specs)

    class Uses:
        @hookimpl
        def omni_greeting_text(self, name: str) -> str:
            return f"hello {name}"

    # the implementing plugin may even be registered before the one that adds the spec
    pm, _ = build_plugin_manager([Uses(), Offers()], entry_points=False)
    assert pm.hook.omni_greeting_text(name="ada") == "hello ada"
    with pytest.raises(PluginError, match="omni_greeting_text"):
        build_plugin_manager([Uses()], entry_points=False)


def test_every_installed_plugin_passes_the_check() -> None:
    """The built-in plugin distributions (entry points) load without a PluginError."""
    _, registry = build_plugin_manager()
    assert "json-mapping" in registry


def test_adapter_settings_default() -> None:
    assert issubclass(_Complete.Settings, AdapterSettings)
