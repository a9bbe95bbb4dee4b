"""The Example channel for omnichannel_sdk."""

from ._adapter import ExampleAdapter, ExampleSettings

__all__ = ["ExampleAdapter", "ExampleSettings"]
