"""The transcriber hook: audio without a transcript gets one, off the loop, bounded, once."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
import respx
from omnichannel_voice import TranscriptionService, audio_to_transcribe
from omnichannel_voice._transcriber import service_for

from omnichannel_sdk import (
    Address,
    Hub,
    InboundMessage,
    MediaPart,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
    hookimpl,
)
from omnichannel_sdk.testing import FakeAdapter


class SlowEngine:
    """A synchronous engine that records where and how concurrently it ran."""

    name = "slow-engine"

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.threads: set[int] = set()
        self.running = 0
        self.peak = 0
        self.calls: list[bytes] = []
        self._lock = threading.Lock()

    def transcribe(self, audio: bytes, *, content_type: str | None = None,
                   language: str | None = None) -> TranscriptPart:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.get_ident())
            self.calls.append(audio)
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
        return TranscriptPart(segments=[TranscriptSegment(start=0, end=1, text=f"heard {len(audio)} bytes")],
                              language="en")


class EnginePlugin:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @hookimpl
    def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(FakeAdapter)

    @hookimpl
    def omni_register_transcribers(self, register):  # type: ignore[no-untyped-def]
        register(self.engine)


class FakeAudioAdapter(FakeAdapter):
    """The kit's fake vendor, but its media are voice notes."""

    name = "fake-audio"

    def _item(self, event):  # type: ignore[no-untyped-def]
        item = super()._item(event)
        if isinstance(item, InboundMessage):
            parts = [p.model_copy(update={"kind": "audio", "content_type": "audio/ogg"})
                     if isinstance(p, MediaPart) else p for p in item.parts]
            item = item.model_copy(update={"parts": parts})
        return item


class AudioPlugin(EnginePlugin):
    @hookimpl
    def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(FakeAudioAdapter)


@pytest.fixture
def audio_config(omni_config: dict) -> dict:
    omni_config["channels"]["chat"] = {"adapter": "fake-audio", "secret": "s"}
    return omni_config


async def _eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


def _webhook(n: int):  # type: ignore[no-untyped-def]
    import orjson

    from omnichannel_sdk import WebhookRequest
    from omnichannel_sdk.testing import PUBLIC_URL, fake_signature

    body = orjson.dumps({"events": [{"id": f"v{n}", "from": f"user{n}",
                                     "media_url": f"https://media.fake.test/{n}.ogg"}]})
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/chat",
                          {"content-type": "application/json", "x-fake-signature": fake_signature("s", body)},
                          body)


@pytest.mark.anyio
async def test_voice_notes_of_any_channel_get_transcripts(audio_config: dict) -> None:
    """Webhook → media job downloads the audio → message.updated → engine in a thread →
    transcript stored and published; three notes at concurrency 1 never overlap."""
    import omnichannel_voice._plugin as plugin

    engine = SlowEngine()
    hub = Hub.from_config(audio_config, plugins=[plugin, AudioPlugin(engine)])
    async with hub:
        assert service_for(hub).transcribers[0] is engine  # the later-registered plugin comes first
        with respx.mock() as router:
            router.get(url__regex=r"^https://media\.fake\.test/").mock(
                side_effect=lambda req: httpx.Response(200, content=b"OggS" + req.url.path.encode(),
                                                       headers={"content-type": "audio/ogg"}))
            loop_thread = threading.get_ident()
            for n in range(3):
                await hub.handle_webhook("chat", _webhook(n))

            async def all_done():  # type: ignore[no-untyped-def]
                found = []
                for conv in await hub.store.list_conversations():
                    for m in await hub.store.list_messages(conv.id):
                        if any(isinstance(p, TranscriptPart) for p in m.parts):
                            found.append(m)
                return found if len(found) == 3 else None

            messages = await _eventually(all_done)
        assert engine.peak == 1 and len(engine.calls) == 3
        assert loop_thread not in engine.threads
        for m in messages:
            media, transcript = m.parts
            assert media.blob_key and transcript.segments[0].text.startswith("heard")
            assert m.metadata["transcript"] == {"source": "slow-engine"}
        # the transcript's own message.updated does not start another run
        await asyncio.sleep(0.2)
        assert len(engine.calls) == 3


