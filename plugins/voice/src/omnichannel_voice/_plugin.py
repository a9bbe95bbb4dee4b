"""The plugin registered under the ``omnichannel`` entry point: adapters, the default
transcriber, the observers that transcribe audio, and the demo channel."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import math
import os
import struct
import wave
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pluggy

from omnichannel_sdk import (
    ChannelAdapter,
    Conversation,
    Demo,
    Hub,
    Message,
    StatusUpdate,
    WebhookRequest,
    hookimpl,
    observes,
)

from . import hookspecs
from ._amazon import AmazonTranscribeAdapter
from ._assemblyai import AssemblyAIAdapter
from ._background import drain
from ._deepgram import DeepgramAdapter
from ._transcriber import service_for
from ._twilio import TwilioVoiceAdapter, twilio_signature
from ._whisper import WhisperTranscriber, whisper_available

log = logging.getLogger("omnichannel_voice")

_default: WhisperTranscriber | None = None


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """``twilio-voice``, ``deepgram``, ``assemblyai``, ``amazon-transcribe``."""
    for adapter in (TwilioVoiceAdapter, DeepgramAdapter, AssemblyAIAdapter, AmazonTranscribeAdapter):
        register(adapter)


@hookimpl
def omni_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add the voice plugin's own hook, ``omni_register_transcribers``."""
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def omni_hub_started(hub: Hub) -> None:
    """Collect the hub's transcribers (``omni_register_transcribers``) once it is open."""
    service_for(hub)


@hookimpl
def omni_register_transcribers(register: Callable[[Any], None]) -> None:
    """The offline faster-whisper engine, when the ``[whisper]`` extra and a model are there.

    ``OMNICHANNEL_TRANSCRIBER=off`` registers nothing.
    """
    global _default
    if os.environ.get("OMNICHANNEL_TRANSCRIBER", "").lower() in ("off", "none", "0", "false"):
        return
    if not whisper_available():
        return
    if _default is None:  # one model per process, shared by every hub
        _default = WhisperTranscriber()
    register(_default)


@hookimpl
@observes(part_types=["media"])  # audio only: the hub skips the call for other messages
def omni_inbound_received(hub: Hub, message: Message, conversation: Conversation) -> None:
    """Audio that is already downloaded and has no transcript gets one in the background."""
    service_for(hub).consider(message)


@hookimpl
@observes(part_types=["media"])
def omni_message_updated(hub: Hub, message: Message) -> None:
    """Audio just downloaded by the media job gets a transcript in the background."""
    service_for(hub).consider(message)


@hookimpl
async def omni_hub_stopping(hub: Hub) -> None:
    """Give background work (transcripts, fetches) a moment to finish."""
    await drain(hub)


# ----------------------------------------------------------------------------------------------
# demo

DEMO_ACCOUNT = "AC" + "d" * 32
DEMO_TOKEN = "demo-voice-token"  # a demo credential, published on purpose
DEMO_NUMBER = "+15005550006"
_ids = itertools.count(1)
_demo_tasks: set[asyncio.Task[Any]] = set()


def demo_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A short 8 kHz WAV (a soft two-tone chime) served as the demo's recording."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        tone = 440.0 if i < rate * seconds / 2 else 660.0
        frames += struct.pack("<h", int(3000 * math.sin(2 * math.pi * tone * i / rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """A ``twilio-voice`` channel whose API is the demo's loopback stub."""
    return {"demo-voice": {
        "adapter": "twilio-voice", "account_sid": DEMO_ACCOUNT, "auth_token": DEMO_TOKEN,
        "from_number": DEMO_NUMBER, "api_base": f"{public_url}/demo/vendor/twilio-voice"}}


def _signed(url: str, params: dict[str, str]) -> WebhookRequest:
    body = urlencode(params).encode()
    return WebhookRequest("POST", url, {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(DEMO_TOKEN, url, list(params.items()))}, body)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """A voicemail: the recording status callback, then Twilio's transcription of it."""
    if adapter_name != "twilio-voice":
        return None
    n = next(_ids)
    caller = f"+1415555{n % 10000:04d}"
    recording = f"RE{os.urandom(16).hex()}"
    call = f"CA{os.urandom(16).hex()}"
    base = f"{public_url}/webhooks/{channel_key}"
    recording_url = (f"{public_url}/demo/vendor/twilio-voice/2010-04-01/Accounts/{DEMO_ACCOUNT}"
                     f"/Recordings/{recording}")
    status_url = f"{base}?{urlencode({'From': caller, 'To': DEMO_NUMBER})}"
    recorded = _signed(status_url, {
        "AccountSid": DEMO_ACCOUNT, "CallSid": call, "RecordingSid": recording,
        "RecordingUrl": recording_url, "RecordingStatus": "completed", "RecordingDuration": "1",
        "RecordingChannels": "1", "RecordingSource": "RecordVerb"})
    transcribed = _signed(base, {
        "AccountSid": DEMO_ACCOUNT, "CallSid": call, "RecordingSid": recording,
        "RecordingUrl": recording_url, "TranscriptionSid": f"TR{os.urandom(16).hex()}",
        "TranscriptionStatus": "completed", "From": caller, "To": DEMO_NUMBER,
        "TranscriptionText": "Hi, this is a demo voicemail. Please call me back about my order.",
        "CallStatus": "completed", "Direction": "inbound"})
    return [recorded, transcribed]


def _demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """Twilio's API for the demo: places calls (reported ``delivered``) and serves recordings."""
    if adapter_name != "twilio-voice":
        return None
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    key = next((k for k, a in hub.adapters.items() if a.name == "twilio-voice"), None)

    async def calls(request: Request) -> Response:
        sid = f"CA{next(_ids):032d}"

        async def answered() -> None:
            await asyncio.sleep(0.3)
            if key:
                await hub.apply_status(key, StatusUpdate(external_id=sid, status="delivered"))

        task = asyncio.create_task(answered())
        _demo_tasks.add(task)
        task.add_done_callback(_demo_tasks.discard)
        return JSONResponse({"sid": sid, "status": "queued"}, status_code=201)

    async def recording(request: Request) -> Response:
        return Response(demo_wav(), media_type="audio/wav")

    return Starlette(routes=[
        Route("/2010-04-01/Accounts/{account}/Calls.json", calls, methods=["POST"]),
        Route("/2010-04-01/Accounts/{account}/Recordings/{name}", recording, methods=["GET"]),
    ])


__all__ = [
    "DEMO",
    "omni_add_hookspecs",
    "omni_hub_started",
    "omni_hub_stopping",
    "omni_inbound_received",
    "omni_message_updated",
    "omni_register_adapters",
    "omni_register_demos",
    "omni_register_transcribers",
]


DEMO = Demo(adapters=frozenset({"twilio-voice"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
