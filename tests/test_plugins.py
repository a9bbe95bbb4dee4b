"""The plugin manager: registration refuses incomplete adapters, hooks are checked against
their specifications, and plugins add hookspecs of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest
from typing_extensions import TypeVar

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


class _LineSettings(AdapterSettings):
    """Settings of a LINE-like test channel."""

    channel_secret: str = "s"


class _Generic(ChannelAdapter[_LineSettings]):
    name: ClassVar[str] = "generic"
    channel: ClassVar[str] = "line"

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> ParseResult:
        return ParseResult()


def test_the_type_argument_is_the_settings_model() -> None:
    """``ChannelAdapter[S]`` sets ``Settings`` to ``S`` (and types ``self.settings`` as ``S``)."""
    assert _Generic.Settings is _LineSettings
    AdapterRegistry().register(_Generic)
    adapter = _Generic(_LineSettings(), _context())
    assert adapter.settings.channel_secret == "s"

    class Nested(_Generic):
        name: ClassVar[str] = "nested"

        class Settings(_LineSettings):
            """A nested model wins over the inherited one."""

    assert Nested.Settings is not _LineSettings and issubclass(Nested.Settings, _LineSettings)


class _VendorSettings(_LineSettings):
    """Settings of one vendor of the LINE-like family."""

    vendor_key: str = "v"


_FamilyT = TypeVar("_FamilyT", bound=_LineSettings, default=_LineSettings, covariant=True)


class _Family(ChannelAdapter[_FamilyT]):
    """A generic base of several vendors (like ``EmailAdapter[S]``)."""

    channel: ClassVar[str] = "line"

    def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, request: WebhookRequest) -> ParseResult:
        return ParseResult()


class _Vendor(_Family[_VendorSettings]):
    name: ClassVar[str] = "vendor"


def test_a_generic_base_takes_its_default_and_its_subclass_the_argument() -> None:
    assert _Family.Settings is _LineSettings
    assert _Vendor.Settings is _VendorSettings
    AdapterRegistry().register(_Vendor)
    assert _Vendor(_VendorSettings(), _context()).settings.vendor_key == "v"


def _context() -> Any:
    import httpx

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    # a mock transport holds no connection pool: nothing is left unclosed
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    return AdapterContext(key="k", public_url="https://x.test", http=http, kv=MemoryKV())


def _message(direction: str = "inbound") -> Any:
    from omnichannel_sdk import Address, InboundMessage

    customer, us = Address(channel="line", handle="U1"), Address(channel="line", handle="BOT")
    sender, to = (customer, us) if direction == "inbound" else (us, customer)
    return InboundMessage(external_id="1", sender=sender, recipients=[to], direction=direction)


async def _close(adapter: ChannelAdapter) -> None:
    await adapter.context.http.aclose()


@pytest.mark.anyio
async def test_one_thread_key_method_serves_inbound_echoes_and_started_conversations() -> None:
    from omnichannel_sdk import Address
    from omnichannel_sdk._adapter import message_customer

    adapter = _Generic(_LineSettings(), _context())
    try:
        inbound, echo = _message(), _message("outbound")
        assert adapter.thread_key_for(message_customer(inbound), inbound) == "U1|BOT"
        # an echo of what we sent joins the customer's conversation, not a "BOT|U1" one
        assert adapter.thread_key_for(message_customer(echo), echo) == "U1|BOT"
        assert adapter.thread_key_for(Address(channel="line", handle="U1")) == "U1|"
    finally:
        await _close(adapter)


@pytest.mark.anyio
async def test_adapters_written_for_0_1_still_thread_with_a_warning() -> None:
    from omnichannel_sdk import Address, InboundMessage

    with pytest.warns(DeprecationWarning, match=r"thread_key\(message\) is deprecated"):
        class OldInbound(_Generic):
            name: ClassVar[str] = "old-inbound"

            def thread_key(self, message: InboundMessage) -> str:
                return "old:" + message.sender.handle

    with pytest.warns(DeprecationWarning, match=r"thread_key_for\(customer\) without message"):
        class OldStarted(_Generic):
            name: ClassVar[str] = "old-started"

            def thread_key_for(self, customer: Address) -> str:  # type: ignore[override]
                return "started:" + customer.handle

    old_in = OldInbound(_LineSettings(), _context())
    old_started = OldStarted(_LineSettings(), _context())
    try:
        message = _message()
        assert old_in.thread_key_for(message.sender, message) == "old:U1"
        assert old_started.thread_key_for(message.sender) == "started:U1"
        assert old_started.thread_key_for(message.sender, message) == "U1|BOT"
    finally:
        await _close(old_in)
        await _close(old_started)