@pytest.mark.anyio
async def test_concurrency_bound_and_once_per_message(audio_config: dict) -> None:
    engine = SlowEngine(delay=0.15)
    hub = Hub.from_config(audio_config, plugins=[AudioPlugin(engine)])
    async with hub:
        service = TranscriptionService(hub, concurrency=2)
        stored = []
        for n in range(5):
            [m] = await hub.ingest("chat", [InboundMessage(
                external_id=f"n{n}", sender=Address(channel="fake", handle=f"u{n}"),
                parts=[MediaPart(kind="audio", url=f"https://media.fake.test/{n}")])])
            blob = await hub.blobs.put(f"audio {n}".encode())
            m = m.model_copy(update={"parts": [m.parts[0].model_copy(update={"blob_key": blob.key})]})
            await hub.store.update_message(m)
            stored.append(m)
        tasks = [service.consider(m) for m in stored]
        assert service.consider(stored[0]) is None  # already running
        await asyncio.gather(*tasks)
        assert engine.peak == 2 and len(engine.calls) == 5
        again = TranscriptionService(hub)  # e.g. another process: the kv lock stops it
        assert again.consider(await hub.store.get_message(stored[0].id)) is None  # has one now
        await again.consider(stored[1])  # a stale copy without transcript: the lock says "done"
        assert len(engine.calls) == 5


def test_only_downloaded_inbound_audio_without_transcript() -> None:
    from datetime import UTC, datetime

    from omnichannel_sdk import Message

    now = datetime.now(UTC)

    def msg(parts, direction="inbound"):  # type: ignore[no-untyped-def]
        return Message(id="m", channel="x", channel_key="k", adapter="a", direction=direction,
                       conversation_id="c", sender=Address(channel="x", handle="h"), parts=parts,
                       created_at=now, received_at=now, status="received")

    audio = MediaPart(kind="audio", url="https://x/a", blob_key="b" * 64)
    assert audio_to_transcribe(msg([audio])) == audio
    assert audio_to_transcribe(msg([audio.model_copy(update={"blob_key": None})])) is None
    assert audio_to_transcribe(msg([MediaPart(kind="image", blob_key="b" * 64)])) is None
    assert audio_to_transcribe(msg([TextPart(text="hi")])) is None
    assert audio_to_transcribe(msg([audio], direction="outbound")) is None
    assert audio_to_transcribe(msg([audio, TranscriptPart(segments=[])])) is None


@pytest.mark.anyio
async def test_async_engine_and_failures(audio_config: dict) -> None:
    class Broken:
        name = "broken"

        def transcribe(self, audio: bytes, **kw: Any) -> TranscriptPart:
            raise RuntimeError("decoder exploded")

    class Remote:
        name = "remote"
        loop_thread: int | None = None

        async def atranscribe(self, audio, *, content_type, language, message, hub):  # type: ignore[no-untyped-def]
            Remote.loop_thread = threading.get_ident()
            return TranscriptPart(segments=[TranscriptSegment(start=0, end=1, text="remote")])

    hub = Hub.from_config(audio_config, plugins=[AudioPlugin(Broken())])
    async with hub:
        [m] = await hub.ingest("chat", [InboundMessage(
            external_id="a1", sender=Address(channel="fake", handle="u"),
            parts=[MediaPart(kind="audio", url="https://media.fake.test/a1")])])
        blob = await hub.blobs.put(b"audio")
        m = m.model_copy(update={"parts": [m.parts[0].model_copy(update={"blob_key": blob.key})]})
        await hub.store.update_message(m)
        service = TranscriptionService(hub)
        await service.consider(m)  # logged, not raised; the lock is released for a retry
        assert not any(isinstance(p, TranscriptPart) for p in (await hub.store.get_message(m.id)).parts)
        service.transcribers[0] = Remote()
        await service.consider(m)
        assert (await hub.store.get_message(m.id)).parts[-1].segments[0].text == "remote"
        assert Remote.loop_thread == threading.get_ident()
