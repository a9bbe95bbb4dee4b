"""Keeping the bot token out of log lines.

Bot API URLs hold the token (``/bot<token>/sendMessage``) and httpx logs every request URL at
INFO. A filter on the ``httpx`` and ``httpcore`` loggers rewrites such records before any
handler sees them; :func:`redact` is the same rule for our own messages.
"""

from __future__ import annotations

import logging
import re

__all__ = ["install_redaction", "redact"]

_TOKEN = re.compile(r"bot\d{1,20}:[A-Za-z0-9_-]{20,}")
_LOGGERS = ("httpx", "httpcore")


def redact(text: str) -> str:
    """``text`` with every bot token replaced by ``bot<redacted>``."""
    return _TOKEN.sub("bot<redacted>", text)


class TokenFilter(logging.Filter):
    """Rewrites a record whose message holds a bot token (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        if _TOKEN.search(message):
            record.msg, record.args = redact(message), None
        return True


_FILTER = TokenFilter()


def install_redaction() -> None:
    """Add the filter to httpx's loggers (once; safe to call again)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
