"""Meta's webhook signature (``X-Hub-Signature-256``) and the Graph API ``appsecret_proof``."""

from __future__ import annotations

import hashlib
import hmac

from omnichannel_sdk import constant_time_equals

__all__ = ["SIGNATURE_HEADER", "appsecret_proof", "sign_body", "signature_matches"]

SIGNATURE_HEADER = "x-hub-signature-256"
"""The header Meta signs webhook bodies in: ``sha256=`` + hex HMAC-SHA256 with the app secret."""

_PREFIX = "sha256="


def sign_body(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body`` (for tests, demos, relays)."""
    return _PREFIX + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of exactly these ``body`` bytes, compared in constant
    time. A missing header, another algorithm or a malformed value never matches."""
    if not header or not app_secret:
        return False
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return False
    given = value[len(_PREFIX):].strip().lower()
    return constant_time_equals(given, sign_body(app_secret, body)[len(_PREFIX):])


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """The Graph API ``appsecret_proof``: hex HMAC-SHA256 of the access token with the app
    secret. It proves the caller holds the secret without sending it."""
    return hmac.new(app_secret.encode("utf-8"), access_token.encode("utf-8"), hashlib.sha256).hexdigest()
