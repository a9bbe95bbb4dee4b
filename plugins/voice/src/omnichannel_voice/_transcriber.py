"""The transcriber interface and the service that adds transcripts to audio in the background.

A *transcriber* is any object with a ``name`` and either

- ``transcribe(audio: bytes, *, content_type: str | None, language: str | None) ->
  TranscriptPart`` — synchronous and CPU- or GPU-bound; run in a worker thread, never on the
  event loop; or
- ``async atranscribe(audio: bytes, *, content_type, language, message, hub) ->
  TranscriptPart | None`` — for engines behind a network API; ``None`` means the result will
  arrive later by webhook (see :class:`VendorTranscriber`).

Plugins register transcribers with the ``omni_register_transcribers(register)`` hook (a hookspec
of this plugin, :mod:`omnichannel_voice.hookspecs`); the hub's :class:`TranscriptionService`
keeps them in ``transcribers`` and the first one is used. When a stored inbound message has
an audio :class:`~omnichannel_sdk.MediaPart` whose bytes are in the blob store (``blob_key``) and
no :class:`~omnichannel_sdk.TranscriptPart`, :class:`TranscriptionService` transcribes it —
bounded in concurrency, once per message across processes (a ``kv_add`` lock) — and stores the
transcript atomically through the message's channel services (event ``message.updated``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import weakref
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread

from omnichannel_sdk import Hub, MediaPart, Message, TranscriptPart

from ._attach import attach_transcript, has_transcript
from ._background import schedule

__all__ = [
    "AsyncTranscriber",
    "Transcriber",
    "TranscriptionService",
    "VendorTranscriber",
    "audio_to_transcribe",
]

log = logging.getLogger("omnichannel_voice")

_LOCK_TTL = 15 * 60.0


@runtime_checkable
class Transcriber(Protocol):
    """A speech-to-text engine run in a worker thread."""

    name: str
    """Shown in the transcript's metadata."""

    def transcribe(self, audio: bytes, *, content_type: str | None = None,
                   language: str | None = None) -> TranscriptPart:
        """The transcript of ``audio`` (any container the engine decodes: WAV, MP3, OGG…)."""


@runtime_checkable
class AsyncTranscriber(Protocol):
    """A speech-to-text engine behind an API, awaited on the event loop."""

    name: str
    """Shown in the transcript's metadata."""

    async def atranscribe(self, audio: bytes, *, content_type: str | None, language: str | None,
                          message: Message, hub: Hub) -> TranscriptPart | None:
        """The transcript of ``audio``, or ``None`` when it arrives later by webhook."""


class VendorTranscriber:
    """Hands audio to a vendor channel (``deepgram``, ``assemblyai``) whose webhook returns
    the transcript onto the message later."""

    def __init__(self, channel_key: str) -> None:
        self.channel_key = channel_key
        self.name = f"vendor:{channel_key}"

    async def atranscribe(self, audio: bytes, *, content_type: str | None, language: str | None,
                          message: Message, hub: Hub) -> TranscriptPart | None:
        """Submit the audio with a callback naming ``message``; the webhook attaches it."""
        adapter: Any = hub.adapter(self.channel_key)
        await adapter.submit(audio, content_type=content_type, message_id=message.id)
        return None


def audio_to_transcribe(message: Message) -> MediaPart | None:
    """The downloaded audio part of an inbound message without a transcript, if any."""
    if message.direction != "inbound" or has_transcript(message):
        return None
    for part in message.parts:
        if isinstance(part, MediaPart) and part.kind == "audio" and part.blob_key:
            return part
    return None


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class TranscriptionService:
    """Runs the hub's first transcriber on audio messages, in the background.

    :param concurrency: transcriptions at once per hub (default ``OMNICHANNEL_TRANSCRIBE_
        CONCURRENCY`` or 1: a CPU engine already uses every core it is given).
    :param max_bytes: larger audio is left alone.
    """

    def __init__(self, hub: Hub, *, concurrency: int | None = None,
                 max_bytes: int = 50 * 1024 * 1024) -> None:
        self.hub = hub
        self.transcribers: list[Any] = []
        """The engines plugins registered (``omni_register_transcribers``); the first is used."""
        hook = getattr(hub.pm.hook, "omni_register_transcribers", None)
        if hook is not None:  # absent when the voice plugin's hookspecs were not added
            hook(register=self.transcribers.append)
        self.concurrency = concurrency or _env_int("OMNICHANNEL_TRANSCRIBE_CONCURRENCY", 1)
        self.max_bytes = max_bytes
        self._slots = asyncio.Semaphore(self.concurrency)
        self._threads = anyio.CapacityLimiter(self.concurrency)
        self._active: set[str] = set()

    def consider(self, message: Message) -> asyncio.Task[Any] | None:
        """Schedule a transcription of ``message`` when it needs one; return the task."""
        if not self.transcribers or message.id in self._active:
            return None
        part = audio_to_transcribe(message)
        if part is None:
            return None
        self._active.add(message.id)
        task = schedule(self.hub, self._run(message, part), f"transcription of {message.id}")
        task.add_done_callback(lambda _t: self._active.discard(message.id))
        return task

    async def _run(self, message: Message, part: MediaPart) -> None:
        store = self.hub.storage  # the kv: a lock across processes
        lock = f"voice:transcribe:{message.id}"
        if not await store.kv_add(lock, "1", ttl=_LOCK_TTL):
            return  # another process has it
        try:
            await self._transcribe(message, part)
        except BaseException:
            await store.kv_delete(lock)  # let a later event try again
            raise

    async def _transcribe(self, message: Message, part: MediaPart) -> None:
        transcriber = self.transcribers[0]
        async with self._slots:
            audio = await self.hub.blobs.get(part.blob_key or "")
            if len(audio) > self.max_bytes:
                log.info("audio of %s is too large to transcribe", message.id)
                return
            language = None
            if inspect.iscoroutinefunction(getattr(transcriber, "atranscribe", None)):
                transcript = await transcriber.atranscribe(
                    audio, content_type=part.content_type, language=language, message=message,
                    hub=self.hub)
            else:
                transcript = await anyio.to_thread.run_sync(
                    lambda: transcriber.transcribe(audio, content_type=part.content_type,
                                                   language=language),
                    limiter=self._threads)
        if transcript is None:
            return
        services = self.hub.adapter(message.channel_key).context.services
        await attach_transcript(services, message.id, transcript, replace=False,
                                metadata={"source": getattr(transcriber, "name", "transcriber")})


_services: weakref.WeakKeyDictionary[Hub, TranscriptionService] = weakref.WeakKeyDictionary()


def service_for(hub: Hub) -> TranscriptionService:
    """The hub's transcription service (one per hub)."""
    service = _services.get(hub)
    if service is None:
        service = _services[hub] = TranscriptionService(hub)
    return service
