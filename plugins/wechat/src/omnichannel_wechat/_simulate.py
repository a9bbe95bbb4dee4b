"""Building correctly signed WeChat webhook requests (demo traffic, tests, benchmarks)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from omnichannel_sdk import WebhookRequest

from ._crypto import WeChatCrypto, sha1_signature
from ._xml import build_xml

__all__ = ["signed_webhook"]


def signed_webhook(url: str, token: str, xml: bytes, *, crypto: WeChatCrypto | None = None,
                   to_user: str = "gh_demo", timestamp: str | None = None,
                   nonce: str | None = None, openid: str | None = None) -> WebhookRequest:
    """The POST WeChat would send to ``url`` carrying ``xml``: plaintext mode without
    ``crypto``, safe mode (``encrypt_type=aes`` + ``msg_signature``) with it."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**9))
    query = {"signature": sha1_signature(token, timestamp, nonce), "timestamp": timestamp,
             "nonce": nonce}
    if openid:
        query["openid"] = openid
    body = xml
    if crypto is not None:
        encrypt = crypto.encrypt(xml)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sha1_signature(token, timestamp, nonce, encrypt)
        body = build_xml({"ToUserName": to_user, "Encrypt": encrypt})
    return WebhookRequest("POST", f"{url}?{urlencode(query)}", {"content-type": "text/xml"}, body)
