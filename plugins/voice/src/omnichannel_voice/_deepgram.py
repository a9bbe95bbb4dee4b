"""Deepgram: transcription results by callback (see :mod:`._vendors` for the shared part)."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import orjson
from pydantic import SecretStr

from omnichannel_sdk import (
    REDACTED,
    AdapterSettings,
    SignatureError,
    TranscriptPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    constant_time_equals,
)

from ._transcripts import deepgram_transcript
from ._vendors import (
    TranscriptVendorAdapter,
    _basic_password,
    _job_id,
)

__all__ = ["DeepgramAdapter", "DeepgramSettings"]


class DeepgramSettings(AdapterSettings):
    """Settings of a ``deepgram`` channel."""

    callback_secret: SecretStr
    """Password of the Basic auth in our callback URL (or the ``callback_secret`` extra)."""
    callback_user: str = "omnichannel"
    """User name of the Basic auth in our callback URL."""
    api_key: SecretStr | None = None
    """API key, to submit audio (``Authorization: Token …``)."""
    model: str = "nova-3"
    """Model for submissions."""


class DeepgramAdapter(TranscriptVendorAdapter[DeepgramSettings]):
    """Deepgram pre-recorded transcription results (``/v1/listen?callback=…``)."""

    name: ClassVar[str] = "deepgram"
    default_api_base: ClassVar[str | None] = "https://api.deepgram.com"

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

    def storable_body(self, request: WebhookRequest) -> bytes:
        """The result without ``metadata.extra.callback_secret`` (Deepgram echoes it back)."""
        try:
            document = orjson.loads(request.body)
            extra = document["metadata"]["extra"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return request.body
        if not isinstance(extra, dict) or "callback_secret" not in extra:
            return request.body
        extra["callback_secret"] = REDACTED
        return orjson.dumps(document)

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
