"""deepgram, assemblyai, amazon-transcribe: results → transcripts, auth, attach, fetch, submit."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_voice import (
    AmazonTranscribeAdapter,
    AssemblyAIAdapter,
    DeepgramAdapter,
    VendorTranscriber,
    transcribe_signature,
)

from omnichannel_sdk import (
    Address,
    Hub,
    MediaPart,
    Message,
    Part,
    SignatureError,
    TranscriptPart,
    WebhookRequest,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL, ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
DG_SECRET = "dg-callback-secret"
AAI_KEY = "aai-api-key-123"
AAI_SECRET = "aai-webhook-secret"
AWS_SECRET = "aws-shared-secret"
AUDIO_URL = "https://media.example.test/voicemail.wav"


def audio_message(case: ChannelContract, adapter: Any, send: SendCase) -> Message:
    """An outbound 'message' to a transcription vendor: an audio part to transcribe."""
    now = datetime.now(UTC)
    return Message(id="msg_contract", channel="voice", channel_key=case.channel_key,
                   adapter=adapter.name, direction="outbound", conversation_id="conv_contract",
                   sender=Address(channel="voice", handle="us"), recipients=[send.recipient],
                   parts=[MediaPart(kind="audio", url=AUDIO_URL, content_type="audio/wav")],
                   created_at=now, received_at=now, status="queued")


def url(key: str = "contract", **query: str) -> str:
    base = f"{PUBLIC_URL}/webhooks/{key}"
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# -- Deepgram -----------------------------------------------------------------------------------

def dg_basic(body: bytes, target: str, password: str = DG_SECRET) -> WebhookRequest:
    token = base64.b64encode(f"omnichannel:{password}".encode()).decode()
    return WebhookRequest("POST", target, {"content-type": "application/json",
                                           "authorization": f"Basic {token}"}, body)


def dg_extra(body: bytes, target: str) -> WebhookRequest:
    return WebhookRequest("POST", target, {"content-type": "application/json"}, body)


class TestDeepgramContract(ChannelContract):
    adapter_class = DeepgramAdapter
    channel_settings = {"callback_secret": DG_SECRET, "api_key": "dg-api-key"}
    signature_headers = ("authorization",)
    secret_values = (DG_SECRET, "dg-api-key")

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {
            "utterances (extra secret)": dg_extra((SAMPLES / "deepgram_utterances.json").read_bytes(),
                                                  url(**{"from": "%2B14155550123"})),
            "words (basic auth)": dg_basic((SAMPLES / "deepgram_words.json").read_bytes(), url()),
        }

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        if request.header("authorization"):
            return dg_basic(request.body, request.url, password="guess")
        return super().tamper(request)

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        if request.header("authorization"):
            return super().unsigned(request)
        doc = orjson.loads(request.body)
        doc["metadata"]["extra"].pop("callback_secret")
        return dg_extra(orjson.dumps(doc), request.url)

    def malformed_request(self) -> WebhookRequest:
        return dg_basic(b'{"metadata": {"request_id": "x"}, "results": 7}', url())

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.deepgram.com/v1/listen",
                        success=lambda: httpx.Response(200, json={"request_id": "dg-req-1"}),
                        recipient=Address(channel="voice", handle="deepgram"))

    def outbound_message(self, adapter: Any, case: SendCase) -> Message:
        return audio_message(self, adapter, case)

    receipts = False  # the vendor answers with a transcript, not with delivery receipts

    def status_parts(self) -> list[Part]:
        return list(audio_message(self, self.make_adapter(), self.send_case()).parts)

    def unsupported_parts(self) -> list:
        from omnichannel_sdk import TemplatePart

        return [TemplatePart(name="x")]


def test_deepgram_standalone_message_from_caller() -> None:
    adapter = TestDeepgramContract().make_adapter()
    request = TestDeepgramContract().sample_requests()["utterances (extra secret)"]
    [msg] = adapter.parse(request).items
    assert msg.sender.handle == "+14155550123"
    assert msg.external_id == "deepgram:8f9a2c1e-5b3d-4e6f-9a7b-1c2d3e4f5a6b"
    [part] = msg.parts
    assert isinstance(part, TranscriptPart) and part.language == "en"
    assert [s.speaker for s in part.segments] == ["speaker_0", "speaker_1", "speaker_0"]


@pytest.mark.anyio
async def test_deepgram_submit_puts_basic_auth_in_callback() -> None:
    case = TestDeepgramContract()
    async with httpx.AsyncClient() as http:
        adapter = case.make_adapter(http)
        with respx.mock() as router:
            route = router.post(url__startswith="https://api.deepgram.com/v1/listen").mock(
                return_value=httpx.Response(200, json={"request_id": "r1"}))
            assert await adapter.submit(b"RIFF", content_type="audio/wav", message_id="msg_1") == "r1"
            request = route.calls.last.request
        callback = request.url.params["callback"]
        assert callback == f"https://omnichannel:{DG_SECRET}@hooks.example.test/webhooks/contract?message=msg_1"
        assert request.url.params["diarize"] == "true"
        assert request.headers["authorization"] == "Token dg-api-key"
        assert request.content == b"RIFF"


# -- AssemblyAI ---------------------------------------------------------------------------------

def aai(body: bytes, target: str, secret: str = AAI_SECRET) -> WebhookRequest:
    return WebhookRequest("POST", target, {"content-type": "application/json",
                                           "x-omnichannel-webhook-secret": secret}, body)


class TestAssemblyAIContract(ChannelContract):
    adapter_class = AssemblyAIAdapter
    channel_settings = {"api_key": AAI_KEY, "webhook_secret": AAI_SECRET}
    signature_headers = ("x-omnichannel-webhook-secret",)
    secret_values = (AAI_KEY, AAI_SECRET)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {"webhook": aai((SAMPLES / "assemblyai_webhook.json").read_bytes(), url()),
                "transcript file": aai((SAMPLES / "assemblyai_transcript.json").read_bytes(), url())}

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        return aai(request.body, request.url, secret=AAI_SECRET + "x")

    @pytest.fixture
    def vendor(self) -> Iterator[respx.MockRouter]:
        """The webhook sample makes the hub fetch its transcript (a durable job): AssemblyAI
        answers it with the recorded transcript."""
        with respx.mock(assert_all_called=False) as router:
            router.get(url__startswith="https://api.assemblyai.com/v2/transcript/").mock(
                return_value=httpx.Response(200, content=(SAMPLES / "assemblyai_transcript.json")
                                            .read_bytes(), headers={"content-type": "application/json"}))
            yield router

    def malformed_request(self) -> WebhookRequest:
        return aai(b'["not", "an", "object"]', url())

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.assemblyai.com/v2/transcript",
                        success=lambda: httpx.Response(200, json={"id": "aai-1", "status": "queued"}),
                        recipient=Address(channel="voice", handle="assemblyai"))

    def outbound_message(self, adapter: Any, case: SendCase) -> Message:
        return audio_message(self, adapter, case)

    receipts = False  # the vendor answers with a transcript, not with delivery receipts

    def status_parts(self) -> list[Part]:
        return list(audio_message(self, self.make_adapter(), self.send_case()).parts)

    def unsupported_parts(self) -> list:
        from omnichannel_sdk import TemplatePart

        return [TemplatePart(name="x")]


class _Vendors:
    @hookimpl
    def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
        for cls in (DeepgramAdapter, AssemblyAIAdapter, AmazonTranscribeAdapter):
            register(cls)


@pytest.fixture
def vendor_config(omni_config: dict) -> dict:
    omni_config["channels"].update({
        "aai": {"adapter": "assemblyai", **TestAssemblyAIContract.channel_settings},
        "dg": {"adapter": "deepgram", **TestDeepgramContract.channel_settings},
        "aws": {"adapter": "amazon-transcribe", "shared_secret": AWS_SECRET},
    })
    return omni_config


async def _eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


@pytest.mark.anyio
async def test_assemblyai_webhook_fetches_transcript_in_background(vendor_config: dict) -> None:
    import omnichannel_voice._plugin as plugin

    hub = Hub.from_config(vendor_config, plugins=[_Vendors(), plugin])
    transcript_id = "5552493-16d8-42d8-8feb-c2a16b56f6e8"
    async with hub:
        with respx.mock() as router:
            document = (SAMPLES / "assemblyai_transcript.json").read_bytes()
            route = router.get(f"https://api.assemblyai.com/v2/transcript/{transcript_id}").mock(
                return_value=httpx.Response(200, content=document))
            response = await hub.handle_webhook("aai", aai(
                (SAMPLES / "assemblyai_webhook.json").read_bytes(), url("aai", **{"from": "%2B14155550123"})))
            assert response.status == 200

            async def stored():  # type: ignore[no-untyped-def]
                return await hub.store.find_message_by_external("aai", f"assemblyai:{transcript_id}")

            message = await _eventually(stored)
            assert route.calls.last.request.headers["authorization"] == AAI_KEY
        [part] = message.parts
        assert [(s.speaker, s.start, s.end) for s in part.segments] == [
            ("speaker_0", 0.24, 2.1), ("speaker_1", 2.5, 5.32), ("speaker_0", 5.6, 7.25)]
        assert message.sender.handle == "+14155550123"


@pytest.mark.anyio
async def test_vendor_result_attaches_to_named_message(vendor_config: dict) -> None:
    """A result whose callback names our message (as VendorTranscriber submits) updates it."""
    import omnichannel_voice._plugin as plugin

    hub = Hub.from_config(vendor_config, plugins=[_Vendors(), plugin])
    async with hub:
        with respx.mock() as router:
            listen = router.post(url__startswith="https://api.deepgram.com/v1/listen").mock(
                return_value=httpx.Response(200, json={"request_id": "r-9"}))
            # an audio message on another channel, already downloaded
            [stored] = await hub.ingest("aws", [_audio_inbound()])
            blob = await hub.blobs.put(b"RIFFaudio")
            parts = [stored.parts[0].model_copy(update={"blob_key": blob.key})]
            await hub.store.update_message(stored.model_copy(update={"parts": parts}))
            from omnichannel_voice._transcriber import service_for

            service_for(hub).transcribers.insert(0, VendorTranscriber("dg"))

            fresh = await hub.store.get_message(stored.id)
            await service_for(hub).consider(fresh)
            submitted = listen.calls.last.request
            assert submitted.content == b"RIFFaudio"
            assert f"message%3D{stored.id}" in str(submitted.url)
            body = (SAMPLES / "deepgram_words.json").read_bytes()
            await hub.handle_webhook("dg", dg_basic(body, url("dg", message=stored.id)))

            async def transcribed():  # type: ignore[no-untyped-def]
                m = await hub.store.get_message(stored.id)
                return m if any(p.type == "transcript" for p in m.parts) else None

            message = await _eventually(transcribed)
        transcript = message.parts[-1]
        assert [s.text for s in transcript.segments] == ["Hello there.", "Yes, hi."]
        assert message.metadata["transcript"] == {"source": "deepgram",
                                                  "result_id": "0b6f3c2d-7e8a-4b9c-8d1e-2f3a4b5c6d7e"}


def _audio_inbound():  # type: ignore[no-untyped-def]
    from omnichannel_sdk import InboundMessage

    return InboundMessage(external_id="call-1", sender=Address(channel="voice", handle="+14155550123"),
                          parts=[MediaPart(kind="audio", url="https://media.example.test/a.wav")])


# -- Amazon Transcribe --------------------------------------------------------------------------

def aws(body: bytes, target: str) -> WebhookRequest:
    return WebhookRequest("POST", target, {"content-type": "application/json",
                                           "x-transcribe-signature": transcribe_signature(AWS_SECRET, body)},
                          body)


class TestAmazonTranscribeContract(ChannelContract):
    adapter_class = AmazonTranscribeAdapter
    sends_over_http = False
    channel_settings = {"shared_secret": AWS_SECRET}
    signature_headers = ("x-transcribe-signature",)
    secret_values = (AWS_SECRET,)
    supports_send = False  # jobs are started with AWS tooling (S3 + SigV4); outputs only come in

    def sample_requests(self) -> dict[str, WebhookRequest]:
        output = (SAMPLES / "amazon_output.json").read_bytes()
        sns = orjson.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:x",
                            "Message": output.decode()})
        token = WebhookRequest("POST", url(), {"content-type": "application/json",
                                               "x-transcribe-token": AWS_SECRET},
                               output.replace(b"0001", b"0002"))
        return {"output": aws(output, url()), "sns": aws(sns.replace(b"0001", b"0003"), url()),
                "token": token}

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        if request.header("x-transcribe-token"):
            return WebhookRequest("POST", request.url, {"x-transcribe-token": "nope"}, request.body)
        return super().tamper(request)

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        headers = {k: v for k, v in request.headers.items() if not k.startswith("x-transcribe")}
        return WebhookRequest(request.method, request.url, headers, request.body)

    def malformed_request(self) -> WebhookRequest:
        return aws(b'{"jobName": "j", "status": "COMPLETED", "results": {"items": [{}]}}', url())

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://transcribe.invalid/",
                        success=lambda: httpx.Response(200, json={}),
                        recipient=Address(channel="voice", handle="aws"))



def test_amazon_speaker_turns_with_punctuation() -> None:
    adapter = TestAmazonTranscribeContract().make_adapter()
    [msg] = adapter.parse(TestAmazonTranscribeContract().sample_requests()["sns"]).items
    [part] = msg.parts
    assert part.language == "en"
    assert [(s.speaker, s.start, s.end, s.text) for s in part.segments] == [
        ("speaker_0", 0.04, 1.56, "Hello, Acme support."), ("speaker_1", 2.01, 3.64, "Hi, my order is late.")]
    assert 0.9 < part.segments[1].confidence <= 1


def test_amazon_wrong_signature() -> None:
    adapter = TestAmazonTranscribeContract().make_adapter()
    body = (SAMPLES / "amazon_output.json").read_bytes()
    with pytest.raises(SignatureError):
        adapter.verify(WebhookRequest("POST", url(), {"x-transcribe-signature": "sha256=00"}, body))


# -- omnichannel normalize ----------------------------------------------------------------------

@pytest.mark.parametrize(("adapter", "sample", "speakers"), [
    ("deepgram", "deepgram_utterances.json", 3),
    ("assemblyai", "assemblyai_transcript.json", 3),
    ("amazon-transcribe", "amazon_output.json", 2),
])
def test_normalize_a_result_file(adapter: str, sample: str, speakers: int, tmp_path: Path) -> None:
    """``omnichannel normalize --adapter NAME FILE`` turns a result file into a message."""
    code = ("import sys\n"
            "from omnichannel_sdk._plugins import build_plugin_manager as real\n"
            "import omnichannel_sdk._plugins as p, omnichannel_voice._plugin as v\n"
            "p.build_plugin_manager = lambda plugins=(), **kw: real([*plugins, v], **kw)\n"
            "from omnichannel_sdk._cli import main\n"
            "sys.argv = ['omnichannel', 'normalize', '--adapter', sys.argv[1], sys.argv[2]]\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code, adapter, str(SAMPLES / sample)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    messages = out if isinstance(out, list) else out.get("items", [out])
    # the CLI dumps with exclude_defaults, which drops each part's ``type`` discriminator
    [transcript] = [p for p in messages[0]["parts"] if p.get("type", "transcript") == "transcript"
                    and "segments" in p]
    assert len(transcript["segments"]) == speakers


def test_each_vendor_settings_model_is_its_type_argument() -> None:
    from omnichannel_voice import (
        AmazonTranscribeAdapter,
        AmazonTranscribeSettings,
        AssemblyAIAdapter,
        AssemblyAISettings,
        DeepgramAdapter,
        DeepgramSettings,
    )

    assert DeepgramAdapter.Settings is DeepgramSettings
    assert AssemblyAIAdapter.Settings is AssemblyAISettings
    assert AmazonTranscribeAdapter.Settings is AmazonTranscribeSettings
