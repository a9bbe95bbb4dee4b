"""Adding a transcript to a stored message (published as ``message.updated``)."""

from __future__ import annotations

import logging
from typing import Any

from omnichannel_sdk import Hub, MediaPart, Message, TranscriptPart

log = logging.getLogger("omnichannel_voice")

__all__ = ["attach_transcript", "has_transcript", "transcribable"]


def transcribable(message: Message) -> bool:
    """Whether a transcript may go on ``message``: a voice message, or one with audio."""
    return message.channel == "voice" or any(
        isinstance(p, MediaPart) and p.kind == "audio" for p in message.parts)


def has_transcript(message: Message) -> bool:
    """Whether ``message`` already carries a transcript part."""
    return any(isinstance(p, TranscriptPart) for p in message.parts)


async def attach_transcript(
    hub: Hub, message_id: str, transcript: TranscriptPart, *, replace: bool = True,
    metadata: dict[str, Any] | None = None,
) -> Message | None:
    """Put ``transcript`` on the stored message ``message_id`` and publish the update.

    The message is read again just before writing, so a media download that finished meanwhile
    is kept. With ``replace`` an existing transcript is swapped for this one (a vendor's result
    wins over a quick engine's); without it an existing transcript is left alone. Returns the
    updated message, or ``None`` when the message is gone, is no voice message and has no
    audio (a transcript never lands on an SMS or a chat text), or nothing changed.
    """
    message = await hub.store.get_message(message_id)
    if message is None:
        return None
    if not transcribable(message):
        log.warning("refused a transcript for %s: a %s message without audio", message_id,
                    message.channel)
        return None
    if has_transcript(message) and not replace:
        return None
    parts = [*(p for p in message.parts if not isinstance(p, TranscriptPart)), transcript]
    if parts == list(message.parts):
        return None
    extra = {"transcript": metadata} if metadata else {}
    updated = message.model_copy(update={"parts": parts, "metadata": {**message.metadata, **extra}})
    await hub.update_message(updated)
    return updated
