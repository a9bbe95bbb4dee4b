"""Hooks the voice plugin adds to the ``omnichannel`` plugin manager (through
``omni_add_hookspecs``): the core knows nothing of transcribers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnichannel_sdk import hookspec

__all__ = ["omni_register_transcribers"]


@hookspec
def omni_register_transcribers(register: Callable[[Any], None]) -> None:
    """Register speech-to-text engines that add transcripts to audio without one.

    Called once per hub, when the voice plugin first needs its transcribers (the hub's first
    audio message, or ``omni_hub_started``). The first registered engine is used. Returns
    nothing (results are ignored); not ``firstresult``.

    :param register: call ``register(transcriber)`` for each engine: an object with a ``name``
        and ``transcribe(audio, *, content_type, language)`` (run in a worker thread) or
        ``async atranscribe(audio, *, content_type, language, message, hub)``; see
        :mod:`omnichannel_voice`'s transcriber interface.
    """
