"""twilio-voice: signatures, callbacks, voicemail TwiML, recordings, late transcripts, sends."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import defusedxml.ElementTree as ET
import httpx
import pytest
import respx
from omnichannel_voice import TwilioVoiceAdapter, twilio_signature

from omnichannel_sdk import (
    Address,
    Hub,
    MediaPart,
    OptedOutError,
    SignatureError,
    TranscriptPart,
    UnparseablePayloadError,
    WebhookRequest,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL, ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
SID = "AC3f0a6b1e2d4c5b6a7980a1b2c3d4e5f6"
TOKEN = "twilio-auth-token-0123456789"
OURS = "+15005550006"
CALLER = "+14155550123"
RECORDING = "RE8a1f2b3c4d5e6f708192a3b4c5d6e7f8"
KEY = "contract"


def signed(url: str, body: bytes, token: str = TOKEN) -> WebhookRequest:
    params = parse_qsl(body.decode(), keep_blank_values=True)
    return WebhookRequest("POST", url, {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(token, url, params)}, body)


def webhook(key: str = KEY, **query: str) -> str:
    url = f"{PUBLIC_URL}/webhooks/{key}"
    return f"{url}?{urlencode(query)}" if query else url


def recording_status(key: str = KEY) -> WebhookRequest:
    return signed(webhook(key, From=CALLER, To=OURS), (SAMPLES / "twilio_recording_status.form").read_bytes())


def transcription(key: str = KEY) -> WebhookRequest:
    return signed(webhook(key), (SAMPLES / "twilio_transcription.form").read_bytes())


def incoming_call(key: str = KEY) -> WebhookRequest:
    return signed(webhook(key), (SAMPLES / "twilio_incoming_call.form").read_bytes())


class TestTwilioVoiceContract(ChannelContract):
    adapter_class = TwilioVoiceAdapter
    channel_settings = {"account_sid": SID, "auth_token": TOKEN, "from_number": OURS}
    signature_headers = ("x-twilio-signature",)
    secret_values = (TOKEN,)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {"recording": recording_status(), "transcription": transcription(),
                "call": incoming_call()}

    def malformed_request(self) -> WebhookRequest:
        return signed(webhook(), b"AccountSid=" + SID.encode() + b"&Foo=bar")

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url=f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls.json",
                        success=lambda: httpx.Response(201, json={"sid": "CA" + "1" * 32,
                                                                  "status": "queued"}),
                        recipient=Address(channel="voice", handle=CALLER))

    def unauthorized_response(self) -> httpx.Response:
        return httpx.Response(401, json={"code": 20003, "message": "Authenticate", "status": 401})

    def rate_limited_response(self) -> httpx.Response:
        return httpx.Response(429, json={"code": 20429, "message": "Too Many Requests"},
                              headers={"Retry-After": "7"})


# -- sans-IO ------------------------------------------------------------------------------------

def adapter() -> TwilioVoiceAdapter:
    return TestTwilioVoiceContract().make_adapter()  # type: ignore[return-value]


def test_recording_becomes_audio_message_threaded_like_sms() -> None:
    result = adapter().parse(recording_status())
    [msg] = result.items
    assert msg.external_id == RECORDING
    assert msg.sender == Address(channel="voice", handle=CALLER)
    assert msg.thread_key == f"{CALLER}|{OURS}"  # twilio-sms's default thread key
    assert Address(channel="sms", handle=CALLER) in msg.contact_hints
    [media] = msg.parts
    assert isinstance(media, MediaPart) and media.kind == "audio"
    assert media.url.endswith(f"/Recordings/{RECORDING}.wav")
    assert media.duration == 14 and media.content_type == "audio/wav"
    assert msg.created_at is not None and msg.created_at.year == 2026
    assert msg.metadata["call_sid"].startswith("CA")


def test_transcription_without_hub_is_a_whole_message() -> None:
    [msg] = adapter().parse(transcription()).items
    _media, transcript = msg.parts
    assert isinstance(transcript, TranscriptPart)
    [segment] = transcript.segments
    assert segment.speaker == "caller" and "order 1234" in segment.text
    assert msg.sender.display_name == "DANA SMITH"
    assert msg.metadata["transcription_sid"].startswith("TR")


def test_incoming_call_answered_with_voicemail_twiml() -> None:
    result = adapter().parse(incoming_call())
    assert result.items == [] and result.response is not None
    root = ET.fromstring(result.response.body)
    assert root.find("Say").text == "Please leave a message after the tone."
    record = root.find("Record")
    callback = record.get("recordingStatusCallback")
    assert callback.startswith(webhook()) and "From=%2B14155550123" in callback
    assert record.get("action") == webhook(step="recorded")
    assert record.get("transcribe") is None


def test_record_action_hangs_up_without_a_message() -> None:
    body = (SAMPLES / "twilio_incoming_call.form").read_bytes() + b"&RecordingSid=RE1&RecordingUrl=x"
    result = adapter().parse(signed(webhook(step="recorded"), body))
    assert result.items == [] and b"<Hangup/>" in result.response.body


def test_failed_or_absent_recording_stores_nothing() -> None:
    body = (SAMPLES / "twilio_recording_status.form").read_bytes().replace(
        b"RecordingStatus=completed", b"RecordingStatus=absent")
    assert adapter().parse(signed(webhook(From=CALLER, To=OURS), body)).items == []


def test_recording_without_numbers_is_unparseable() -> None:
    with pytest.raises(UnparseablePayloadError, match="caller"):
        adapter().parse(signed(webhook(), (SAMPLES / "twilio_recording_status.form").read_bytes()))


def test_other_account_refused() -> None:
    body = (SAMPLES / "twilio_recording_status.form").read_bytes().replace(SID.encode(), b"AC" + b"9" * 32)
    with pytest.raises(UnparseablePayloadError):
        adapter().parse(signed(webhook(From=CALLER, To=OURS), body))


def test_signature_covers_query_and_wrong_token_refused() -> None:
    request = recording_status()
    forged = WebhookRequest("POST", webhook(From="+14155550999", To=OURS), request.headers, request.body)
    with pytest.raises(SignatureError):
        adapter().verify(forged)
    with pytest.raises(SignatureError):
        adapter().verify(signed(webhook(), request.body, token="wrong"))


@pytest.mark.anyio
async def test_media_request_sends_basic_auth_to_twilio_only() -> None:
    async with httpx.AsyncClient() as http:
        a = TestTwilioVoiceContract().make_adapter(http)
        req = await a.media_request(MediaPart(kind="audio", url="https://api.twilio.com/x/RE1.wav"))
        user, _, password = base64.b64decode(req.headers["authorization"].split()[1]).decode().partition(":")
        assert (user, password) == (SID, TOKEN)
        other = await a.media_request(MediaPart(kind="audio", url="https://cdn.example.test/RE1.wav"))
        assert "authorization" not in other.headers


@pytest.mark.anyio
async def test_send_reads_text_and_maps_opt_out() -> None:
    case = TestTwilioVoiceContract()
    async with httpx.AsyncClient() as http:
        a = case.make_adapter(http)
        message = case.outbound_message(a, case.send_case())
        with respx.mock() as router:
            route = router.post(case.send_case().url).mock(return_value=httpx.Response(
                201, json={"sid": "CA" + "2" * 32}))
            result = await a.send(message, message.parts)
            form = dict(parse_qsl(route.calls.last.request.content.decode()))
        assert result.external_ids == ["CA" + "2" * 32]
        assert form["To"] == CALLER and form["From"] == OURS
        assert "<Say" in form["Twiml"] and "Hello from the contract suite" in form["Twiml"]
        with respx.mock() as router:
            router.post(case.send_case().url).mock(return_value=httpx.Response(
                400, json={"code": 21610, "message": "Attempt to send to unsubscribed recipient"}))
            with pytest.raises(OptedOutError):
                await a.send(message, message.parts)


# -- through a hub -------------------------------------------------------------------------------

class _Voice:
    @hookimpl
    def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(TwilioVoiceAdapter)


@pytest.fixture
def voice_config(omni_config: dict) -> dict:
    omni_config["channels"]["voice"] = {"adapter": "twilio-voice", "account_sid": SID,
                                        "auth_token": TOKEN, "from_number": OURS}
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list) -> list:
    import omnichannel_voice._plugin as plugin

    register_plugin.extend([_Voice(), plugin])
    return register_plugin


async def _eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_voicemail_then_late_transcript(voice_config: dict, register_plugin: list) -> None:
    """Recording → audio downloaded with Basic auth → transcript attached → message.updated."""
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt fake-audio"
    hub = Hub.from_config(voice_config, plugins=register_plugin)
    async with hub:
        with respx.mock(assert_all_called=False) as router:
            media = router.get(url__regex=r"^https://api\.twilio\.com/.*/Recordings/RE.*\.wav$").mock(
                return_value=httpx.Response(200, content=wav, headers={"content-type": "audio/x-wav"}))
            events = []

            async def listen() -> None:
                async for event in hub.events():
                    events.append(event)

            listener = asyncio.create_task(listen())
            await asyncio.sleep(0.05)
            response = await hub.handle_webhook("voice", recording_status("voice"))
            assert response.status == 200 and b"<Response/>" in response.body
            stored = await hub.store.find_message_by_external("voice", RECORDING)
            assert stored is not None

            async def downloaded():  # type: ignore[no-untyped-def]
                m = await hub.store.get_message(stored.id)
                return m if m.parts[0].blob_key else None

            message = await _eventually(downloaded)
            assert media.calls.last.request.headers["authorization"].startswith("Basic ")
            assert await hub.blobs.get(message.parts[0].blob_key) == wav

            response = await hub.handle_webhook("voice", transcription("voice"))
            assert response.status == 200

            async def transcribed():  # type: ignore[no-untyped-def]
                m = await hub.store.get_message(stored.id)
                return m if any(p.type == "transcript" for p in m.parts) else None

            message = await _eventually(transcribed)
            assert message.parts[0].blob_key  # the download is kept
            assert "parcel never arrived" in message.parts[1].segments[0].text
            assert message.metadata["transcript"]["source"] == "twilio"
            conversations = await hub.store.list_conversations()
            assert len(conversations) == 1 and conversations[0].thread_key == f"{CALLER}|{OURS}"
            assert len(await hub.store.list_messages(conversations[0].id)) == 1
            contact = await hub.store.get_contact(conversations[0].contact_id)
            assert Address(channel="sms", handle=CALLER) in contact.addresses
            await _eventually(lambda: _async(any(e.type == "message.updated" and
                                                 any(p.type == "transcript" for p in e.message.parts)
                                                 for e in events)))
            listener.cancel()


async def _async(value):  # type: ignore[no-untyped-def]
    return value


@pytest.mark.anyio
async def test_transcript_before_recording_stores_everything(voice_config: dict,
                                                             register_plugin: list) -> None:
    """Only a transcription callback (no status callback configured): one message, both parts."""
    hub = Hub.from_config(voice_config, plugins=register_plugin)
    async with hub:
        with respx.mock(assert_all_called=False) as router:
            router.get(url__regex=r"^https://api\.twilio\.com/").mock(
                return_value=httpx.Response(200, content=b"RIFFfake"))
            await hub.handle_webhook("voice", transcription("voice"))

            async def stored():  # type: ignore[no-untyped-def]
                return await hub.store.find_message_by_external("voice", RECORDING)

            message = await _eventually(stored)
            assert [p.type for p in message.parts] == ["media", "transcript"]
            await hub.handle_webhook("voice", recording_status("voice"))  # late: a duplicate
            [conversation] = await hub.store.list_conversations()
            assert len(await hub.store.list_messages(conversation.id)) == 1


@pytest.mark.anyio
async def test_calls_join_the_sms_conversation_with_thread_with(voice_config: dict, register_plugin: list) -> None:
    """With ``thread_with`` naming the twilio-sms channel, a voicemail lands in the caller's SMS
    conversation, so the agent answering by text sees the call."""
    pytest.importorskip("omnichannel_sms")
    import omnichannel_sms._plugin as sms_plugin
    from omnichannel_sms import twilio_signature as sms_signature

    voice_config["channels"]["voice"]["thread_with"] = "sms"
    voice_config["channels"]["sms"] = {"adapter": "twilio-sms", "account_sid": SID,
                                       "auth_token": TOKEN, "from_number": OURS}
    register_plugin.append(sms_plugin)
    hub = Hub.from_config(voice_config, plugins=register_plugin)
    async with hub:
        body = urlencode({"MessageSid": "SM" + "1" * 32, "AccountSid": SID, "From": CALLER, "To": OURS,
                          "Body": "Can you call me back?", "NumMedia": "0"}).encode()
        url = f"{PUBLIC_URL}/webhooks/sms"
        params = parse_qsl(body.decode(), keep_blank_values=True)
        texted = WebhookRequest("POST", url, {"content-type": "application/x-www-form-urlencoded",
                                              "x-twilio-signature": sms_signature(TOKEN, url, params)}, body)
        assert (await hub.handle_webhook("sms", texted)).status == 200
        with respx.mock(assert_all_called=False) as router:
            router.get(url__regex=r"^https://api\.twilio\.com/").mock(
                return_value=httpx.Response(200, content=b"RIFF", headers={"content-type": "audio/x-wav"}))
            assert (await hub.handle_webhook("voice", recording_status("voice"))).status == 200
        [conversation] = await hub.store.list_conversations()
        assert conversation.channel_key == "sms"
        messages = await hub.store.list_messages(conversation.id)
        assert [m.channel_key for m in messages] == ["sms", "voice"]
        assert messages[1].parts[0].type == "media" and messages[1].parts[0].kind == "audio"


# -- signature port variants ---------------------------------------------------------------------

@pytest.mark.parametrize(("signed_url", "received_url"), [
    ("https://hooks.example.test:443/webhooks/contract?From=%2B1", "https://hooks.example.test/webhooks/contract?From=%2B1"),
    ("https://hooks.example.test/webhooks/contract", "https://hooks.example.test:443/webhooks/contract"),
    ("http://hooks.example.test:80/webhooks/contract", "http://hooks.example.test/webhooks/contract"),
])
def test_signature_with_or_without_default_port(signed_url: str, received_url: str) -> None:
    """Twilio may sign the URL with the default port written out, or without it."""
    body = (SAMPLES / "twilio_incoming_call.form").read_bytes()
    request = signed(signed_url, body)
    adapter().verify(WebhookRequest("POST", received_url, request.headers, body))


def test_other_port_is_not_an_alternative() -> None:
    body = (SAMPLES / "twilio_incoming_call.form").read_bytes()
    request = signed("https://hooks.example.test:8443/webhooks/contract", body)
    with pytest.raises(SignatureError):
        adapter().verify(WebhookRequest("POST", webhook(), request.headers, body))
    request = signed("https://hooks.example.test:443/webhooks/contract", body)
    with pytest.raises(SignatureError):
        adapter().verify(WebhookRequest("POST", "https://hooks.example.test:8443/webhooks/contract",
                                        request.headers, body))


# -- recording callback without numbers: the Calls API -------------------------------------------

CALL_SID = "CA5b9e2a3f0d1c4b6a8e7f9a0b1c2d3e4f"
CALL_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls/{CALL_SID}.json"


def _call(direction: str = "inbound", **extra: str) -> httpx.Response:
    ours, theirs = OURS, CALLER
    numbers = {"from": theirs, "to": ours} if direction == "inbound" else {"from": ours, "to": theirs}
    return httpx.Response(200, json={"sid": CALL_SID, "account_sid": SID, "direction": direction,
                                     "status": "completed", "caller_name": None, **numbers, **extra})


@pytest.fixture
def quick_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TwilioVoiceAdapter, "call_lookup_delays", (0.0, 0.0))


@pytest.mark.anyio
@pytest.mark.parametrize("direction", ["inbound", "outbound-dial"])
async def test_recording_without_numbers_looks_the_call_up(voice_config: dict, register_plugin: list,
                                                           quick_lookups: None, direction: str) -> None:
    """The user's own recordingStatusCallback without From/To: numbers from the Calls API."""
    hub = Hub.from_config(voice_config, plugins=register_plugin)
    async with hub:
        with respx.mock(assert_all_called=False) as router:
            lookup = router.get(CALL_URL).mock(side_effect=[httpx.Response(503), _call(direction)])
            router.get(url__regex=r"/Recordings/").mock(return_value=httpx.Response(
                200, content=b"RIFF", headers={"content-type": "audio/x-wav"}))
            body = (SAMPLES / "twilio_recording_status.form").read_bytes()
            response = await hub.handle_webhook("voice", signed(webhook("voice"), body))
            assert response.status == 200

            async def stored():  # type: ignore[no-untyped-def]
                return await hub.store.find_message_by_external("voice", RECORDING)

            message = await _eventually(stored)
            assert lookup.call_count == 2  # a 503 is retried
            user, _, password = base64.b64decode(
                lookup.calls.last.request.headers["authorization"].split()[1]).decode().partition(":")
            assert (user, password) == (SID, TOKEN)
        assert message.sender.handle == CALLER and message.recipients[0].handle == OURS
        assert message.metadata["direction"] == direction
        [conversation] = await hub.store.list_conversations()
        assert conversation.thread_key == f"{CALLER}|{OURS}"
        assert await hub.store.list_dead_letters() == []


