"""A template channel plugin: copy, rename, fill in your vendor."""

from ._adapter import ExampleAdapter

__all__ = ["ExampleAdapter"]
