"""The offline default engine on real speech (espeak-ng), at 16 kHz and on an 8 kHz phone line."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx
import pytest
import respx
from omnichannel_voice import WhisperTranscriber, bundled_model_path, whisper_available

from omnichannel_sdk import ConfigurationError, Hub

pytestmark = pytest.mark.slow

SENTENCE = "Hello, my parcel never arrived. Please call me back tomorrow morning."
KEY_WORDS = {"parcel", "arrived", "call", "back", "tomorrow"}


def _engine() -> WhisperTranscriber:
    if not whisper_available():
        message = "faster-whisper or the bundled model is missing (pip install omnichannel-voice[whisper])"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return _ENGINE


_ENGINE = WhisperTranscriber(cpu_threads=2)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_runs_offline_from_the_wheel() -> None:
    _engine()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    path = bundled_model_path()
    assert path is not None and (path / "model.bin").is_file()


def test_model_name_is_refused_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        WhisperTranscriber(tmp_path / "tiny.en").load()


# The phone line takes espeak-ng's "en" voice: through 300-3400 Hz its "en-us" voice left tiny.en
# exactly 3 of the 5 words with int8 kernels and 2 with float32 ones, so the CPU's instruction set
# decided the test (it failed on a machine whose CTranslate2 chose other kernels); "en" gives all
# 5 with either, at 120 to 150 words a minute, which leaves the threshold a margin.
@pytest.mark.parametrize(("rate", "telephone", "voice", "needed"),
                         [(16000, False, "en-us", 5), (8000, True, "en", 3)])
def test_key_words_come_back(speak, tmp_path: Path, rate: int, telephone: bool, voice: str,  # type: ignore[no-untyped-def]
                             needed: int) -> None:
    engine = _engine()
    wav = speak(SENTENCE, tmp_path / f"speech-{rate}.wav", rate=rate, telephone=telephone,
                voice=voice)
    transcript = engine.transcribe(wav.read_bytes(), content_type="audio/wav")
    text = " ".join(s.text for s in transcript.segments)
    assert len(KEY_WORDS & _words(text)) >= needed, text
    assert transcript.language == "en"
    assert all(0 <= s.start <= s.end and 0 <= (s.confidence or 0) <= 1 for s in transcript.segments)


@pytest.mark.anyio
async def test_twilio_voicemail_transcribed_end_to_end(speak, tmp_path: Path, omni_config: dict) -> None:  # type: ignore[no-untyped-def]
    """A recording callback → the 8 kHz recording is downloaded → whisper → transcript stored."""
    engine = _engine()
    from urllib.parse import parse_qsl

    import omnichannel_voice._plugin as plugin
    from omnichannel_voice import TwilioVoiceAdapter, twilio_signature

    from omnichannel_sdk import WebhookRequest, hookimpl
    from omnichannel_sdk.testing import PUBLIC_URL

    sid, token, ours, recording = ("AC3f0a6b1e2d4c5b6a7980a1b2c3d4e5f6", "tok", "+15005550006",
                                   "RE8a1f2b3c4d5e6f708192a3b4c5d6e7f8")

    class Default:
        @hookimpl
        def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
            register(TwilioVoiceAdapter)

        @hookimpl
        def omni_register_transcribers(self, register):  # type: ignore[no-untyped-def]
            register(engine)

    body = (Path(__file__).parent / "samples" / "twilio_recording_status.form").read_bytes()
    url = f"{PUBLIC_URL}/webhooks/voice?From=%2B14155550123&To=%2B15005550006"
    signature = twilio_signature(token, url, parse_qsl(body.decode(), keep_blank_values=True))
    request = WebhookRequest("POST", url, {"content-type": "application/x-www-form-urlencoded",
                                           "x-twilio-signature": signature}, body)

    wav = speak("This is Dana. My order one two three four is late. Please call me back.",
                tmp_path / "voicemail.wav", rate=8000, telephone=True).read_bytes()
    omni_config["channels"]["voice"] = {"adapter": "twilio-voice", "account_sid": sid,
                                        "auth_token": token, "from_number": ours}
    hub = Hub.from_config(omni_config, plugins=[plugin, Default()])
    async with hub:
        with respx.mock() as router:
            router.get(url__regex=r"^https://api\.twilio\.com/").mock(
                return_value=httpx.Response(200, content=wav, headers={"content-type": "audio/x-wav"}))
            await hub.handle_webhook("voice", request)
            deadline = asyncio.get_running_loop().time() + 40
            while True:
                message = await hub.store.find_message_by_external("voice", recording)
                if message and any(p.type == "transcript" for p in message.parts):
                    break
                assert asyncio.get_running_loop().time() < deadline, "no transcript in time"
                await asyncio.sleep(0.1)
    text = " ".join(s.text for s in message.parts[-1].segments)
    assert {"order", "late"} <= _words(text) or {"call", "back"} <= _words(text), text
    assert message.metadata["transcript"]["source"] == "faster-whisper"
