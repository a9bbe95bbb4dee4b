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

from typing import Any

import httpx

from omnichannel_sdk import (
    AuthenticationError,
    ChannelError,
    ProviderError,
    RateLimitedError,
    RejectedError,
)
from omnichannel_sdk.meta import read_graph_error, usage_retry_after

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


def graph_error(adapter: str, response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> ChannelError:
    """The typed error for a failed Graph API answer. ``secrets`` are scrubbed from the detail."""
    status = response.status_code
    error = read_graph_error(response)
    code, subcode = error.code, error.subcode
    vendor_code = None if code is None else (f"{code}/{subcode}" if subcode is not None else str(code))
    detail = error.describe(secrets=secrets, limit=_MAX_DETAIL)
    what = f"{adapter}: HTTP {status}" + (f" (Graph {vendor_code})" if vendor_code else "") + (
        f": {detail}" if detail else "")
    codes = {c for c in (code, subcode) if c is not None}
    kwargs: dict[str, Any] = {"vendor_code": vendor_code, "status_code": status}
    if codes & AUTH_CODES or (code is not None and 200 <= code <= 299):
        return AuthenticationError(what, **kwargs)
    if codes & POLICY_CODES:
        return OutsideWindowError(what, **kwargs)
    if codes & RATE_LIMIT_CODES or status == 429:
        return RateLimitedError(what, retry_after=usage_retry_after(response), **kwargs)
    if USER_UNAVAILABLE in codes:
        return UserUnavailableError(what, **kwargs)
    if code == BAD_PARAMETER:
        return RejectedError(what, **kwargs)
    if codes & TEMPORARY_CODES or status >= 500 or status == 408:
        return ProviderError(what, retryable=True, **kwargs)
    if status in (401, 403):
        return AuthenticationError(what, **kwargs)
    return RejectedError(what, **kwargs)
