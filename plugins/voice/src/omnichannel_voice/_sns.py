"""Amazon SNS over HTTPS: message signatures, signing certificates, subscription confirmation.

SNS signs each document it posts (``Notification``, ``SubscriptionConfirmation``,
``UnsubscribeConfirmation``) with the key of a certificate it publishes at ``SigningCertURL``:
``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA, over a canonical string of
``name\\nvalue\\n`` lines of fixed fields in a fixed order.

``verify`` is synchronous and does no I/O, so certificates are kept in a process-wide cache
(public keys, by URL) backed by the hub's shared ``kv`` store. A message whose certificate is not
cached yet is answered with a retryable status (503, SNS retries 20 s later by default) while the
certificate is fetched in the background through the hub's HTTP client; the adapter loads every
certificate another process already fetched from ``kv`` when it starts.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from omnichannel_sdk import ChannelAdapter, RetryLaterError, SignatureError, TransportError

__all__ = [
    "SNS_TYPES",
    "CertificatePendingError",
    "forget_certificates",
    "load_cached_certificates",
    "remember_certificate",
    "cached_key",
    "fetch_certificate",
    "is_sns_url",
    "sns_string_to_sign",
    "verify_sns_signature",
]

log = logging.getLogger("omnichannel_voice")

SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
_HOST = re.compile(r"sns\.[a-z0-9-]{3,40}\.amazonaws\.com(\.cn)?")
_KV_PREFIX = "voice:sns-cert:"
_KV_TTL = 90 * 24 * 3600.0
_MAX_CERT_BYTES = 16 * 1024
_MAX_CACHED = 64
_RETRY_FAILED_AFTER = 60.0

_keys: dict[str, rsa.RSAPublicKey] = {}
_inflight: set[str] = set()
_failed: dict[str, float] = {}


class CertificatePendingError(RetryLaterError):
    """The SNS signing certificate is being fetched; the request is answered 503 so SNS
    delivers it again (by then the certificate is cached)."""

    def __init__(self, message: str, *, retry_after: float | None = 20.0):
        super().__init__(message, retry_after=retry_after)


def is_sns_url(url: object) -> bool:
    """Whether ``url`` is ``https://sns.<region>.amazonaws.com[.cn]/…`` (no user, port 443)."""
    if not isinstance(url, str) or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (parts.scheme == "https" and "@" not in parts.netloc and port in (None, 443)
            and bool(parts.hostname) and _HOST.fullmatch(parts.hostname or "") is not None)


def sns_string_to_sign(document: dict[str, Any]) -> bytes:
    """The canonical string SNS signs for ``document`` (``Subject`` only when present)."""
    fields = _FIELDS.get(str(document.get("Type")))
    if fields is None:
        raise SignatureError("not an SNS message type")
    lines: list[str] = []
    for name in fields:
        value = document.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SignatureError(f"SNS message without {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode("utf-8")


def verify_sns_signature(document: dict[str, Any], key: rsa.RSAPublicKey) -> None:
    """Check ``Signature`` (base64) with ``key``; :class:`SignatureError` when it does not match."""
    algorithm = _HASHES.get(str(document.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureError("unsupported SNS SignatureVersion")
    signature = document.get("Signature")
    if not isinstance(signature, str) or not signature or len(signature) > 4096:
        raise SignatureError("SNS message without Signature")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise SignatureError("SNS Signature is not base64") from None
    try:
        key.verify(raw, sns_string_to_sign(document), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureError("bad SNS signature") from None


def cached_key(url: str) -> rsa.RSAPublicKey | None:
    """The public key of the certificate at ``url``, when this process has it."""
    return _keys.get(url)


def remember_certificate(url: str, pem: bytes) -> rsa.RSAPublicKey:
    """Parse a PEM certificate and cache its RSA key (refuses expired or non-RSA ones)."""
    if len(pem) > _MAX_CERT_BYTES:
        raise ValueError("certificate too large")
    certificate = x509.load_pem_x509_certificate(pem)
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ValueError("certificate not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("certificate key is not RSA")
    while len(_keys) >= _MAX_CACHED:
        _keys.pop(next(iter(_keys)))
    _keys[url] = key
    return key


def _kv_key(url: str) -> str:
    return _KV_PREFIX + hashlib.sha256(url.encode("utf-8")).hexdigest()


async def load_cached_certificates(adapter: ChannelAdapter) -> int:
    """Load every certificate other processes stored in ``kv`` into this process's cache."""
    loaded = 0
    for _, value in await adapter.context.kv.kv_scan(_KV_PREFIX):
        try:
            entry = orjson.loads(value)
            url, pem = entry["url"], entry["pem"]
            if is_sns_url(url) and url not in _keys:
                remember_certificate(url, pem.encode("ascii"))
                loaded += 1
        except (ValueError, KeyError, TypeError):
            continue
    return loaded


async def fetch_certificate(adapter: ChannelAdapter, url: str) -> rsa.RSAPublicKey | None:
    """Get the certificate at ``url`` into the cache: from ``kv``, else over HTTPS through the
    hub's client (no redirects), then shared through ``kv``. ``None`` when it failed."""
    if not is_sns_url(url):
        return None
    if url in _keys:
        return _keys[url]
    if url in _inflight or time.monotonic() - _failed.get(url, -1e9) < _RETRY_FAILED_AFTER:
        return None
    _inflight.add(url)
    try:
        kv = adapter.context.kv
        stored = await kv.kv_get(_kv_key(url))
        if stored is not None:
            try:
                return remember_certificate(url, orjson.loads(stored)["pem"].encode("ascii"))
            except (ValueError, KeyError, TypeError):
                pass
        response = await adapter.request("GET", url, follow_redirects=False)
        if response.status_code != 200:
            raise ValueError(f"HTTP {response.status_code}")
        pem = response.content
        key = remember_certificate(url, pem)
        await kv.kv_set(_kv_key(url), orjson.dumps({"url": url, "pem": pem.decode("ascii")}).decode(),
                        ttl=_KV_TTL)
        return key
    except (ValueError, TransportError) as exc:
        while len(_failed) >= 4 * _MAX_CACHED:
            _failed.pop(next(iter(_failed)))
        _failed[url] = time.monotonic()
        log.warning("%s: could not get the SNS signing certificate %s: %s", adapter.name, url,
                    type(exc).__name__ if isinstance(exc, TransportError) else exc)
        return None
    finally:
        _inflight.discard(url)


def forget_certificates() -> None:
    """Empty this process's certificate cache (tests)."""
    _keys.clear()
    _inflight.clear()
    _failed.clear()
