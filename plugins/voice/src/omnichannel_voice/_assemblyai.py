"""AssemblyAI: transcripts announced by webhook, then fetched (see :mod:`._vendors`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import SecretStr

from omnichannel_sdk import (
    AdapterContext,
    AdapterSettings,
    FollowUp,
    ParseResult,
    SignatureError,
    TranscriptPart,
    UnparseablePayloadError,
    WebhookRequest,
    constant_time_equals,
)

from ._attach import attach_transcript
from ._transcripts import assemblyai_transcript
from ._vendors import (
    _FETCH,
    TranscriptVendorAdapter,
    _job_id,
    _json_object,
)

__all__ = ["AssemblyAIAdapter", "AssemblyAISettings"]


class AssemblyAISettings(AdapterSettings):
    """Settings of an ``assemblyai`` channel."""

    api_key: SecretStr
    """API key: fetches transcripts and submits audio."""
    webhook_secret: SecretStr
    """Value of the custom webhook auth header (``webhook_auth_header_value``)."""
    webhook_header: str = "X-Omnichannel-Webhook-Secret"
    """Name of that header (``webhook_auth_header_name``)."""


class AssemblyAIAdapter(TranscriptVendorAdapter[AssemblyAISettings]):
    """AssemblyAI transcripts: the webhook names the transcript, which is fetched with the key."""

    name: ClassVar[str] = "assemblyai"
    default_api_base: ClassVar[str | None] = "https://api.assemblyai.com"

    def __init__(self, settings: AssemblyAISettings, context: AdapterContext) -> None:
        super().__init__(settings, context)
        header = getattr(self.settings, "webhook_header", None)
        if isinstance(header, str):  # the configured auth header is a bearer secret
            self.secret_headers = type(self).secret_headers | {header.lower()}

    def verify(self, request: WebhookRequest) -> None:
        """The custom webhook auth header carries the secret."""
        given = request.header(self.settings.webhook_header)
        if not given:
            raise SignatureError(f"missing {self.settings.webhook_header}", adapter=self.name)
        if not constant_time_equals(given, self.settings.webhook_secret.get_secret_value()):
            raise SignatureError(f"bad {self.settings.webhook_header}", adapter=self.name)

    def _result_id(self, document: dict[str, Any]) -> str:
        value = document.get("transcript_id") or document.get("id")
        if not isinstance(value, str) or not value or len(value) > 200:
            raise UnparseablePayloadError("no transcript_id", adapter=self.name)
        return value

    def _transcript(self, document: dict[str, Any]) -> TranscriptPart:
        return assemblyai_transcript(document)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """A full transcript document is parsed at once; a webhook (``transcript_id`` and
        ``status`` only) makes the hub fetch the transcript in the background."""
        document = _json_object(request, self.name)
        result_id = self._result_id(document)
        if "transcript_id" not in document:  # the transcript resource itself (a file, a replay)
            return self._deliver(request, result_id, self._transcript(document), document)
        status = document.get("status")
        if status != "completed":
            if status == "error":
                return ParseResult()  # the vendor gave up; nothing to attach
            raise UnparseablePayloadError(f"unexpected status {status!r}", adapter=self.name)
        if not self.context.services.running:
            return ParseResult()  # `omnichannel normalize`: nothing to show before the fetch
        return ParseResult(jobs=[FollowUp(_FETCH, {"id": result_id, "url": request.url})])

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        """Fetch a finished transcript (``transcript_id`` webhooks), or attach one."""
        if task == _FETCH:
            await self._fetch_and_deliver(WebhookRequest("POST", str(data["url"])), str(data["id"]))
        else:
            await super().run_job(task, data)

    async def fetch_transcript(self, transcript_id: str) -> dict[str, Any]:
        """GET ``/v2/transcript/{id}`` with the API key."""
        if not transcript_id.replace("-", "").replace("_", "").isalnum():
            raise UnparseablePayloadError("odd transcript id", adapter=self.name)
        response = await self.request(
            "GET", f"{self.api_base}/v2/transcript/{transcript_id}",
            headers={"authorization": self.settings.api_key.get_secret_value()})
        self.raise_for_status(response)
        try:
            document = response.json()
        except ValueError:
            raise UnparseablePayloadError("transcript is not JSON", adapter=self.name) from None
        if not isinstance(document, dict):
            raise UnparseablePayloadError("transcript is not an object", adapter=self.name)
        return document

    async def _fetch_and_deliver(self, request: WebhookRequest, transcript_id: str) -> None:
        document = await self.fetch_transcript(transcript_id)
        transcript = self._transcript(document)
        services = self.context.services
        message_id = self._message_hint(request, document)
        if message_id:
            await attach_transcript(services, message_id, transcript,
                                    metadata={"source": self.name, "result_id": transcript_id})
        else:
            await services.ingest([self._standalone(request, transcript_id, transcript)])

    async def submit(self, audio: bytes | str, *, content_type: str | None = None,
                     message_id: str | None = None) -> str:
        """Upload bytes (``/v2/upload``) if needed, then ``POST /v2/transcript`` with speaker
        labels and our webhook with its auth header."""
        headers = {"authorization": self.settings.api_key.get_secret_value()}
        if isinstance(audio, bytes):
            uploaded = await self.request("POST", f"{self.api_base}/v2/upload", content=audio,
                                          headers={**headers,
                                                   "content-type": "application/octet-stream"})
            audio = _job_id(self, uploaded, "upload_url")
        response = await self.request("POST", f"{self.api_base}/v2/transcript", headers=headers, json={
            "audio_url": audio, "speaker_labels": True,
            "webhook_url": self.callback_url(message_id),
            "webhook_auth_header_name": self.settings.webhook_header,
            "webhook_auth_header_value": self.settings.webhook_secret.get_secret_value()})
        return _job_id(self, response, "id")


# ----------------------------------------------------------------------------------------------
