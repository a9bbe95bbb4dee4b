"""Refusing replayed webhooks: a timestamp tolerance and a memory of the nonces (tokens,
message ids) seen inside it, kept in the hub's kv store so every gateway process shares it.

A vendor whose signature covers a timestamp and a nonce but not the body (WeChat's plaintext
mode, Mailgun) lets anyone who saw one signed request send any body with it until the timestamp
runs out. :class:`ReplayGuard` remembers each nonce for the tolerance window, with a fingerprint
of what it came with: the vendor's own retry (same nonce, same body) passes and is de-duplicated
as usual, while the same nonce with another body is refused as a :class:`SignatureError`.
"""

from __future__ import annotations

import hashlib
import math
import time
from datetime import datetime
from typing import Protocol

from ._errors import SignatureError

__all__ = ["ReplayGuard", "check_timestamp", "replay_fingerprint"]


class _KV(Protocol):
    async def kv_get(self, key: str) -> str | None: ...

    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool: ...


def replay_fingerprint(*pieces: bytes | str) -> str:
    """A short digest of what a nonce came with (the body, the signed fields)."""
    digest = hashlib.sha256()
    for piece in pieces:
        data = piece.encode("utf-8", "surrogatepass") if isinstance(piece, str) else piece
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:32]


def check_timestamp(timestamp: float | int | str | datetime, tolerance: float, *,
                    adapter: str | None = None, now: float | None = None) -> float:
    """A signed timestamp in seconds since the epoch; :class:`SignatureError` when it is not a
    number (nor an aware datetime), not finite, or further than ``tolerance`` seconds from now.
    The one timestamp check of every adapter whose vendor signs a time (Mailgun, SendGrid,
    Vonage, WeChat, Amazon SNS)."""
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise SignatureError("timestamp without a time zone", adapter=adapter)
        value = timestamp.timestamp()
    else:
        try:
            value = float(timestamp)
        except (TypeError, ValueError):
            raise SignatureError("timestamp is not a number", adapter=adapter) from None
    current = time.time() if now is None else now
    if not math.isfinite(value) or not abs(current - value) <= tolerance:
        raise SignatureError("timestamp outside the allowed tolerance (replay?)", adapter=adapter)
    return value


class ReplayGuard:
    """Timestamp tolerance plus nonce memory for one channel.

    :param kv: the adapter's ``context.kv`` (the hub's store: shared by every process).
    :param namespace: keeps channels apart (use the channel key).
    :param tolerance: how far, in seconds, a signed timestamp may be from now; nonces are
        remembered for twice as long, so a nonce can never come back while its timestamp passes.
    :param adapter: the adapter name the errors carry.
    """

    def __init__(self, kv: _KV, namespace: str, *, tolerance: float = 300.0,
                 adapter: str | None = None) -> None:
        if not tolerance > 0:
            raise ValueError("tolerance must be positive")
        self.kv = kv
        self.namespace = namespace
        self.tolerance = tolerance
        self.adapter = adapter

    def check_time(self, timestamp: float | int | str | datetime, *, now: float | None = None) -> float:
        """The timestamp in seconds since the epoch, or :class:`SignatureError` when it is not a
        number or a datetime, or lies further than ``tolerance`` from now
        (:func:`check_timestamp`)."""
        return check_timestamp(timestamp, self.tolerance, adapter=self.adapter, now=now)

    async def admit(self, nonce: str, fingerprint: str = "") -> None:
        """Remember ``nonce``; raise :class:`SignatureError` if it was seen inside the window
        with another ``fingerprint`` (a replay with a new body). The same nonce with the same
        fingerprint is the vendor retrying, and passes."""
        if not nonce:
            raise SignatureError("missing nonce", adapter=self.adapter)
        digest = hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        key = f"replay:{self.namespace}:{digest}"
        if await self.kv.kv_add(key, fingerprint, ttl=2 * self.tolerance):
            return
        seen = await self.kv.kv_get(key)
        if seen is not None and seen != fingerprint:
            raise SignatureError("nonce already used with another request (replay)",
                                 adapter=self.adapter)
