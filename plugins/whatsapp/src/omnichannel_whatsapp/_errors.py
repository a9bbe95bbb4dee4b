"""WhatsApp Cloud API error codes mapped to the SDK's typed errors — the one place this happens.

The same table serves the Graph API's synchronous answers (``{"error": {"code", "message",
"error_data": {"details"}, "error_subcode", "fbtrace_id"}}``) and the asynchronous errors of
``failed`` status webhooks (``statuses[].errors[]``: ``code``, ``title``, ``message``,
``error_data.details``). ``vendor_code`` is the Meta code as a string.

=========================================  ====================================================
Meta code                                  raised / recorded as
=========================================  ====================================================
0, 3, 10, 190, 200-299 (token, permission) :class:`AuthenticationError` (``auth``)
4, 80007, 130429 (throughput), 131056      :class:`RateLimitedError` (``rate_limited``), retried
(pair rate), 131048 (spam rate)            after ``Retry-After`` or the code's own pause
131047 (re-engagement: 24 h passed)        :class:`ReengagementRequiredError`: a
                                           :class:`WindowClosedError` (``window_closed``)
131026 (undeliverable, not on WhatsApp)    :class:`NotOnWhatsAppError` (``undelivered``)
131051 (unsupported message type)          :class:`UnsupportedMessageTypeError`
131050 (stopped marketing messages)        :class:`MarketingOptOutError`
131049 (Meta chose not to deliver)         retryable :class:`ProviderError`, long pause
1, 2, 131000, 131016, 133004, HTTP 5xx     retryable :class:`ProviderError`
anything else (100, 131008, 131009, 132xxx :class:`RejectedError` (``rejected``)
templates, 368 policy block, …)
=========================================  ====================================================
"""

from __future__ import annotations

from typing import Any

import httpx

from omnichannel_sdk import (
    AuthenticationError,
    ChannelError,
    MessageError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
    parse_retry_after,
)
from omnichannel_sdk.meta import GraphError, read_graph_error

__all__ = [
    "AUTH_CODES",
    "RATE_LIMIT_CODES",
    "REENGAGEMENT",
    "MarketingOptOutError",
    "NotOnWhatsAppError",
    "ReengagementRequiredError",
    "UnsupportedMessageTypeError",
    "error_for_code",
    "graph_error",
    "status_error",
]

AUTH_CODES = frozenset({0, 3, 10, 190})
"""Codes meaning the access token is invalid, expired or lacks a permission (also 200-299)."""
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
"""Codes meaning we are throttled: app calls, WABA calls, throughput, spam rate, pair rate."""
TEMPORARY_CODES = frozenset({1, 2, 131000, 131016, 133004})
"""Codes meaning "something went wrong at Meta, try again"."""
REENGAGEMENT = 131047
"""More than 24 hours passed since the customer last wrote: only a template may go out."""
UNDELIVERABLE = 131026
"""The number is not on WhatsApp (or its app is too old, or the user has not accepted the terms)."""
UNSUPPORTED_TYPE = 131051
"""The message type is not supported."""
MARKETING_OPT_OUT = 131050
"""The user stopped marketing messages from this business."""
NOT_DELIVERED_BY_META = 131049
"""Meta chose not to deliver (per-user marketing limit): try again much later."""

_PAUSES = {131056: 6.0, 130429: 1.0, 131048: 60.0, 4: 60.0, 80007: 60.0}
"""Seconds to wait when Meta gives no ``Retry-After``: the pair rate allows one message to a
user every 6 seconds; the others are per-second or per-hour budgets."""
_MAX_DETAIL = 300


class ReengagementRequiredError(RejectedError, WindowClosedError):
    """Meta refused a free-form message because the 24-hour customer service window is closed
    (code 131047): send a template. Both a :class:`RejectedError` (not retried) and a
    :class:`WindowClosedError` (recorded as ``window_closed``)."""


