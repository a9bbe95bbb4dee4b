"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``,
keyed with the app secret."""

from __future__ import annotations

import hashlib
import hmac

from omnichannel_sdk import constant_time_equals

__all__ = ["SIGNATURE_HEADER", "sign_body", "signature_matches"]

SIGNATURE_HEADER = "x-hub-signature-256"
"""The header Meta signs webhook bodies in (lower case, as :class:`WebhookRequest` keeps it)."""

_PREFIX = "sha256="


def sign_body(app_secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body`` (for tests, demos, relays)."""
    return _PREFIX + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_matches(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` signs exactly these ``body`` bytes, compared in constant time.

    A missing header, an empty secret, another algorithm or a malformed value never matches.
    The raw bytes are signed: a body re-encoded by a proxy (escaped unicode) does not match,
    which is why the gateway hands adapters the body exactly as received.
    """
    if not header or not app_secret:
        return False
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return False
    given = value[len(_PREFIX):].strip().lower()
    if len(given) != 64:
        return False
    return constant_time_equals(given, sign_body(app_secret, body)[len(_PREFIX):])
