"""omnichannel-wechat: the WeChat Official Account (``wechat-mp``) channel for omnichannel_sdk.

Installed, it registers itself under the ``omnichannel`` entry point; configure a channel with
``adapter = "wechat-mp"`` and ``app_id``, ``app_secret``, ``token`` and (for compatible or safe
mode) ``encoding_aes_key``.
"""

from __future__ import annotations

from ._adapter import WeChatAdapter, WeChatWindowClosedError
from ._crypto import WeChatCrypto, decode_aes_key, sha1_signature
from ._settings import WeChatSettings
from ._simulate import signed_webhook
from ._xml import XmlError, build_xml, parse_xml

__all__ = [
    "WeChatAdapter",
    "WeChatCrypto",
    "WeChatSettings",
    "WeChatWindowClosedError",
    "XmlError",
    "build_xml",
    "decode_aes_key",
    "parse_xml",
    "sha1_signature",
    "signed_webhook",
]
