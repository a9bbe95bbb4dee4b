"""The ``wechat-mp`` adapter: WeChat Official Account webhooks in, customer-service and
template messages out.

Inbound: a GET handshake (``echostr``), then POSTed XML in plaintext, compatible or safe mode
(AES, see :mod:`omnichannel_wechat._crypto`). One request carries one message or event; WeChat
retries three times when it gets no answer within five seconds, so the de-duplication key is
``MsgId`` (events: sender + ``CreateTime`` + event name). The answer is ``success``, or a
passive reply XML (sealed in safe mode) when a hook supplies one.

Outbound: ``cgi-bin/message/custom/send`` inside the 48-hour window, ``template/send`` for
template parts at any time. Every call carries the app's one ``access_token``, shared by all
processes through the hub's key-value store (fetching a new token invalidates the old one, so
only the holder of a ``kv_add`` lock fetches). WeChat answers HTTP 200 with an ``errcode``;
:meth:`WeChatAdapter.error_for_errcode` is the one place those codes become typed errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import orjson
from pydantic import ConfigDict, Field, SecretStr, field_validator

from omnichannel_sdk import (
    AdapterSettings,
    Address,
    AuthenticationError,
    Capabilities,
    ChannelAdapter,
    EventPart,
    InboundMessage,
    LocationPart,
    MediaError,
    MediaPart,
    Message,
    MessageError,
    OmnichannelError,
    OptedOutError,
    ParseResult,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    ReplayGuard,
    SendResult,
    SignatureError,
    StatusUpdate,
    TemplatePart,
    TextPart,
    TransportError,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    WebhookResponse,
    WindowClosedError,
    check_timestamp,
    constant_time_equals,
    replay_fingerprint,
)

from ._crypto import CryptoError, WeChatCrypto, decode_aes_key, sha1_signature
from ._xml import XmlError, build_xml, parse_xml

__all__ = ["WeChatAdapter", "WeChatWindowClosedError"]

DEFAULT_API_BASE = "https://api.weixin.qq.com"
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
"""Invalid, malformed or expired ``access_token``: refresh once and retry the call."""
_AUTH_ERRCODES = frozenset({40002, 40013, 40125, 40164, 41001, 41002, 41004, 48001, 50001, 50002,
                            61024})
_BEIJING = timedelta(hours=8)
_VOICE_TYPES = {"amr": "audio/amr", "speex": "audio/speex", "mp3": "audio/mpeg",
                "silk": "audio/silk"}
_UPLOAD_LIMITS = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024}
_MEDIA_ID_TTL = 2 * 86400  # temporary media live three days at WeChat; keep a margin
_CARDS = ("news", "link", "miniprogrampage")


class WeChatWindowClosedError(RejectedError, WindowClosedError):
    """WeChat refused a customer-service message because the 48-hour window is closed
    (errcode 45015). A :class:`~omnichannel_sdk.WindowClosedError` that is also a
    non-retryable :class:`~omnichannel_sdk.RejectedError`, so the outbox fails it at once."""


class WeChatAdapter(ChannelAdapter):
    """WeChat Official Account (公众号): safe-mode webhooks, passive replies, customer-service
    messages inside 48 hours, template messages outside."""

    name: ClassVar[str] = "wechat-mp"
    channel: ClassVar[str] = "wechat"
    capabilities: ClassVar[Capabilities] = Capabilities(
        # customer-service text is capped at 2048 bytes of UTF-8; 600 characters fit even when
        # every one is CJK (3 bytes)
        max_text_length=600,
        text_overflow="split",
        media_kinds=frozenset({"image", "audio"}),
        max_media_size=_UPLOAD_LIMITS["image"],
        buttons=False,
        quick_replies=False,
        locations=False,
        templates=True,
        session_window=timedelta(hours=48),
        passive_reply=True,
        media_hosts=frozenset({"api.weixin.qq.com", "qpic.cn"}),
    )
    default_api_base: ClassVar[str | None] = DEFAULT_API_BASE

    class Settings(AdapterSettings):
        """``[channels.<key>]`` of a ``wechat-mp`` channel (WeChat console → Basic settings)."""

        # a mistyped secret must not be echoed back in a validation error
        model_config = ConfigDict(**AdapterSettings.model_config, hide_input_in_errors=True)

        app_id: str = Field(min_length=1)
        """The AppID (``wx…``); safe-mode payloads must name it."""
        app_secret: SecretStr
        """The AppSecret, for ``access_token``."""
        token: SecretStr
        """The server-configuration Token that signs webhooks."""
        encoding_aes_key: SecretStr | None = None
        """The 43-character EncodingAESKey (compatible / safe mode); absent: plaintext mode."""
        max_clock_skew: float | None = Field(default=300.0, gt=0)
        """Refuse webhooks whose signed ``timestamp`` is further than this many seconds from
        our clock (replay protection); ``None`` turns the check off."""
        token_refresh_margin: float = Field(default=300.0, ge=0)
        """Fetch a new ``access_token`` this many seconds before the old one expires."""
        token_wait: float = Field(default=10.0, gt=0)
        """How long to wait for another process that is fetching the ``access_token``."""
        token_endpoint: Literal["stable_token", "token"] = "stable_token"
        """``stable_token`` (POST, the secret in the body; WeChat's recommendation) or the
        classic ``token`` (GET, the secret in the query string)."""

        @field_validator("encoding_aes_key")
        @classmethod
        def _valid_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
            if value is not None and value.get_secret_value():
                decode_aes_key(value.get_secret_value())  # ValueError names no key material
                return value
            return None

    settings: Settings

    def __init__(self, settings: AdapterSettings, context: Any) -> None:
        super().__init__(settings, context)
        # settings may be unvalidated (``omnichannel normalize`` builds them without secrets)
        app_id = self._app_id = str(getattr(self.settings, "app_id", "") or "")
        key = _secret(getattr(self.settings, "encoding_aes_key", None))
        self._crypto = WeChatCrypto(decode_aes_key(key), app_id) if key else None
        self._token_value = _secret(getattr(self.settings, "token", None)) or ""
        self._memo: tuple[bytes, dict[str, Any]] | None = None
        self._cached_token: _Token | None = None
        self._ours: Address | None = None
        self._kv_token = f"wechat:{app_id}:access_token"
        self._kv_lock = f"wechat:{app_id}:access_token:lock"

    # -- addresses -------------------------------------------------------------------------

    def own_address(self) -> Address:
        """The Official Account, by its AppID (OpenIDs are per app)."""
        return Address(channel=self.channel, handle=self.settings.app_id)

    # -- inbound: signatures ---------------------------------------------------------------

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

    # -- inbound: parsing ------------------------------------------------------------------

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

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The one message, event or template receipt in the request."""
        fields = self.decode(request)
        try:
            item = self.item(fields)
        except UnparseablePayloadError:
            raise
        except (ValueError, TypeError, KeyError, OverflowError, OSError) as exc:
            raise UnparseablePayloadError(f"{type(exc).__name__}: {str(exc)[:200]}",
                                          adapter=self.name) from None
        return ParseResult(items=[item])

    def _our_address(self, handle: str) -> Address:
        # every message names the same account: build its Address once
        cached = self._ours
        if cached is None or cached.handle != handle:
            cached = self._ours = Address(channel=self.channel, handle=handle)
        return cached

    def _media_url(self, media_id: str) -> str:
        return f"{self.api_base}/cgi-bin/media/get?media_id={quote(media_id, safe='')}"

    def item(self, fields: Mapping[str, Any]) -> InboundMessage | StatusUpdate:
        """Normalize one decoded WeChat message or event."""
        msg_type = _text(fields, "MsgType").strip().lower()
        sender = _text(fields, "FromUserName").strip()
        ours = _text(fields, "ToUserName").strip()
        if not msg_type or not sender:
            raise UnparseablePayloadError("no MsgType or FromUserName", adapter=self.name)
        created = _text(fields, "CreateTime").strip()
        created_at = datetime.fromtimestamp(int(created), UTC) if created else None
        metadata: dict[str, Any] = {"msg_type": msg_type}
        parts: list[Part] = []
        if msg_type == "event":
            event = _text(fields, "Event").strip()
            if event.upper() == "TEMPLATESENDJOBFINISH":
                return self._template_receipt(fields, created_at)
            parts = self._event_parts(event, fields)
            metadata["event"] = event
            external_id = f"event:{sender}:{created}:{event}"
        else:
            msg_id = _text(fields, "MsgId").strip() or _text(fields, "MsgID").strip()
            if not msg_id:
                raise UnparseablePayloadError("no MsgId", adapter=self.name)
            external_id = msg_id
            parts = self._message_parts(msg_type, fields, metadata)
        for extra in ("MsgDataId", "Idx", "bizmsgmenuid"):
            if _text(fields, extra):
                metadata[extra.lower()] = _text(fields, extra)
        return InboundMessage(
            external_id=external_id,
            sender=Address(channel=self.channel, handle=sender),
            recipients=[self._our_address(ours or self._app_id)],
            parts=parts,
            created_at=created_at,
            thread_key=f"{sender}|{self._app_id}",
            metadata=metadata,
        )

    def _message_parts(self, msg_type: str, fields: Mapping[str, Any],
                       metadata: dict[str, Any]) -> list[Part]:
        media_id = _text(fields, "MediaId").strip()
        if msg_type == "text":
            return [TextPart(text=_text(fields, "Content"))]
        if msg_type == "image":
            metadata.update(media_id=media_id, pic_url=_text(fields, "PicUrl"))
            return [MediaPart(kind="image", url=self._media_url(media_id) if media_id else
                              _text(fields, "PicUrl") or None)]
        if msg_type == "voice":
            fmt = _text(fields, "Format").strip().lower()
            metadata.update(media_id=media_id, format=fmt)
            parts: list[Part] = [MediaPart(kind="audio", url=self._media_url(media_id) if media_id
                                           else None, content_type=_VOICE_TYPES.get(fmt))]
            recognition = _text(fields, "Recognition").strip()
            if recognition:
                metadata["recognition"] = recognition
                parts.append(TextPart(text=recognition))
            return parts
        if msg_type in ("video", "shortvideo"):
            metadata.update(media_id=media_id, thumb_media_id=_text(fields, "ThumbMediaId"))
            return [MediaPart(kind="video", url=self._media_url(media_id) if media_id else None)]
        if msg_type == "location":
            metadata["scale"] = _text(fields, "Scale")
            label = _text(fields, "Label").strip() or None
            return [LocationPart(latitude=float(_text(fields, "Location_X")),
                                 longitude=float(_text(fields, "Location_Y")), label=label)]
        if msg_type == "link":
            title, url = _text(fields, "Title").strip(), _text(fields, "Url").strip()
            description = _text(fields, "Description").strip()
            metadata["link"] = {"title": title, "description": description, "url": url}
            return [TextPart(text="\n".join(x for x in (title, description, url) if x) or url)]
        if msg_type == "file":
            size = _text(fields, "FileTotalLen").strip()
            metadata.update(file_key=_text(fields, "FileKey"), file_md5=_text(fields, "FileMd5"))
            return [MediaPart(kind="file", filename=_text(fields, "Title").strip() or None,
                              caption=_text(fields, "Description").strip() or None,
                              size=int(size) if size else None)]
        raise UnparseablePayloadError(f"unknown MsgType {msg_type[:40]!r}", adapter=self.name)

    def _event_parts(self, event: str, fields: Mapping[str, Any]) -> list[Part]:
        key = _text(fields, "EventKey")
        upper = event.upper()
        if upper == "SUBSCRIBE":
            data: dict[str, Any] = {}
            if key.startswith("qrscene_"):
                data["scene"] = key[len("qrscene_"):]
            if _text(fields, "Ticket"):
                data["ticket"] = _text(fields, "Ticket")
            return [EventPart(name="subscribe", data=data), EventPart(name="opt_in")]
        if upper == "UNSUBSCRIBE":
            return [EventPart(name="unsubscribe"), EventPart(name="opt_out")]
        if upper == "SCAN":
            return [EventPart(name="scan", data={"scene": key, "ticket": _text(fields, "Ticket")})]
        if upper == "CLICK":
            return [EventPart(name="postback", data={"payload": key, "source": "menu"})]
        if upper == "VIEW":
            data = {"url": key}
            if _text(fields, "MenuId"):
                data["menu_id"] = _text(fields, "MenuId")
            return [EventPart(name="menu_view", data=data)]
        if upper == "LOCATION":
            return [EventPart(name="location", data={
                "latitude": float(_text(fields, "Latitude")),
                "longitude": float(_text(fields, "Longitude")),
                "precision": float(_text(fields, "Precision") or 0)})]
        ignored = {"ToUserName", "FromUserName", "CreateTime", "MsgType", "Event"}
        return [EventPart(name=event.lower() or "event",
                          data={k: v for k, v in fields.items() if k not in ignored})]

    def _template_receipt(self, fields: Mapping[str, Any], created_at: datetime | None) -> StatusUpdate:
        msg_id = (_text(fields, "MsgID") or _text(fields, "MsgId")).strip()
        if not msg_id:
            raise UnparseablePayloadError("TEMPLATESENDJOBFINISH without MsgID", adapter=self.name)
        status = _text(fields, "Status").strip()
        ok = status.lower() == "success"
        return StatusUpdate(
            external_id=msg_id, status="delivered" if ok else "failed",
            timestamp=created_at or datetime.now(UTC),
            error=None if ok else MessageError(code="undelivered", message=status or "failed",
                                               vendor_code=status or None),
            recipient=Address(channel=self.channel, handle=_text(fields, "FromUserName").strip()),
            metadata={"event": "TEMPLATESENDJOBFINISH", "wechat_status": status})

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

    # -- access token ----------------------------------------------------------------------

    async def access_token(self, *, stale: str | None = None) -> str:
        """The app's ``access_token``, shared by every process through ``context.kv``.

        A token due for renewal (``token_refresh_margin`` before it expires) is replaced by
        whichever process takes the ``kv_add`` lock; the others keep using the old one (still
        valid) or wait up to ``token_wait`` for the new one. ``stale`` is a token WeChat just
        refused: it is never returned again.
        """
        cached = self._cached_token
        if cached and cached.token != stale and cached.refresh_at > time.time():
            return cached.token
        kv = self.context.kv
        deadline = time.monotonic() + self.settings.token_wait
        while True:
            current = _Token.load(await kv.kv_get(self._kv_token))
            now = time.time()
            usable = current is not None and current.token != stale and current.expires_at > now
            if usable and current is not None and current.refresh_at > now:
                self._cached_token = current
                return current.token
            if await kv.kv_add(self._kv_lock, os.urandom(8).hex(), ttl=30):
                try:
                    current = _Token.load(await kv.kv_get(self._kv_token))
                    if current is not None and current.token != stale and \
                            current.refresh_at > time.time():
                        self._cached_token = current
                        return current.token
                    fresh = await self._fetch_token(stale)
                    await kv.kv_set(self._kv_token, fresh.dump(),
                                    ttl=max(1.0, fresh.expires_at - time.time()))
                    self._cached_token = fresh
                    return fresh.token
                finally:
                    await kv.kv_delete(self._kv_lock)
            if usable and current is not None:
                return current.token  # another process is refreshing; the old token still works
            if time.monotonic() > deadline:
                raise TransportError(f"{self.name}: timed out waiting for another process to "
                                     "fetch the access_token")
            await asyncio.sleep(0.05)

    async def _fetch_token(self, stale: str | None) -> _Token:
        token = await self._request_token(force=False)
        if stale is not None and token.token == stale and \
                self.settings.token_endpoint == "stable_token":
            # WeChat refused a token that stable_token still hands out: force a new one
            token = await self._request_token(force=True)
        return token

    async def _request_token(self, *, force: bool) -> _Token:
        secret = self.settings.app_secret.get_secret_value()
        if self.settings.token_endpoint == "stable_token":
            # the secret travels in the body, never in a URL that proxies and loggers record
            response = await self.request(
                "POST", f"{self.api_base}/cgi-bin/stable_token",
                content=orjson.dumps({"grant_type": "client_credential",
                                      "appid": self.settings.app_id, "secret": secret,
                                      "force_refresh": force}),
                headers={"content-type": "application/json; charset=utf-8"})
        else:
            response = await self.request("GET", f"{self.api_base}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.settings.app_id,
                "secret": secret})
        data = self._json(response)
        code = _errcode(data)
        if code:
            error = self.error_for_errcode(code, data.get("errmsg"))
            if code in TOKEN_ERRCODES:  # for the token endpoint these mean bad credentials
                error = AuthenticationError(str(error), vendor_code=code)
            raise error
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProviderError(f"{self.name}: no access_token in the answer", retryable=True)
        try:
            expires_in = float(data.get("expires_in") or 7200)
        except (TypeError, ValueError):
            expires_in = 7200.0
        now = time.time()
        expires_at = now + max(1.0, expires_in)
        refresh_at = expires_at - self.settings.token_refresh_margin
        if refresh_at < now + 60:
            # a token already inside the margin (stable_token repeats the current one until
            # WeChat renews it): use it for a minute rather than asking on every call
            refresh_at = min(now + 60, expires_at - 5)
        return _Token(token, expires_at, refresh_at)

    # -- vendor calls and errors -----------------------------------------------------------

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        self.raise_for_status(response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ProviderError(f"{self.name}: the API answered something other than JSON",
                                retryable=True, status_code=response.status_code) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name}: unexpected JSON answer", retryable=True)
        return data

    async def call(self, method: str, path: str, *, payload: Any = None,
                   params: Mapping[str, str] | None = None, files: Any = None) -> dict[str, Any]:
        """Call ``{api_base}{path}`` with the access token; JSON goes out as UTF-8 without
        ``\\u`` escapes. A refused token is replaced once and the call retried; any other
        ``errcode`` raises through :meth:`error_for_errcode`."""
        kwargs: dict[str, Any] = {}
        if payload is not None:
            kwargs["content"] = orjson.dumps(payload)
            kwargs["headers"] = {"content-type": "application/json; charset=utf-8"}
        if files is not None:
            kwargs["files"] = files
        refused: str | None = None
        for attempt in range(2):
            token = await self.access_token(stale=refused)
            response = await self.request(method, f"{self.api_base}{path}",
                                          params={**(params or {}), "access_token": token},
                                          **kwargs)
            data = self._json(response)
            code = _errcode(data)
            if code in TOKEN_ERRCODES and attempt == 0:
                refused = token
                self._cached_token = None
                continue
            if code:
                raise self.error_for_errcode(code, data.get("errmsg"))
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for_errcode(self, code: int, errmsg: Any = None) -> OmnichannelError:
        """The typed error for a WeChat ``errcode`` (the one place they are mapped)."""
        detail = str(errmsg)[:200] if errmsg else ""
        what = f"{self.name}: errcode {code}" + (f": {detail}" if detail else "")
        if code == 45015:
            return WeChatWindowClosedError(what, vendor_code=code)
        if code == 43004:  # the customer unfollowed the account
            return OptedOutError(what)
        if code == 45009:  # daily quota: resets at midnight Beijing time
            return RateLimitedError(what, retry_after=_seconds_to_beijing_midnight(),
                                    vendor_code=code)
        if code == 45011:  # per-minute frequency limit
            return RateLimitedError(what, retry_after=60.0, vendor_code=code)
        if code in (45047, 45045, 45010):  # too many messages without a customer answer
            return RateLimitedError(what, vendor_code=code)
        if code in TOKEN_ERRCODES or code in _AUTH_ERRCODES:
            return AuthenticationError(what, vendor_code=code)
        if code == -1:  # system busy
            return ProviderError(what, vendor_code=code, retryable=True)
        return RejectedError(what, vendor_code=code)

    # -- outbound --------------------------------------------------------------------------

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Customer-service messages (text, image, voice; a news / link / mini-program card
        from ``metadata["wechat"]``) and template messages (``TemplatePart``)."""
        if not message.recipients:
            raise RejectedError(f"{self.name}: no recipient")
        openid = message.recipients[0].handle
        options = message.metadata.get("wechat")
        options = options if isinstance(options, dict) else {}
        external_ids: list[str] = []
        metadata: dict[str, Any] = {}
        for card in _CARDS:
            if isinstance(options.get(card), dict):
                msgtype, body = _card(card, options[card])
                await self._custom(openid, msgtype, body, options)
                external_ids.append(f"{message.id}:{card}")
        for index, part in enumerate(parts):
            if isinstance(part, TemplatePart):
                msgid = await self._template(openid, part, message, options)
                external_ids.append(msgid)
                metadata.setdefault("template_msgids", []).append(msgid)
                continue
            if isinstance(part, TextPart):
                await self._custom(openid, "text", {"content": part.text}, options)
            elif isinstance(part, MediaPart) and part.kind in ("image", "sticker", "audio"):
                kind = "voice" if part.kind == "audio" else "image"
                media_id = await self.upload(part, kind)
                await self._custom(openid, kind, {"media_id": media_id}, options)
            else:
                raise UnsupportedFeatureError(f"{self.name} cannot send a {part.type} part")
            external_ids.append(f"{message.id}:{index}")
        if not external_ids:
            raise UnsupportedFeatureError(f"{self.name}: nothing to send")
        return SendResult(external_ids=external_ids, status="sent", metadata=metadata)

    async def _custom(self, openid: str, msgtype: str, body: dict[str, Any],
                      options: Mapping[str, Any]) -> None:
        payload: dict[str, Any] = {"touser": openid, "msgtype": msgtype, msgtype: body}
        if isinstance(options.get("kf_account"), str):
            payload["customservice"] = {"kf_account": options["kf_account"]}
        await self.call("POST", "/cgi-bin/message/custom/send", payload=payload)

    async def _template(self, openid: str, part: TemplatePart, message: Message,
                        options: Mapping[str, Any]) -> str:
        data = {k: v if isinstance(v, dict) else {"value": str(v)} for k, v in part.params.items()}
        payload: dict[str, Any] = {"touser": openid, "template_id": part.name, "data": data,
                                   "client_msg_id": message.id}
        if isinstance(options.get("url"), str):
            payload["url"] = options["url"]
        if isinstance(options.get("miniprogram"), dict):
            payload["miniprogram"] = options["miniprogram"]
        answer = await self.call("POST", "/cgi-bin/message/template/send", payload=payload)
        msgid = answer.get("msgid")
        if msgid is None:
            raise ProviderError(f"{self.name}: template/send gave no msgid", retryable=True)
        return str(msgid)

    async def upload(self, part: MediaPart, kind: str) -> str:
        """Upload ``part`` as temporary media (``image`` / ``voice``) and return its
        ``media_id``; ids are remembered for two days (WeChat keeps them three)."""
        source = part.blob_key or part.url or ""
        if not source:
            raise UnsupportedFeatureError(f"{self.name}: {part.kind} media without bytes or URL")
        cache_key = f"wechat:{self.settings.app_id}:media:{kind}:" + \
            hashlib.sha256(source.encode()).hexdigest()
        cached = await self.context.kv.kv_get(cache_key)
        if cached:
            return cached
        data = await self._media_bytes(part, _UPLOAD_LIMITS[kind])
        filename = part.filename or ("image.jpg" if kind == "image" else "voice.amr")
        content_type = part.content_type or ("image/jpeg" if kind == "image" else "audio/amr")
        answer = await self.call("POST", "/cgi-bin/media/upload", params={"type": kind},
                                 files={"media": (filename, data, content_type)})
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise ProviderError(f"{self.name}: media/upload gave no media_id", retryable=True)
        await self.context.kv.kv_set(cache_key, media_id, ttl=_MEDIA_ID_TTL)
        return media_id

    async def _media_bytes(self, part: MediaPart, limit: int) -> bytes:
        if part.blob_key and self.context.blobs is not None:
            data = await self.context.blobs.get(part.blob_key)
        elif part.url and part.url.startswith(("http://", "https://")):
            response = await self.request("GET", part.url)
            if response.status_code >= 400:
                raise MediaError(f"{self.name}: fetching outbound media gave HTTP "
                                 f"{response.status_code}")
            data = response.content
        else:
            raise UnsupportedFeatureError(f"{self.name}: {part.kind} media without bytes or URL")
        if len(data) > limit:
            raise MediaError(f"{self.name}: {part.kind} of {len(data)} bytes exceeds WeChat's "
                             f"{limit}")
        return data

    async def check_media_response(self, response: httpx.Response) -> None:
        """``media/get`` answers HTTP 200 with a JSON ``errcode`` (an expired token, an unknown
        or expired media id) instead of the bytes: never store that as the media. A refused
        token is dropped so that the retry fetches a fresh one."""
        ctype = response.headers.get("content-type", "")
        if "json" not in ctype and "text/plain" not in ctype:
            return
        await response.aread()
        if not response.content.lstrip().startswith(b"{"):
            return
        data = self._json(response)
        code = _errcode(data)
        if not code:
            return
        if code in TOKEN_ERRCODES:
            self._cached_token = None
            await self.context.kv.kv_delete(self._kv_token)
            raise ProviderError(f"{self.name}: media/get refused the access token ({code})",
                                vendor_code=code, retryable=True)
        raise self.error_for_errcode(code, data.get("errmsg"))

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """``cgi-bin/media/get`` with the access token for media WeChat sent us."""
        if not part.url:
            return None
        prefix = f"{self.api_base}/cgi-bin/media/get"
        if not part.url.startswith(prefix + "?"):
            return await super().media_request(part)
        query = dict(parse_qsl(urlsplit(part.url).query))
        media_id = query.get("media_id")
        if not media_id:
            return None
        token = await self.access_token()
        request = self.context.http.build_request(
            "GET", prefix, params={"access_token": token, "media_id": media_id})
        if part.kind != "video":
            return request
        # for videos media/get answers JSON {"video_url": ...} rather than the bytes: ask first
        response = await self.request("GET", prefix, params={"access_token": token,
                                                             "media_id": media_id})
        if "json" not in response.headers.get("content-type", "") and \
                not response.content.startswith(b"{"):
            return request
        data = self._json(response)
        if _errcode(data):
            raise self.error_for_errcode(_errcode(data), data.get("errmsg"))
        url = data.get("video_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise MediaError(f"{self.name}: media/get gave no video_url")
        return self.context.http.build_request("GET", url)


def _secret(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value) if value else None


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnparseablePayloadError(f"{name} is not a text field")
    return value


def _errcode(data: Mapping[str, Any]) -> int:
    code = data.get("errcode", 0)
    try:
        return int(code or 0)
    except (TypeError, ValueError):
        return -1


class _Token(NamedTuple):
    """An access token as shared through the key-value store."""

    token: str
    expires_at: float
    refresh_at: float

    def dump(self) -> str:
        return orjson.dumps(self._asdict()).decode()

    @classmethod
    def load(cls, raw: str | None) -> _Token | None:
        if not raw:
            return None
        try:
            data = orjson.loads(raw)
            return cls(str(data["token"]), float(data["expires_at"]), float(data["refresh_at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def _seconds_to_beijing_midnight() -> float:
    now = datetime.now(UTC) + _BEIJING
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - now).total_seconds())


def _card(kind: str, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A customer-service card from ``metadata["wechat"][kind]``."""
    if kind == "miniprogrampage":
        return "miniprogrampage", dict(spec)
    if kind == "link":  # a link card is a news message with one article
        spec = {"articles": [dict(spec)]}
    articles = spec.get("articles")
    if not isinstance(articles, list) or not articles:
        raise UnsupportedFeatureError("a news card needs a list of articles")
    return "news", {"articles": [dict(a) for a in articles[:1]]}
