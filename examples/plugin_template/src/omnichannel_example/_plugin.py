"""Entry point module: registers the adapter with omnichannel_sdk."""

from collections.abc import Callable

from omnichannel_sdk import ChannelAdapter, hookimpl

from ._adapter import ExampleAdapter


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register the example adapter."""
    register(ExampleAdapter)
