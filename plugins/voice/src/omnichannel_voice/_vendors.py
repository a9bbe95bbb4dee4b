"""Speech-to-text vendors whose results arrive by webhook: what ``deepgram`` (:mod:`._deepgram`),
``assemblyai`` (:mod:`._assemblyai`) and ``amazon-transcribe`` (:mod:`._amazon`) share.

Each result becomes a :class:`~omnichannel_sdk.TranscriptPart`. When the callback URL names one
of our messages (``?message=<id>``, as :meth:`TranscriptVendorAdapter.submit` sets it), the
transcript is added to that message (``message.updated``); otherwise the result is stored as a
message of its own, from the caller named by ``?from=`` (or an unknown caller), so
``omnichannel normalize`` can turn a result file into a message.

Webhook authentication:

- Deepgram: Basic auth embedded in the callback URL (``https://user:secret@…``), or the secret
  sent as extra metadata ``callback_secret`` (returned in ``metadata.extra``).
- AssemblyAI: the custom header set with ``webhook_auth_header_name`` / ``_value``.
- Amazon Transcribe (no webhooks of its own; a Lambda, EventBridge API destination or SNS HTTPS
  subscription forwards the output JSON): ``X-Transcribe-Signature: sha256=<hex HMAC-SHA256 of
  the body>`` with the shared secret, ``X-Transcribe-Token: <shared secret>``, or SNS's own
  message signature (see :mod:`omnichannel_voice._sns`) from an allowed topic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from omnichannel_sdk import (
    Address,
    Capabilities,
    ChannelAdapter,
    FollowUp,
    InboundMessage,
    MediaPart,
    Message,
    ParseResult,
    Part,
    SendResult,
    SettingsT,
    TranscriptPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
)

from ._attach import attach_transcript

__all__ = [
    "TranscriptVendorAdapter",
    "JOB_PREFIX",
    "transcribe_signature",
]

JOB_PREFIX = "omnichannel-"
"""Name an Amazon Transcribe job ``omnichannel-<message id>`` to have its output added to
that message (the name travels inside the signed output)."""

_MAX_BODY = 20 * 1024 * 1024

log = logging.getLogger("omnichannel_voice")

_ATTACH = "attach-transcript"
"""Job: put a vendor's transcript on the stored message its callback URL names."""
_FETCH = "fetch-transcript"
"""Job: fetch a finished AssemblyAI transcript, then attach or store it."""
_CONFIRM = "confirm-subscription"
"""Job: confirm an SNS subscription (GET its ``SubscribeURL``)."""


def transcribe_signature(secret: str, body: bytes) -> str:
    """The ``X-Transcribe-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _basic_password(request: WebhookRequest) -> str | None:
    header = request.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def _json_object(request: WebhookRequest, adapter: str) -> dict[str, Any]:
    if len(request.body) > _MAX_BODY:
        raise UnparseablePayloadError("result larger than 20 MB", adapter=adapter)
    body = request.json()
    if not isinstance(body, dict):
        raise UnparseablePayloadError("body is not a JSON object", adapter=adapter)
    return body


class TranscriptVendorAdapter(ChannelAdapter[SettingsT]):
    """Base of the transcript vendors: results in, audio submitted for transcription out.
    Generic over the vendor's settings model (``TranscriptVendorAdapter[DeepgramSettings]``)."""

    channel: ClassVar[str] = "voice"
    capabilities: ClassVar[Capabilities] = Capabilities(media_kinds=frozenset({"audio"}))

    def _message_hint(self, request: WebhookRequest, document: dict[str, Any]) -> str | None:
        """Our message id the result belongs to (``?message=``)."""
        value = request.query.get("message")
        return value if value and len(value) < 100 else None

    def _result_id(self, document: dict[str, Any]) -> str:
        raise NotImplementedError

    def _transcript(self, document: dict[str, Any]) -> TranscriptPart:
        raise NotImplementedError

    def _standalone(self, request: WebhookRequest, result_id: str,
                    transcript: TranscriptPart) -> InboundMessage:
        caller = request.query.get("from") or ""
        ours = request.query.get("to") or ""
        try:
            sender = Address(channel=self.channel, handle=caller or "unknown-caller")
            recipients = [Address(channel=self.channel, handle=ours)] if ours else []
        except ValueError as exc:
            raise UnparseablePayloadError(f"bad from/to in the callback URL: {exc}",
                                          adapter=self.name) from None
        return InboundMessage(
            external_id=f"{self.name}:{result_id}", sender=sender, recipients=recipients,
            parts=[transcript],
            thread_key=f"{sender.handle}|{ours}" if caller else f"{self.name}:{result_id}",
            contact_hints=[Address(channel="sms", handle=sender.handle)] if caller else [],
            metadata={"transcript_vendor": self.name, "result_id": result_id})

    def _deliver(self, request: WebhookRequest, result_id: str,
                 transcript: TranscriptPart, document: dict[str, Any]) -> ParseResult:
        message_id = self._message_hint(request, document)
        if message_id and self.context.services.running:
            # onto our stored message, in a durable job (stored before the vendor is answered)
            return ParseResult(jobs=[FollowUp(_ATTACH, {
                "message_id": message_id, "transcript": transcript.model_dump(mode="json"),
                "metadata": {"source": self.name, "result_id": result_id}})])
        return ParseResult(items=[self._standalone(request, result_id, transcript)])

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        """The durable follow-ups of ``parse``: attach a transcript to our stored message."""
        if task == _ATTACH:
            await attach_transcript(self.context.services, str(data["message_id"]),
                                    TranscriptPart.model_validate(data["transcript"]),
                                    metadata=dict(data.get("metadata") or {}))
        else:
            await super().run_job(task, data)

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The vendor's result document → a transcript (on our message, or a message)."""
        document = _json_object(request, self.name)
        result_id = self._result_id(document)
        return self._deliver(request, result_id, self._transcript(document), document)

    def callback_url(self, message_id: str | None) -> str:
        """Where the vendor posts the result of a submission for ``message_id``."""
        url = self.context.webhook_url
        return f"{url}?{urlencode({'message': message_id})}" if message_id else url

    async def submit(self, audio: bytes | str, *, content_type: str | None = None,
                     message_id: str | None = None) -> str:
        """Hand ``audio`` (bytes, or a URL the vendor can fetch) to the vendor; the result
        comes back to this channel's webhook. Returns the vendor's job id."""
        raise UnsupportedFeatureError(f"{self.name} cannot start transcriptions")

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Submit every audio part of ``message`` for transcription (results by webhook)."""
        ids: list[str] = []
        for part in parts:
            if isinstance(part, MediaPart) and part.kind == "audio":
                audio: bytes | str | None = None
                if part.blob_key and self.context.blobs is not None:
                    audio = await self.context.blobs.get(part.blob_key)
                elif part.url and part.url.startswith("https://"):
                    audio = part.url
                if audio is not None:
                    ids.append(await self.submit(audio, content_type=part.content_type,
                                                 message_id=message.id))
        if not ids:
            raise UnsupportedFeatureError(f"{self.name} only transcribes audio")
        return SendResult(external_ids=ids, status="queued")


# ----------------------------------------------------------------------------------------------



def _job_id(adapter: ChannelAdapter, response: httpx.Response, field: str) -> str:
    adapter.raise_for_status(response)
    try:
        value = response.json()[field]
    except (ValueError, KeyError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise adapter.error_for_status(502, response, None, f"no {field} in the answer")
    return value


# ----------------------------------------------------------------------------------------------
