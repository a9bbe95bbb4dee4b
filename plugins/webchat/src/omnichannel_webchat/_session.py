"""Visitor sessions as signed, expiring tokens.

A token is ``wc1.<payload>.<signature>``: the payload is base64url JSON naming the visitor, the
channel key, the expiry and what the pre-chat form said; the signature is HMAC-SHA256 of
``wc1.<payload>`` under the channel's ``secret``. Nothing is stored on the server: any process
that knows the secret can check a token, so a visitor resumes on every gateway process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson

from omnichannel_sdk import SignatureError

__all__ = ["EMAIL", "PREFIX", "Session", "new_visitor_id", "peek_session", "sign_session",
           "verify_session"]

EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,253}\.[^@\s<>\"']{2,63}$")
"""What a visitor's email address must look like (pre-chat form, contact hints)."""

PREFIX = "wc1"
"""Version tag of the token format."""
_MAX_TOKEN = 4096


@dataclass(frozen=True)
class Session:
    """What a visitor token says."""

    visitor: str
    """The visitor id (the webchat ``Address.handle``)."""
    channel_key: str
    """The channel the token was issued for; a token never works on another channel."""
    expires: int
    """Expiry, Unix seconds."""
    issued: int = 0
    """Issue time, Unix seconds."""
    name: str | None = None
    """Name from the pre-chat form."""
    email: str | None = None
    """Email address from the pre-chat form (not verified)."""
    locale: str | None = None
    """The widget's language when the session was made."""

    def renewed(self, ttl: float, **changes: Any) -> Session:
        """The same visitor with a fresh expiry (and ``changes`` applied)."""
        now = int(time.time())
        return replace(self, issued=now, expires=now + int(ttl), **changes)


def new_visitor_id() -> str:
    """A fresh, unguessable visitor id."""
    return "v_" + secrets.token_urlsafe(15)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> str:
    return _b64(hmac.new(secret.encode("utf-8"), signed.encode("ascii"), hashlib.sha256).digest())


def sign_session(session: Session, secret: str) -> str:
    """The token for ``session``."""
    payload: dict[str, Any] = {"v": session.visitor, "k": session.channel_key,
                               "exp": session.expires, "iat": session.issued}
    if session.name:
        payload["n"] = session.name
    if session.email:
        payload["e"] = session.email
    if session.locale:
        payload["l"] = session.locale
    body = f"{PREFIX}.{_b64(orjson.dumps(payload))}"
    return f"{body}.{_mac(secret, body)}"


def _decode(token: str) -> tuple[str, str, Session]:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 2:
        raise SignatureError("malformed session token", adapter="webchat")
    prefix, payload, signature = token.split(".")
    if prefix != PREFIX:
        raise SignatureError("unknown session token version", adapter="webchat")
    try:
        data = orjson.loads(_unb64(payload))
        session = Session(visitor=str(data["v"]), channel_key=str(data["k"]),
                          expires=int(data["exp"]), issued=int(data.get("iat", 0)),
                          name=data.get("n"), email=data.get("e"), locale=data.get("l"))
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise SignatureError("malformed session token", adapter="webchat") from None
    return f"{prefix}.{payload}", signature, session


def peek_session(token: str) -> Session:
    """What a token says, WITHOUT checking its signature or expiry.

    Only for payloads that were verified when they arrived (parsing stored requests again).
    """
    return _decode(token)[2]


def verify_session(token: str | None, secret: str, channel_key: str, *,
                   now: float | None = None) -> Session:
    """The session of a valid token; :class:`SignatureError` when it is missing, forged,
    expired or issued for another channel."""
    if not token:
        raise SignatureError("missing session token", adapter="webchat")
    signed, signature, session = _decode(token)
    if not hmac.compare_digest(signature.encode("ascii", "replace"),
                               _mac(secret, signed).encode("ascii")):
        raise SignatureError("bad session token signature", adapter="webchat")
    if session.expires <= (time.time() if now is None else now):
        raise SignatureError("session token expired", adapter="webchat")
    if session.channel_key != channel_key:
        raise SignatureError("session token is for another channel", adapter="webchat")
    return session