@pytest.mark.anyio
async def test_recording_lookup_failure_is_dead_lettered_and_replayable(
        voice_config: dict, register_plugin: list, quick_lookups: None) -> None:
    hub = Hub.from_config(voice_config, plugins=register_plugin)
    async with hub:
        body = (SAMPLES / "twilio_recording_status.form").read_bytes()
        with respx.mock(assert_all_called=False) as router:
            lookup = router.get(CALL_URL).mock(return_value=httpx.Response(
                404, json={"code": 20404, "message": "The requested resource was not found"}))
            assert (await hub.handle_webhook("voice", signed(webhook("voice"), body))).status == 200

            async def letters():  # type: ignore[no-untyped-def]
                return await hub.store.list_dead_letters()

            [letter] = await _eventually(letters)
            assert lookup.call_count == 1  # a 404 is not retried
        assert CALL_SID in letter.error and TOKEN not in letter.error
        raw = await hub.store.get_raw(letter.raw_id)
        assert raw is not None and raw.body == body
        assert await hub.store.find_message_by_external("voice", RECORDING) is None
        with respx.mock(assert_all_called=False) as router:  # the API is back: replay it
            router.get(CALL_URL).mock(return_value=_call())
            router.get(url__regex=r"/Recordings/").mock(return_value=httpx.Response(
                200, content=b"RIFF", headers={"content-type": "audio/x-wav"}))
            report = await hub.replay([letter.id])
            assert report.replayed == [letter.id]

            async def stored():  # type: ignore[no-untyped-def]
                return await hub.store.find_message_by_external("voice", RECORDING)

            assert (await _eventually(stored)).sender.handle == CALLER
