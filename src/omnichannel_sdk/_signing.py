"""Webhook signing helpers for adapters: HMAC digests compared in constant time, and the one
implementation of Twilio's ``X-Twilio-Signature`` (shared by the SMS and voice plugins).

Vendors sign with HMAC over the raw body (or a timestamp and the body, or the URL and form
parameters), hex- or base64-encoded. An adapter builds the signed bytes as its vendor documents
and asks :func:`hmac_matches`; nothing here logs or returns the secret.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, Literal

try:  # OpenSSL's HMAC, as hmac.digest uses it: a keyed state that can be copied
    from _hashlib import hmac_new as _openssl_hmac
except ImportError:  # pragma: no cover - a Python built without OpenSSL
    _openssl_hmac = None  # type: ignore[assignment]

__all__ = ["hmac_digest", "hmac_matches", "twilio_signature"]

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]

_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def _bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def hmac_digest(secret: str | bytes, message: str | bytes, *, algorithm: Algorithm = "sha256",
                encoding: Encoding = "hex") -> str:
    """The HMAC of ``message`` under ``secret``, as lower-case hex or standard base64."""
    try:
        function = _ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unsupported HMAC algorithm {algorithm!r}") from None
    digest = hmac.new(_bytes(secret), _bytes(message), function).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    raise ValueError(f"unsupported digest encoding {encoding!r}")


def hmac_matches(given: str | None, secret: str | bytes, message: str | bytes, *,
                 algorithm: Algorithm = "sha256", encoding: Encoding = "hex",
                 prefix: str = "") -> bool:
    """Whether ``given`` (a header value, ``prefix`` such as ``"sha256="`` stripped) is the HMAC
    of ``message``; compared in constant time. Hex is compared case-insensitively; a missing or
    empty value never matches."""
    if not given:
        return False
    value = given.strip()
    if prefix:
        if not value.startswith(prefix):
            return False
        value = value[len(prefix):]
    expected = hmac_digest(secret, message, algorithm=algorithm, encoding=encoding)
    if encoding == "hex":
        value = value.lower()
    return hmac.compare_digest(value.encode("utf-8", "replace"), expected.encode("ascii"))


def twilio_signature(auth_token: str | bytes, url: str, params: Iterable[tuple[str, str]],
                     *, distinct: bool = False) -> str:
    """Twilio's ``X-Twilio-Signature``: base64 HMAC-SHA1 of the full URL followed by each POST
    parameter's name and value, sorted by name then value, an identical pair counted once
    (what Twilio's own ``RequestValidator.compute_signature`` computes). A GET's parameters are
    in the URL: pass no ``params``.

    ``distinct=True`` says no pair repeats (no name does, say: the caller built a dict of the
    form): the pairs are then sorted as they are, without first being hashed into a set, which
    is a sixth of the signature's cost for a twenty-field form. The signature is the same."""
    ordered = sorted(params) if distinct else sorted(set(params))
    data = (url + "".join(map("".join, ordered))).encode("utf-8")
    keyed = _keyed_sha1(_bytes(auth_token)) if _openssl_hmac is not None else None
    if keyed is None:
        digest = hmac.digest(_bytes(auth_token), data, "sha1")
    else:
        # a copy of the state already keyed with the token: the same HMAC-SHA1 as
        # hmac.digest's one-shot call, without looking up SHA-1 and hashing the key's pads
        # again on every webhook (about half of the one-shot call's cost)
        mac = keyed.copy()
        mac.update(data)
        digest = mac.digest()
    return base64.b64encode(digest).decode("ascii")


@functools.lru_cache(maxsize=16)
def _keyed_sha1(key: bytes) -> Any:
    """OpenSSL's HMAC-SHA1 state keyed with ``key`` and nothing hashed yet (copied per use,
    never updated itself); a few auth tokens per process."""
    assert _openssl_hmac is not None
    return _openssl_hmac(key, digestmod="sha1")
