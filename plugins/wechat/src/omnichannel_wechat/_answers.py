"""What WeChat's API answers: JSON (HTTP 200 even for errors) with an ``errcode``, and the
typed errors those codes become (:meth:`WeChatAnswers.error_for_errcode` is the one place).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from omnichannel_sdk import (
    AuthenticationError,
    ChannelAdapter,
    OmnichannelError,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    WindowClosedError,
)

from ._settings import WeChatSettings

__all__ = ["TOKEN_ERRCODES", "WeChatAnswers", "WeChatWindowClosedError"]

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
"""Invalid, malformed or expired ``access_token``: refresh once and retry the call."""
_AUTH_ERRCODES = frozenset({40002, 40013, 40125, 40164, 41001, 41002, 41004, 48001, 50001, 50002,
                            61024})
_BEIJING = timedelta(hours=8)


class WeChatWindowClosedError(RejectedError, WindowClosedError):
    """WeChat refused a customer-service message because the 48-hour window is closed
    (errcode 45015). A :class:`~omnichannel_sdk.WindowClosedError` that is also a
    non-retryable :class:`~omnichannel_sdk.RejectedError`, so the outbox fails it at once."""


class WeChatAnswers(ChannelAdapter[WeChatSettings]):
    """Reading WeChat's JSON answers and mapping their ``errcode``."""

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        self.raise_for_status(response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ProviderError(f"{self.name}: the API answered something other than JSON",
                                retryable=True, status_code=response.status_code) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name}: unexpected JSON answer", retryable=True)
        return data

    def error_for_errcode(self, code: int, errmsg: Any = None) -> OmnichannelError:
        """The typed error for a WeChat ``errcode`` (the one place they are mapped)."""
        detail = str(errmsg)[:200] if errmsg else ""
        what = f"{self.name}: errcode {code}" + (f": {detail}" if detail else "")
        if code == 45015:
            return WeChatWindowClosedError(what, vendor_code=code)
        if code == 43004:  # the customer unfollowed the account
            return OptedOutError(what)
        if code == 45009:  # daily quota: resets at midnight Beijing time
            return RateLimitedError(what, retry_after=_seconds_to_beijing_midnight(),
                                    vendor_code=code)
        if code == 45011:  # per-minute frequency limit
            return RateLimitedError(what, retry_after=60.0, vendor_code=code)
        if code in (45047, 45045, 45010):  # too many messages without a customer answer
            return RateLimitedError(what, vendor_code=code)
        if code in TOKEN_ERRCODES or code in _AUTH_ERRCODES:
            return AuthenticationError(what, vendor_code=code)
        if code == -1:  # system busy
            return ProviderError(what, vendor_code=code, retryable=True)
        return RejectedError(what, vendor_code=code)


def _errcode(data: Mapping[str, Any]) -> int:
    code = data.get("errcode", 0)
    try:
        return int(code or 0)
    except (TypeError, ValueError):
        return -1


def _seconds_to_beijing_midnight() -> float:
    now = datetime.now(UTC) + _BEIJING
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - now).total_seconds())
