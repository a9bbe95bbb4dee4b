"""What an outbound message becomes as SMS: bodies, encodings, and which were accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from omnichannel_sdk import (
    MediaPart,
    Part,
    RejectedError,
    TextPart,
    split_text,
)

from ._encoding import Segmentation, segment, split_segments, transliterate
from ._settings import SmsSettings


@dataclass
class OutboundSms:
    """The SMS bodies one outbound message becomes, with their encodings."""

    bodies: list[str]
    """One text per vendor message (several when ``max_segments`` made us split)."""
    media: list[MediaPart] = field(default_factory=list)
    """Media to attach (MMS) to the first message."""
    encodings: list[Segmentation] = field(default_factory=list)
    """The encoding of each body."""

    def metadata(self) -> dict[str, Any]:
        """``{"encoding", "segments"}`` for the whole message (UCS-2 if any body is), plus one
        record per vendor message when there are several."""
        if not self.encodings:
            return {"encoding": "GSM-7", "segments": 0}
        encoding = "UCS-2" if any(e.encoding == "UCS-2" for e in self.encodings) else "GSM-7"
        meta: dict[str, Any] = {"encoding": encoding,
                                "segments": sum(e.segments for e in self.encodings)}
        if len(self.encodings) > 1:
            meta["sms"] = [e.as_metadata() for e in self.encodings]
        return meta


def prepare_outbound(parts: Sequence[Part], settings: SmsSettings, adapter: str,
                     *, max_chars: int | None = None) -> OutboundSms:
    """Join the text parts into one SMS body, encode it, apply ``max_segments``.

    ``max_chars`` is the vendor's hard limit on one body (Twilio: 1,600 characters); longer
    bodies are always split there. Raises ``RejectedError`` when the text needs more than
    ``max_segments`` parts and the setting says ``refuse``.
    """
    texts = [p.text for p in parts if isinstance(p, TextPart) and p.text]
    media = [p for p in parts if isinstance(p, MediaPart)]
    body = "\n\n".join(texts)
    if settings.transliterate:
        body = transliterate(body)
    info = segment(body)
    bodies = [body]
    if info.segments > settings.max_segments:
        if settings.max_segments_action == "refuse":
            raise RejectedError(
                f"{adapter}: the text needs {info.segments} {info.encoding} SMS parts, more than "
                f"max_segments={settings.max_segments}", vendor_code="max_segments")
        bodies = split_segments(body, settings.max_segments)
    if max_chars is not None and any(len(b) > max_chars for b in bodies):
        bodies = [piece for b in bodies for piece in _split_chars(b, max_chars)]
    if not body and not media:
        raise RejectedError(f"{adapter}: nothing to send")
    if not body:
        bodies = []
    # the usual unsplit body was segmented above already
    encodings = [info] if bodies == [body] else [segment(b) for b in bodies]
    return OutboundSms(bodies=bodies, media=media, encodings=encodings)


def _split_chars(text: str, limit: int) -> list[str]:
    return split_text(text, limit)


class SendProgress:
    """Which SMS of a split message the vendor already accepted (in the hub's shared ``kv``).

    Delivery is at-least-once: when the second of three SMS fails and the message is retried,
    the first must not go out twice. Each accepted SMS is recorded under
    ``sms-sent:{channel_key}:{message_id}:{index}`` for a week; a retry skips what is recorded.
    """

    def __init__(self, context: Any, message_id: str) -> None:
        self.kv = getattr(context, "kv", None)
        self.prefix = f"sms-sent:{getattr(context, 'key', '')}:{message_id}:"

    async def accepted(self, index: int) -> list[str] | None:
        """The vendor ids of SMS ``index`` if it was accepted before."""
        if self.kv is None:
            return None
        value = await self.kv.kv_get(f"{self.prefix}{index}")
        return [str(x) for x in orjson.loads(value)] if value else None

    async def record(self, index: int, ids: list[str]) -> None:
        """Remember that SMS ``index`` was accepted with ``ids``."""
        if self.kv is not None:
            await self.kv.kv_set(f"{self.prefix}{index}", orjson.dumps(ids).decode(), ttl=7 * 86400)


_Kept = TypeVar("_Kept")


class PreparedSends(Generic[_Kept]):
    """What an adapter's ``outbound_metadata`` prepared at ``hub.send``, kept for its ``send``
    of a fresh message: ``hub.send`` hands ``send`` the very parts list it gave
    ``outbound_metadata``, so the list's identity finds it (the list is held meanwhile, so its
    id is not reused) and the bodies are not prepared twice. At most ``limit`` are kept, as
    many sends as may wait in the outbox at once: past that all are dropped (those sends
    prepare again), so sends that never ran (a repeated idempotency key, a failed store
    write) do not pile up."""

    def __init__(self, limit: int = 4096) -> None:
        self._kept: dict[int, tuple[Sequence[Part], object, _Kept]] = {}
        self._limit = limit

    def keep(self, parts: Sequence[Part], key: object, prepared: _Kept) -> None:
        """Keep ``prepared`` for a send of ``parts`` with ``key`` (what else it depends on)."""
        if len(self._kept) >= self._limit:
            self._kept.clear()
        self._kept[id(parts)] = (parts, key, prepared)

    def take(self, parts: Sequence[Part], key: object) -> _Kept | None:
        """What was kept for this very ``parts`` list and an equal ``key`` (once), else ``None``."""
        kept = self._kept.pop(id(parts), None)
        if kept is None or kept[0] is not parts or kept[1] != key:
            return None
        return kept[2]
