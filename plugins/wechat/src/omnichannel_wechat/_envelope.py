"""The webhook envelope: signatures (``signature`` / ``msg_signature``), replay memory in
plaintext mode, the GET handshake, decryption in compatible / safe mode, and the answers
(``success``, or a passive reply sealed in safe mode).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from omnichannel_sdk import (
    ChannelAdapter,
    Message,
    ParseResult,
    Part,
    ReplayGuard,
    SignatureError,
    TextPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    check_timestamp,
    constant_time_equals,
    replay_fingerprint,
)

from ._crypto import CryptoError, WeChatCrypto, sha1_signature
from ._settings import WeChatSettings
from ._xml import XmlError, build_xml, parse_xml

__all__ = ["WeChatEnvelope"]


class WeChatEnvelope(ChannelAdapter[WeChatSettings]):
    """Webhook requests in and answers out, signed and (in safe mode) encrypted."""

    _app_id: str
    _crypto: WeChatCrypto | None
    _token_value: str
    _memo: tuple[bytes, dict[str, Any]] | None

    def _check_signature(self, request: WebhookRequest, name: str, *extra: str) -> None:
        query = request.query
        given = query.get(name)
        timestamp = query.get("timestamp")
        nonce = query.get("nonce")
        if not given or timestamp is None or nonce is None:
            raise SignatureError(f"missing {name}, timestamp or nonce", adapter=self.name)
        expected = sha1_signature(self._token_value, timestamp, nonce, *extra)
        if not constant_time_equals(given.lower(), expected):
            raise SignatureError(f"bad {name}", adapter=self.name)
        skew = self.settings.max_clock_skew
        if skew is not None:
            check_timestamp(timestamp, skew, adapter=self.name)

    async def check_replay(self, request: WebhookRequest) -> None:
        """Plaintext mode signs only token, timestamp and nonce, not the body: each nonce is
        remembered for the signature window (in ``context.kv``), so one signed query cannot
        carry another body. WeChat's own retry (same query, same body) passes and is
        de-duplicated by ``MsgId``. Encrypted modes sign the body and need no memory."""
        if self._encrypted(request):
            return
        guard = ReplayGuard(self.context.kv, f"wechat:{self.context.key}",
                            tolerance=self.settings.max_clock_skew or 300.0, adapter=self.name)
        query = request.query
        nonce = f"{query.get('timestamp', '')}:{query.get('nonce', '')}"
        await guard.admit(nonce, replay_fingerprint(request.body))

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Answer WeChat's server-verification GET with ``echostr`` once ``signature`` (SHA-1 of
        the sorted token, timestamp and nonce) checks out."""
        self._check_signature(request, "signature")
        echostr = request.query.get("echostr")
        if echostr is None:
            raise SignatureError("missing echostr", adapter=self.name)
        return WebhookResponse(200, echostr, "text/plain; charset=utf-8")

    @staticmethod
    def _encrypted(request: WebhookRequest) -> bool:
        return request.query.get("encrypt_type", "").lower() == "aes"

    def _envelope(self, request: WebhookRequest) -> dict[str, Any]:
        # verify() and parse() run back to back on one request: read the outer XML once
        memo = self._memo
        if memo is not None and memo[0] is request.body:
            return memo[1]
        fields = parse_xml(request.body)
        self._memo = (request.body, fields)
        return fields

    def verify(self, request: WebhookRequest) -> None:
        """Plaintext mode: ``signature`` over token, timestamp, nonce. Compatible and safe mode
        (``encrypt_type=aes``): ``msg_signature`` over those and the ``Encrypt`` element, so
        the body itself is signed. With an EncodingAESKey configured, unencrypted requests are
        refused (plaintext mode does not sign the body)."""
        if not self._encrypted(request):
            if self._crypto is not None:
                raise SignatureError("plaintext request, but an EncodingAESKey is configured",
                                     adapter=self.name)
            self._check_signature(request, "signature")
            return
        if self._crypto is None:
            raise SignatureError("encrypted request, but no encoding_aes_key is configured",
                                 adapter=self.name)
        try:
            encrypt = self._envelope(request).get("Encrypt")
        except XmlError as exc:
            raise SignatureError(f"cannot read the envelope: {exc}", adapter=self.name) from None
        if not isinstance(encrypt, str) or not encrypt:
            raise SignatureError("no Encrypt element", adapter=self.name)
        # msg_signature covers token, timestamp and nonce too: ``signature`` adds nothing
        self._check_signature(request, "msg_signature", encrypt)

    def decode(self, request: WebhookRequest) -> dict[str, Any]:
        """The message fields of a (verified) request: decrypted in compatible / safe mode.

        Raises :class:`~omnichannel_sdk.UnparseablePayloadError`.
        """
        try:
            envelope = self._envelope(request)
        except XmlError as exc:
            raise UnparseablePayloadError(str(exc), adapter=self.name) from None
        encrypt = envelope.get("Encrypt")
        if encrypt is None:
            return envelope
        if self._crypto is None:
            raise UnparseablePayloadError("encrypted message but no encoding_aes_key",
                                          adapter=self.name)
        if not isinstance(encrypt, str):
            raise UnparseablePayloadError("Encrypt is not text", adapter=self.name)
        try:
            return parse_xml(self._crypto.decrypt(encrypt.strip()))
        except (CryptoError, XmlError) as exc:
            raise UnparseablePayloadError(f"cannot decrypt: {exc}", adapter=self.name) from None

    # -- inbound: answers ------------------------------------------------------------------

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """``success``: WeChat stops retrying and shows the customer nothing."""
        return WebhookResponse(200, b"success", "text/plain; charset=utf-8")

    def passive_response(self, request: WebhookRequest, inbound: Message, reply: Message,
                         parts: Sequence[Part]) -> WebhookResponse | None:
        """One text reply riding on the webhook answer, encrypted when the request was.
        Anything else (media needs an upload first, several messages) returns ``None``."""
        if len(parts) != 1 or not isinstance(parts[0], TextPart):
            return None
        ours = inbound.recipients[0].handle if inbound.recipients else self._app_id
        xml = build_xml({"ToUserName": inbound.sender.handle, "FromUserName": ours,
                         "CreateTime": int(time.time()), "MsgType": "text",
                         "Content": parts[0].text})
        if self._encrypted(request) and self._crypto is not None:
            xml = self.seal(xml)
        return WebhookResponse(200, xml, "application/xml; charset=utf-8")

    def seal(self, xml: bytes, timestamp: str | None = None, nonce: str | None = None) -> bytes:
        """``xml`` encrypted and signed as a safe-mode reply envelope."""
        if self._crypto is None:
            raise UnsupportedFeatureError("safe mode needs encoding_aes_key")
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt = self._crypto.encrypt(xml)
        signature = sha1_signature(self._token_value, timestamp, nonce, encrypt)
        return build_xml({"Encrypt": encrypt, "MsgSignature": signature, "TimeStamp": timestamp,
                          "Nonce": nonce})
