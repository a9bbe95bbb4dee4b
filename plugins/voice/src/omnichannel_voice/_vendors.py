"""Speech-to-text vendors whose results arrive by webhook: ``deepgram``, ``assemblyai``,
``amazon-transcribe``.

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
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import SecretStr, model_validator

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    Capabilities,
    ChannelAdapter,
    FollowUp,
    InboundMessage,
    MediaPart,
    Message,
    ParseResult,
    Part,
    ProviderError,
    SendResult,
    SignatureError,
    TranscriptPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    constant_time_equals,
)

from ._attach import attach_transcript
from ._background import schedule
from ._sns import (
    SNS_TYPES,
    CertificatePendingError,
    cached_key,
    fetch_certificate,
    is_sns_url,
    load_cached_certificates,
    verify_sns_signature,
)
from ._transcripts import amazon_transcript, assemblyai_transcript, deepgram_transcript

__all__ = [
    "AmazonTranscribeAdapter",
    "AssemblyAIAdapter",
    "DeepgramAdapter",
    "TranscriptVendorAdapter",
    "transcribe_signature",
]

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


class TranscriptVendorAdapter(ChannelAdapter):
    """Base of the transcript vendors: results in, audio submitted for transcription out."""

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


class DeepgramAdapter(TranscriptVendorAdapter):
    """Deepgram pre-recorded transcription results (``/v1/listen?callback=…``)."""

    name: ClassVar[str] = "deepgram"
    default_api_base: ClassVar[str | None] = "https://api.deepgram.com"

    class Settings(AdapterSettings):
        """Settings of a ``deepgram`` channel."""

        callback_secret: SecretStr
        """Password of the Basic auth in our callback URL (or the ``callback_secret`` extra)."""
        callback_user: str = "omnichannel"
        """User name of the Basic auth in our callback URL."""
        api_key: SecretStr | None = None
        """API key, to submit audio (``Authorization: Token …``)."""
        model: str = "nova-3"
        """Model for submissions."""

    settings: Settings

    def verify(self, request: WebhookRequest) -> None:
        """Basic auth password, or ``metadata.extra.callback_secret``, equals the secret."""
        secret = self.settings.callback_secret.get_secret_value()
        password = _basic_password(request)
        if password is not None:
            if constant_time_equals(password, secret):
                return
            raise SignatureError("bad Basic auth on the Deepgram callback", adapter=self.name)
        try:
            body = orjson.loads(request.body)
            given = body["metadata"]["extra"]["callback_secret"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise SignatureError("Deepgram callback without credentials", adapter=self.name) from None
        if not isinstance(given, str) or not constant_time_equals(given, secret):
            raise SignatureError("bad callback_secret on the Deepgram callback", adapter=self.name)

    def _message_hint(self, request: WebhookRequest, document: dict[str, Any]) -> str | None:
        extra = (document.get("metadata") or {}).get("extra") or {}
        value = request.query.get("message") or (extra.get("message") if isinstance(extra, dict)
                                                 else None)
        return value if isinstance(value, str) and 0 < len(value) < 100 else None

    def _result_id(self, document: dict[str, Any]) -> str:
        metadata = document.get("metadata")
        request_id = metadata.get("request_id") if isinstance(metadata, dict) else None
        if not isinstance(request_id, str) or not request_id:
            raise UnparseablePayloadError("no metadata.request_id", adapter=self.name)
        return request_id

    def _transcript(self, document: dict[str, Any]) -> TranscriptPart:
        return deepgram_transcript(document)

    def callback_url(self, message_id: str | None) -> str:
        """Our webhook with Basic-auth credentials embedded, as Deepgram recommends."""
        parts = urlsplit(super().callback_url(message_id))
        user = self.settings.callback_user
        secret = self.settings.callback_secret.get_secret_value()
        netloc = f"{user}:{secret}@{parts.netloc}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    async def submit(self, audio: bytes | str, *, content_type: str | None = None,
                     message_id: str | None = None) -> str:
        """POST to ``/v1/listen`` with diarization and utterances, results by callback."""
        if self.settings.api_key is None:
            raise UnsupportedFeatureError(f"{self.name}: set api_key to submit audio")
        params = {"callback": self.callback_url(message_id), "model": self.settings.model,
                  "diarize": "true", "utterances": "true", "punctuate": "true",
                  "smart_format": "true"}
        headers = {"authorization": f"Token {self.settings.api_key.get_secret_value()}"}
        if isinstance(audio, bytes):
            headers["content-type"] = content_type or "audio/wav"
            response = await self.request("POST", f"{self.api_base}/v1/listen", params=params,
                                          content=audio, headers=headers)
        else:
            response = await self.request("POST", f"{self.api_base}/v1/listen", params=params,
                                          json={"url": audio}, headers=headers)
        return _job_id(self, response, "request_id")


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


class AssemblyAIAdapter(TranscriptVendorAdapter):
    """AssemblyAI transcripts: the webhook names the transcript, which is fetched with the key."""

    name: ClassVar[str] = "assemblyai"
    default_api_base: ClassVar[str | None] = "https://api.assemblyai.com"

    class Settings(AdapterSettings):
        """Settings of an ``assemblyai`` channel."""

        api_key: SecretStr
        """API key: fetches transcripts and submits audio."""
        webhook_secret: SecretStr
        """Value of the custom webhook auth header (``webhook_auth_header_value``)."""
        webhook_header: str = "X-Omnichannel-Webhook-Secret"
        """Name of that header (``webhook_auth_header_name``)."""

    settings: Settings

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


class AmazonTranscribeAdapter(TranscriptVendorAdapter):
    """Amazon Transcribe job outputs, forwarded to the webhook (or read from a file).

    Authenticated by a shared secret (``X-Transcribe-Signature`` / ``X-Transcribe-Token``) set
    by whatever forwards the output, or as an Amazon SNS HTTPS subscription whose message
    signatures are checked against SNS's signing certificate (topics in ``sns_topic_arns``).
    """

    name: ClassVar[str] = "amazon-transcribe"
    capabilities: ClassVar[Capabilities] = Capabilities()

    class Settings(AdapterSettings):
        """Settings of an ``amazon-transcribe`` channel (a shared secret, SNS topics, or both)."""

        shared_secret: SecretStr | None = None
        """Key of ``X-Transcribe-Signature`` (HMAC-SHA256 of the body), or the value of
        ``X-Transcribe-Token``, set by whatever forwards the job output."""
        sns_topic_arns: frozenset[str] = frozenset()
        """SNS topics whose signed messages are accepted (``arn:aws:sns:<region>:<account>:<name>``);
        empty: SNS-signed messages are refused. Anyone can make SNS sign a message to any URL
        from a topic of their own, so the topic is what proves it is yours."""
        confirm_subscriptions: bool = True
        """Confirm SNS subscriptions of those topics by fetching their ``SubscribeURL``."""

        @model_validator(mode="after")
        def _some_authentication(self) -> AmazonTranscribeAdapter.Settings:
            if self.shared_secret is None and not self.sns_topic_arns:
                raise ValueError("set shared_secret, sns_topic_arns, or both")
            for arn in self.sns_topic_arns:
                if not arn.startswith("arn:aws") or arn.count(":") != 5:
                    raise ValueError(f"not an SNS topic ARN: {arn[:80]!r}")
            return self

    settings: Settings

    async def start(self) -> None:
        """Load the SNS signing certificates other processes already fetched (``kv``)."""
        if self.settings.sns_topic_arns:
            await load_cached_certificates(self)

    def verify(self, request: WebhookRequest) -> None:
        """``X-Transcribe-Signature: sha256=<hex>`` over the body, ``X-Transcribe-Token``, or an
        SNS message signature from one of ``sns_topic_arns``.

        An SNS message whose signing certificate this process does not have yet raises
        :class:`CertificatePendingError` (answered 503: SNS delivers it again) while the
        certificate is fetched in the background.
        """
        signature = request.header("x-transcribe-signature")
        token = request.header("x-transcribe-token")
        if signature or token:
            if self.settings.shared_secret is None:
                raise SignatureError("no shared_secret configured", adapter=self.name)
            secret = self.settings.shared_secret.get_secret_value()
            if signature:
                if not constant_time_equals(signature, transcribe_signature(secret, request.body)):
                    raise SignatureError("bad X-Transcribe-Signature", adapter=self.name)
                return
            if not constant_time_equals(token or "", secret):
                raise SignatureError("bad X-Transcribe-Token", adapter=self.name)
            return
        document = self._sns_document(request)
        if document is None:
            raise SignatureError("missing X-Transcribe-Signature or SNS signature", adapter=self.name)
        self._verify_sns(document)

    def _sns_document(self, request: WebhookRequest) -> dict[str, Any] | None:
        if len(request.body) > _MAX_BODY:
            return None
        try:
            document = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return None
        if (isinstance(document, dict) and document.get("Type") in SNS_TYPES
                and "Signature" in document):
            return document
        return None

    def _verify_sns(self, document: dict[str, Any]) -> None:
        if not self.settings.sns_topic_arns:
            raise SignatureError("SNS messages are not accepted: set sns_topic_arns", adapter=self.name)
        topic = document.get("TopicArn")
        if not isinstance(topic, str) or topic not in self.settings.sns_topic_arns:
            raise SignatureError("SNS message of an unexpected TopicArn", adapter=self.name)
        url = document.get("SigningCertURL")
        if not is_sns_url(url):
            raise SignatureError("SigningCertURL is not an https sns.<region>.amazonaws.com URL",
                                 adapter=self.name)
        assert isinstance(url, str)
        key = cached_key(url)
        if key is None:
            if self.context.services.running:  # best effort: SNS delivers again meanwhile
                schedule(self.context.services, fetch_certificate(self, url),
                         f"{self.name}: SNS certificate")
            raise CertificatePendingError(
                f"{self.name}: fetching the SNS signing certificate; SNS will deliver again")
        try:
            verify_sns_signature(document, key)
        except SignatureError as exc:
            raise SignatureError(exc.detail, adapter=self.name) from None

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The job output, bare or wrapped as an SNS ``Notification`` (``Message`` string);
        SNS subscription and unsubscribe confirmations."""
        document = _json_object(request, self.name)
        kind = document.get("Type")
        if kind == "SubscriptionConfirmation":
            return self._subscription(document)
        if kind == "UnsubscribeConfirmation":
            log.info("%s: SNS unsubscribed %s from %s", self.name, self.context.key,
                     str(document.get("TopicArn"))[:200])
            return ParseResult()
        if kind == "Notification" and isinstance(document.get("Message"), str):
            try:
                document = orjson.loads(document["Message"])
            except orjson.JSONDecodeError:
                raise UnparseablePayloadError("SNS Message is not JSON", adapter=self.name) from None
            if not isinstance(document, dict):
                raise UnparseablePayloadError("SNS Message is not an object", adapter=self.name)
        result_id = self._result_id(document)
        return self._deliver(request, result_id, self._transcript(document), document)

    def _subscription(self, document: dict[str, Any]) -> ParseResult:
        url = document.get("SubscribeURL")
        topic = str(document.get("TopicArn"))[:200]
        if not is_sns_url(url):
            raise UnparseablePayloadError("SubscribeURL is not an https sns.<region>.amazonaws.com URL",
                                          adapter=self.name)
        if topic not in self.settings.sns_topic_arns:
            raise UnparseablePayloadError("subscription to a topic not in sns_topic_arns",
                                          adapter=self.name)
        if self.context.services.running and self.settings.confirm_subscriptions:
            return ParseResult(jobs=[FollowUp(_CONFIRM, {"url": url, "topic": topic})])
        log.info("%s: SNS subscription to %s left unconfirmed", self.name, topic)
        return ParseResult()

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        """Confirm an SNS subscription (a refusal is retried, then dead-lettered), or attach a
        transcript."""
        if task != _CONFIRM:
            await super().run_job(task, data)
        elif not await self.confirm_subscription(str(data["url"]), str(data.get("topic") or "")):
            raise ProviderError(f"{self.name}: SNS refused the subscription confirmation",
                                retryable=True)

    async def confirm_subscription(self, subscribe_url: str, topic: str = "") -> bool:
        """GET the ``SubscribeURL`` of a ``SubscriptionConfirmation`` (through the hub's client,
        only to an ``sns.<region>.amazonaws.com`` host); whether SNS accepted it."""
        if not is_sns_url(subscribe_url):
            raise UnparseablePayloadError("SubscribeURL is not an SNS URL", adapter=self.name)
        response = await self.request("GET", subscribe_url, follow_redirects=False)
        if response.status_code != 200:
            log.warning("%s: SNS refused the confirmation of %s (HTTP %s)", self.name,
                        topic or "a subscription", response.status_code)
            return False
        log.info("%s: confirmed the SNS subscription to %s", self.name, topic or "a topic")
        return True

    def _result_id(self, document: dict[str, Any]) -> str:
        value = document.get("jobName")
        if not isinstance(value, str) or not value or len(value) > 200:
            raise UnparseablePayloadError("no jobName", adapter=self.name)
        return value

    def _transcript(self, document: dict[str, Any]) -> TranscriptPart:
        return amazon_transcript(document)

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Jobs are started with AWS's own tools (S3 + StartTranscriptionJob); not here."""
        raise UnsupportedFeatureError(
            f"{self.name} receives job outputs only; start jobs with AWS tooling")
