"""Built-in behaviour, loaded as a plugin like any other (the ``json-mapping`` adapter)."""

from __future__ import annotations

from collections.abc import Callable

from ._adapter import ChannelAdapter
from ._mapping import JsonMappingAdapter
from .hookspecs import hookimpl


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register the built-in adapters."""
    register(JsonMappingAdapter)
