"""Verifying a mapped vendor's request: HMAC (hex or base64; sha1/sha256/sha512; over the body
or timestamp + body), a static token, or HTTP Basic credentials."""

from __future__ import annotations

import base64
import binascii

from .._adapter import constant_time_equals
from .._errors import SignatureError
from .._replay_guard import check_timestamp
from .._signing import hmac_matches
from .._webhook import WebhookRequest
from ._settings import SignatureSettings

__all__ = ["verify_signature"]


def _refuse(adapter: str, settings: SignatureSettings, what: str) -> SignatureError:
    # the message says what was expected (for the integrator reading the log), never a secret
    return SignatureError(f"{what}; expected {settings.expectation()}", adapter=adapter)


def verify_signature(adapter: str, settings: SignatureSettings, request: WebhookRequest,
                     now: float | None = None) -> None:
    """Raise :class:`~omnichannel_sdk.SignatureError` unless ``request`` carries what
    ``settings`` asks for."""
    if settings.scheme == "none":
        return
    if settings.scheme == "basic":
        _basic(adapter, settings, request)
        return
    given = request.header(settings.header)
    if not given:
        raise _refuse(adapter, settings, f"missing {settings.header} header")
    given = given.strip()
    if settings.prefix:
        if not given.startswith(settings.prefix):
            raise _refuse(adapter, settings, "signature prefix missing")
        given = given[len(settings.prefix):]
    secret = settings.secret.get_secret_value() if settings.secret is not None else ""
    if settings.scheme == "token":
        if not constant_time_equals(given, secret):
            raise _refuse(adapter, settings, "token does not match")
        return
    content = _signed_content(adapter, settings, request, now)
    if not hmac_matches(given, secret, content, algorithm=settings.algorithm,
                        encoding=settings.encoding):
        raise _refuse(adapter, settings, "signature does not match")


def _signed_content(adapter: str, settings: SignatureSettings, request: WebhookRequest,
                    now: float | None) -> bytes:
    if "{timestamp}" not in settings.signed:
        before, _, after = settings.signed.partition("{body}")
        return before.encode() + request.body + after.encode()
    header = settings.timestamp_header or ""
    stamp = (request.header(header) or "").strip()
    try:
        number = float(stamp)
    except ValueError:
        raise _refuse(adapter, settings, f"missing or unreadable {header} header") from None
    seconds = number / 1000 if number > 1e11 else number  # milliseconds
    try:
        check_timestamp(seconds, settings.tolerance, now=now)
    except SignatureError:
        raise _refuse(adapter, settings,
                      f"{header} is outside the {settings.tolerance:g} s tolerance") from None
    before, _, after = settings.signed.partition("{body}")
    return (before.replace("{timestamp}", stamp).encode() + request.body
            + after.replace("{timestamp}", stamp).encode())


def _basic(adapter: str, settings: SignatureSettings, request: WebhookRequest) -> None:
    given = request.header("authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise _refuse(adapter, settings, "missing Basic credentials")
    try:
        user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, ValueError):
        raise _refuse(adapter, settings, "unreadable Basic credentials") from None
    expected = settings.password.get_secret_value() if settings.password is not None else ""
    # both compared, always, so the time does not tell which one was wrong
    user_ok = constant_time_equals(user, settings.username or "")
    password_ok = constant_time_equals(password, expected)
    if not (user_ok and password_ok):
        raise _refuse(adapter, settings, "Basic credentials do not match")
