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

from datetime import timedelta
from typing import Any, ClassVar

from pydantic import SecretStr

from omnichannel_sdk import (
    AdapterContext,
    Address,
    Capabilities,
    ParseResult,
    UnparseablePayloadError,
    WebhookRequest,
)

from ._answers import WeChatWindowClosedError
from ._crypto import WeChatCrypto, decode_aes_key
from ._envelope import WeChatEnvelope
from ._inbound import WeChatInbound
from ._outbound import _UPLOAD_LIMITS, WeChatOutbound
from ._settings import WeChatSettings
from ._token import _Token

__all__ = ["WeChatAdapter", "WeChatWindowClosedError"]

DEFAULT_API_BASE = "https://api.weixin.qq.com"


class WeChatAdapter(WeChatEnvelope, WeChatInbound, WeChatOutbound):
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

    def __init__(self, settings: WeChatSettings, context: AdapterContext) -> None:
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

    # -- inbound: parsing ------------------------------------------------------------------

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


def _secret(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value) if value else None
