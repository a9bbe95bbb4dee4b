"""The plugin module: registration, the default transcriber switch, demo hooks."""

from __future__ import annotations

import httpx
import omnichannel_voice._plugin as plugin
import pytest
from omnichannel_voice import TwilioVoiceAdapter, WhisperTranscriber, whisper_available

from omnichannel_sdk import Hub


def test_registers_four_adapters() -> None:
    names: list[str] = []
    plugin.omni_register_adapters(lambda cls: names.append(cls.name))
    assert names == ["twilio-voice", "deepgram", "assemblyai", "amazon-transcribe"]


def test_default_transcriber_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[object] = []
    monkeypatch.setenv("OMNICHANNEL_TRANSCRIBER", "off")
    plugin.omni_register_transcribers(found.append)
    assert found == []
    monkeypatch.setenv("OMNICHANNEL_TRANSCRIBER", "on")
    plugin.omni_register_transcribers(found.append)
    if whisper_available():
        [engine] = found
        assert isinstance(engine, WhisperTranscriber)
        plugin.omni_register_transcribers(found.append)
        assert found[1] is engine  # one model per process
    else:
        assert found == []


@pytest.mark.anyio
async def test_demo_channel_simulation_and_vendor(tmp_path) -> None:  # type: ignore[no-untyped-def]
    public = "http://127.0.0.1:8000"
    channels = plugin.DEMO.channels(public)
    config = {"omnichannel": {"store": f"sqlite:///{tmp_path / 'd.db'}", "bus": "memory",
                              "blobs": "memory://", "public_url": public, "http_transport": "httpx"},
              "channels": channels}
    hub = Hub.from_config(config, plugins=[plugin], entry_points=False)
    adapter = hub.adapter("demo-voice")
    assert isinstance(adapter, TwilioVoiceAdapter)
    requests = plugin.DEMO.simulate("demo-voice", "twilio-voice", public)
    assert plugin.DEMO.simulate("demo-voice", "deepgram", public) is None
    for request in requests:
        adapter.verify(request)
        assert adapter.parse(request).items
    app = plugin.DEMO.vendor("twilio-voice", hub)
    async with hub:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://stub") as client:
            call = await client.post("/2010-04-01/Accounts/AC1/Calls.json", data={"To": "+1"})
            assert call.status_code == 201 and call.json()["sid"].startswith("CA")
            audio = await client.get("/2010-04-01/Accounts/AC1/Recordings/RE1.wav")
            assert audio.content.startswith(b"RIFF")
