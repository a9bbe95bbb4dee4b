"""Adding a transcript to a stored message (published as ``message.updated``)."""

from __future__ import annotations

from typing import Any

from omnichannel_sdk import AdapterServices, Message, TranscriptPart

__all__ = ["attach_transcript", "has_transcript"]


def has_transcript(message: Message) -> bool:
    """Whether ``message`` already carries a transcript part."""
    return any(isinstance(p, TranscriptPart) for p in message.parts)


async def attach_transcript(
    services: AdapterServices, message_id: str, transcript: TranscriptPart, *,
    replace: bool = True, metadata: dict[str, Any] | None = None,
) -> Message | None:
    """Put ``transcript`` on the stored message ``message_id`` and publish the update.

    The change runs atomically in the store (``services.modify_message``), so a media download
    that finishes meanwhile is kept. With ``replace`` an existing transcript is swapped for this
    one (a vendor's result wins over a quick engine's); without it an existing transcript is left
    alone. Returns the updated message, or ``None`` when the message is gone or nothing changed.
    """
    extra = {"transcript": metadata} if metadata else {}
    changed: list[Message] = []

    def change(message: Message) -> Message | None:
        changed.clear()  # the store may run it again (a conflict): the last run counts
        if has_transcript(message) and not replace:
            return None
        parts = [*(p for p in message.parts if not isinstance(p, TranscriptPart)), transcript]
        if parts == list(message.parts):
            return None
        updated = message.model_copy(update={"parts": parts,
                                             "metadata": {**message.metadata, **extra}})
        changed.append(updated)
        return updated

    await services.modify_message(message_id, change)
    return changed[-1] if changed else None
