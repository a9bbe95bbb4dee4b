"""Entry point module (``[project.entry-points.omnichannel]``): registers the adapter."""

from collections.abc import Callable

from omnichannel_sdk import ChannelAdapter, hookimpl

from ._adapter import ExampleAdapter


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register the ``example`` adapter."""
    register(ExampleAdapter)