class NotOnWhatsAppError(RejectedError):
    """The recipient cannot get WhatsApp messages: the number is not on WhatsApp, its app is too
    old or it has not accepted the terms (code 131026)."""


class UnsupportedMessageTypeError(RejectedError):
    """WhatsApp does not support this message type (code 131051)."""


class MarketingOptOutError(RejectedError):
    """The user stopped marketing messages from this business (code 131050); service messages
    may still reach them."""


def error_for_code(
    code: int | None, what: str, *, status: int | None = None, retry_after: float | None = None,
) -> ChannelError:
    """The typed error for a Meta error ``code`` (``None``: judged by the HTTP ``status``)."""
    kwargs: dict[str, Any] = {"vendor_code": None if code is None else str(code), "status_code": status}
    if code is not None:
        if code in AUTH_CODES or 200 <= code <= 299:
            return AuthenticationError(what, **kwargs)
        if code in RATE_LIMIT_CODES:
            return RateLimitedError(what, retry_after=retry_after if retry_after is not None
                                    else _PAUSES.get(code), **kwargs)
        if code == REENGAGEMENT:
            return ReengagementRequiredError(what, **kwargs)
        if code == UNDELIVERABLE:
            return NotOnWhatsAppError(what, **kwargs)
        if code == UNSUPPORTED_TYPE:
            return UnsupportedMessageTypeError(what, **kwargs)
        if code == MARKETING_OPT_OUT:
            return MarketingOptOutError(what, **kwargs)
        if code == NOT_DELIVERED_BY_META or code in TEMPORARY_CODES:
            return ProviderError(what, retryable=True, **kwargs)
    if status == 429:
        return RateLimitedError(what, retry_after=retry_after, **kwargs)
    if status is not None and (status >= 500 or status == 408):
        return ProviderError(what, retryable=True, **kwargs)
    if code is None and status in (401, 403):
        return AuthenticationError(what, **kwargs)
    return RejectedError(what, **kwargs)


def graph_error(adapter: str, response: httpx.Response, *, secrets: tuple[str, ...] = ()) -> ChannelError:
    """The typed error of a failed Graph API answer; ``secrets`` never reach the message."""
    status = response.status_code
    error = read_graph_error(response)
    code = error.code
    detail = error.describe(secrets=secrets, limit=_MAX_DETAIL)
    what = f"{adapter}: HTTP {status}" + (f" (WhatsApp {code})" if code is not None else "") + (
        f": {detail}" if detail else "")
    return error_for_code(code, what, status=status,
                          retry_after=parse_retry_after(response.headers.get("retry-after")))


_CODES: list[tuple[type[BaseException], str]] = [
    (RateLimitedError, "rate_limited"),
    (AuthenticationError, "auth"),
    (ReengagementRequiredError, "window_closed"),
    (NotOnWhatsAppError, "undelivered"),
    (UnsupportedMessageTypeError, "unsupported"),
]


def status_error(error: Any) -> MessageError:
    """The :class:`MessageError` of one ``statuses[].errors[]`` item of a ``failed`` receipt:
    ``code`` is our class of the Meta code (as for a failed send), ``message`` the title and
    details, ``vendor_code`` the Meta code."""
    if not isinstance(error, dict):
        return MessageError(code="undelivered", message="WhatsApp reported a failure without details")
    read = GraphError.from_payload(error)
    code = read.code
    title = error.get("title") if isinstance(error.get("title"), str) else None
    text = " — ".join(dict.fromkeys(x for x in (title, read.message, read.details) if x)) or "failed"
    typed = error_for_code(code, text)
    # a failed receipt is final whatever the code: the rest are "undelivered" (Meta's details
    # and code say why)
    ours = next((name for kind, name in _CODES if isinstance(typed, kind)), "undelivered")
    return MessageError(code=ours, message=text[:_MAX_DETAIL],
                        vendor_code=None if code is None else str(code))
