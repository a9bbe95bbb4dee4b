"""Amazon Transcribe: output JSON forwarded by a Lambda, an API destination or SNS (see
:mod:`._vendors` and :mod:`._sns`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import orjson
from pydantic import Field, SecretStr, model_validator

from omnichannel_sdk import (
    AdapterSettings,
    Capabilities,
    FollowUp,
    InboundMessage,
    Message,
    ParseResult,
    Part,
    ProviderError,
    ReplayGuard,
    SendResult,
    SignatureError,
    TranscriptPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    constant_time_equals,
    replay_fingerprint,
)

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
from ._transcripts import amazon_transcript
from ._vendors import (
    _CONFIRM,
    _MAX_BODY,
    JOB_PREFIX,
    TranscriptVendorAdapter,
    _json_object,
    log,
    transcribe_signature,
)

__all__ = ["AmazonTranscribeAdapter", "AmazonTranscribeSettings"]


class AmazonTranscribeSettings(AdapterSettings):
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
    sns_max_age: float = Field(default=3600.0, gt=0)
    """Refuse SNS documents whose signed ``Timestamp`` is further than this many seconds
    from now (SNS retries an HTTP delivery for up to an hour with its longest policy);
    each ``MessageId`` is remembered as long, so a document cannot be replayed meanwhile."""

    @model_validator(mode="after")
    def _some_authentication(self) -> AmazonTranscribeSettings:
        if self.shared_secret is None and not self.sns_topic_arns:
            raise ValueError("set shared_secret, sns_topic_arns, or both")
        for arn in self.sns_topic_arns:
            if not arn.startswith("arn:aws") or arn.count(":") != 5:
                raise ValueError(f"not an SNS topic ARN: {arn[:80]!r}")
        return self


class AmazonTranscribeAdapter(TranscriptVendorAdapter[AmazonTranscribeSettings]):
    """Amazon Transcribe job outputs, forwarded to the webhook (or read from a file).

    Authenticated by a shared secret (``X-Transcribe-Signature`` / ``X-Transcribe-Token``) set
    by whatever forwards the output, or as an Amazon SNS HTTPS subscription whose message
    signatures are checked against SNS's signing certificate (topics in ``sns_topic_arns``).
    """

    name: ClassVar[str] = "amazon-transcribe"
    capabilities: ClassVar[Capabilities] = Capabilities()

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
        stamp = document.get("Timestamp")
        try:
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            raise SignatureError("SNS Timestamp is not an ISO 8601 time", adapter=self.name) from None
        self._guard().check_time(when)

    def _guard(self) -> ReplayGuard:
        return ReplayGuard(self.context.kv, f"sns:{self.context.key}",
                           tolerance=self.settings.sns_max_age, adapter=self.name)

    async def check_replay(self, request: WebhookRequest) -> None:
        """An SNS ``MessageId`` is remembered for ``sns_max_age``: SNS's own retry (same
        document) passes and is de-duplicated, the same id with another document is refused."""
        document = self._sns_document(request)
        if document is None or request.header("x-transcribe-signature") \
                or request.header("x-transcribe-token"):
            return
        await self._guard().admit(str(document.get("MessageId") or ""),
                                  replay_fingerprint(request.body))

    def _trusts_query(self, request: WebhookRequest) -> bool:
        # SNS signs only its document and X-Transcribe-Signature only the body: anyone can
        # replay either to another URL, so their query parameters never steer a transcript.
        # X-Transcribe-Token authenticates the whole request (the forwarder chose the URL).
        return bool(request.header("x-transcribe-token")) and not request.header(
            "x-transcribe-signature") and self._sns_document(request) is None

    def _message_hint(self, request: WebhookRequest, document: dict[str, Any]) -> str | None:
        """Our message the job belongs to: a job named ``omnichannel-<message id>`` (signed with
        the output), or ``?message=`` on a request authenticated by ``X-Transcribe-Token``."""
        job = document.get("jobName")
        if isinstance(job, str) and job.startswith(JOB_PREFIX) and len(job) < 100 + len(JOB_PREFIX):
            return job[len(JOB_PREFIX):] or None
        return super()._message_hint(request, document) if self._trusts_query(request) else None

    def _standalone(self, request: WebhookRequest, result_id: str,
                    transcript: TranscriptPart) -> InboundMessage:
        if not self._trusts_query(request):  # unsigned from/to must not pick a conversation
            request = WebhookRequest(request.method, request.url.split("?", 1)[0],
                                     request.headers, request.body)
        return super()._standalone(request, result_id, transcript)

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
