"""Fixtures of the voice plugin's tests: samples, real speech made with espeak-ng."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from omnichannel_sdk.testing import require_binary

os.environ["HF_HUB_OFFLINE"] = "1"  # the speech model must never be fetched
os.environ.setdefault("OMNICHANNEL_TRANSCRIBER", "off")  # hubs of other tests stay model-free

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need_binary(name: str) -> str:
    """The path of a program; skip without it on a laptop, fail under CI=true."""
    return require_binary(name, hint="scripts/system-deps.d/voice.list")


def _speak(text: str, out: Path, *, rate: int = 16000, telephone: bool = False,
           voice: str = "en-us") -> Path:
    """``text`` spoken by espeak-ng's ``voice``, resampled by sox to ``rate`` Hz mono 16-bit WAV.

    ``telephone`` band-limits to 300-3400 Hz and stores 8-bit mu-law, like a phone line.
    """
    espeak = need_binary("espeak-ng")
    sox = need_binary("sox")
    raw = out.with_suffix(".raw.wav")
    subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(raw), text], check=True,
                   capture_output=True, timeout=30)
    # -R: sox seeds its dither (applied when it lowers the bit depth) with a fixed number, so
    # the same text gives the same audio on every run; without it an unlucky dither turned a
    # borderline 8 kHz transcript into a failure once in a full run
    if telephone:
        cmd = [sox, "-R", str(raw), "-r", str(rate), "-c", "1", "-e", "u-law", str(out),
               "sinc", "300-3400"]
    else:
        cmd = [sox, "-R", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    raw.unlink()
    return out


@pytest.fixture
def speak():
    """``speak(text, out, rate=16000, telephone=False, voice="en-us")``: real speech as a WAV."""
    return _speak
