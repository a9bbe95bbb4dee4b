"""Graph API error answers mapped to the SDK's typed errors — the one place this happens.

Graph errors look like ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.
The mapping (``vendor_code`` is ``"code"`` or ``"code/subcode"``):

=====================================  ==============================================
Graph code (subcode)                   raised
=====================================  ==============================================
190, 102, 463, 467 (token)             :class:`AuthenticationError`
200-299 (permission missing)           :class:`AuthenticationError`
10, 2018278, 2018108, 2018065          :class:`OutsideWindowError` (policy: the 24-hour
                                       window or a tag refused), not retryable
4, 17, 32, 613, 80006 (throttled)      :class:`RateLimitedError` (retried)
551 (1545041)                          :class:`UserUnavailableError`
100 (bad parameter, no such user)      :class:`RejectedError`
1, 2, 1200 (temporary)                 retryable :class:`ProviderError`
HTTP 5xx / 408                         retryable :class:`ProviderError`
=====================================  ==============================================
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import orjson

from omnichannel_sdk import (
    AuthenticationError,
    ChannelError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    parse_retry_after,
)

__all__ = [
    "AUTH_CODES",
    "POLICY_CODES",
    "RATE_LIMIT_CODES",
    "OutsideWindowError",
    "UserUnavailableError",
    "graph_error",
]

AUTH_CODES = frozenset({190, 102, 463, 467})
"""Codes meaning the access token is invalid or expired."""
POLICY_CODES = frozenset({10, 2018278, 2018108, 2018065})
"""Codes (or subcodes) meaning the message is outside the allowed window or refused by policy."""
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80006})
"""Codes meaning the app, the page or the user is throttled."""
TEMPORARY_CODES = frozenset({1, 2, 1200})
"""Codes meaning "try again later"."""
USER_UNAVAILABLE = 551
"""The person cannot receive messages now (blocked the page, deactivated)."""
BAD_PARAMETER = 100

_MAX_DETAIL = 200


class OutsideWindowError(RejectedError):
    """Meta refused the message under its messaging policy: outside the 24-hour window, or a
    message tag that does not apply (Graph code 10, subcodes 2018278 / 2018108 / 2018065)."""


class UserUnavailableError(RejectedError):
    """The person cannot receive messages from the page right now (Graph code 551)."""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After``, else the longest ``estimated_time_to_regain_access`` (minutes) Meta put in
    its usage headers."""
    header = parse_retry_after(response.headers.get("retry-after"))
    if header is not None:
        return header
    minutes: list[float] = []
    for name in ("x-business-use-case-usage", "x-app-usage", "x-page-usage"):
        raw = response.headers.get(name)
        if not raw:
            continue
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, ValueError):
            data = orjson.loads(raw)
            entries: list[Any] = []
            if isinstance(data, dict):
                for value in data.values():
                    entries.extend(value if isinstance(value, list) else [value])
                entries.append(data)
            for entry in entries:
                if isinstance(entry, dict):
                    value = entry.get("estimated_time_to_regain_access")
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                        minutes.append(float(value))
    return max(minutes) * 60 if minutes else None


def graph_error(adapter: str, response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> ChannelError:
    """The typed error for a failed Graph API answer. ``secrets`` are scrubbed from the detail."""
    status = response.status_code
    error: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        body = orjson.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    vendor_code = None if code is None else (f"{code}/{subcode}" if subcode is not None else str(code))
    detail = str(error.get("message") or "")[:_MAX_DETAIL]
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "***")
    what = f"{adapter}: HTTP {status}" + (f" (Graph {vendor_code})" if vendor_code else "") + (
        f": {detail}" if detail else "")
    codes = {c for c in (code, subcode) if c is not None}
    kwargs: dict[str, Any] = {"vendor_code": vendor_code, "status_code": status}
    if codes & AUTH_CODES or (code is not None and 200 <= code <= 299):
        return AuthenticationError(what, **kwargs)
    if codes & POLICY_CODES:
        return OutsideWindowError(what, **kwargs)
    if codes & RATE_LIMIT_CODES or status == 429:
        return RateLimitedError(what, retry_after=_retry_after(response), **kwargs)
    if USER_UNAVAILABLE in codes:
        return UserUnavailableError(what, **kwargs)
    if code == BAD_PARAMETER:
        return RejectedError(what, **kwargs)
    if codes & TEMPORARY_CODES or status >= 500 or status == 408:
        return ProviderError(what, retryable=True, **kwargs)
    if status in (401, 403):
        return AuthenticationError(what, **kwargs)
    return RejectedError(what, **kwargs)
