"""Log lines that never carry a secret, and JSON logs as an option.

Vendor APIs put credentials in URLs (Telegram's ``/bot<token>/``, WeChat's ``access_token=``),
and httpx writes every request URL at INFO. The hub therefore installs :class:`RedactingFilter`
on the loggers its work writes to (httpx, httpcore, uvicorn, the SDK's and the plugins' own):
the filter rewrites each record before any handler sees it —

- URLs keep their scheme, host and path; user info and query values become ``<redacted>``;
- a Telegram-style ``/bot<id>:<token>`` path segment becomes ``/bot<redacted>``;
- the exact secret values of every open hub's channel settings (the ``SecretStr`` fields, six
  characters or longer) become ``<redacted>`` wherever they appear, tracebacks included;
- uvicorn's access line keeps the path and drops the query values (signed query strings).

``omnichannel serve`` puts the same filter on its handlers, so records propagated from any
logger are covered there too.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from ._redact import BOT_TOKEN, REDACTED, redact_query, redact_url

__all__ = [
    "JsonFormatter",
    "RedactingFilter",
    "forget_secrets",
    "install_redaction",
    "logging_config",
    "redact",
    "redact_url",
    "remember_secrets",
    "secret_values",
]

MIN_SECRET_LENGTH = 6
"""Shorter values are not redacted by value (a one-letter test secret would mangle every line);
URL redaction still applies to them."""

_URL = re.compile(r"""\b(?:https?|wss?)://[^\s"'<>()\[\]{}]+""")
_PATH_QUERY = re.compile(r"""(?<![\w/:])(/[^\s"'?<>]*)\?([^\s"'<>]+)""")

_lock = threading.Lock()
_secrets: Counter[str] = Counter()
_pattern: re.Pattern[str] | None = None

# loggers whose lines the SDK causes; filters on a logger see only records logged on it
_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2",
            "httpcore.proxy", "httpcore.socks", "httpcore.connection_pool", "uvicorn",
            "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "omnichannel_sdk")


def redact(text: str) -> str:
    """``text`` with every URL redacted and every registered secret value replaced."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    if "?" in text:
        text = _PATH_QUERY.sub(lambda m: f"{BOT_TOKEN.sub('/bot' + REDACTED, m.group(1))}?"
                                         f"{redact_query(m.group(2))}", text)
    if "/bot" in text:
        text = BOT_TOKEN.sub(f"/bot{REDACTED}", text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return text


def secret_values(settings: Any) -> set[str]:
    """The secret values (``SecretStr``/``SecretBytes``) inside a settings model, recursively."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, SecretBytes):
            found.add(value.get_secret_value().decode("utf-8", "replace"))
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name, None))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    walk(settings)
    return {v for v in found if len(v) >= MIN_SECRET_LENGTH}


def _rebuild() -> None:
    global _pattern
    values = sorted((v for v, n in _secrets.items() if n > 0), key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(v) for v in values)) if values else None


def remember_secrets(values: Iterable[str]) -> None:
    """Redact these values from log lines until :func:`forget_secrets` (counted per call)."""
    with _lock:
        _secrets.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)
        _rebuild()


def forget_secrets(values: Iterable[str]) -> None:
    """Undo one :func:`remember_secrets` of these values."""
    with _lock:
        _secrets.subtract(v for v in values if len(v) >= MIN_SECRET_LENGTH)
        for value in [v for v, n in _secrets.items() if n <= 0]:
            del _secrets[value]
        _rebuild()


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback) with :func:`redact`; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place."""
        if getattr(record, "_omnichannel_redacted", False):
            return True
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's own access formatter unpacks these five arguments: keep their shape
            args = list(record.args)
            args[2] = redact(str(args[2]))
            record.args = tuple(args)
            record._omnichannel_redacted = True
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's to report, not ours
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._omnichannel_redacted = True
        return True


_FILTER = RedactingFilter()


def install_redaction(extra_loggers: Iterable[str] = ()) -> None:
    """Put the redacting filter on the loggers the SDK's work writes to (idempotent).

    Covers httpx, httpcore, uvicorn, ``omnichannel_sdk`` and every ``omnichannel_*`` logger that
    exists now (plugins make theirs at import, before a hub opens), plus ``extra_loggers``.
    """
    names = set(_LOGGERS) | set(extra_loggers)
    names.update(n for n in list(logging.root.manager.loggerDict) if n.startswith("omnichannel"))
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    and ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def logging_config(log_format: str = "text", level: str = "INFO") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``omnichannel serve``: one stderr handler with
    the redacting filter, text or JSON lines, for the root, uvicorn and the SDK."""
    formatter: dict[str, Any] = (
        {"()": "omnichannel_sdk._logging.JsonFormatter"} if log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "omnichannel_sdk._logging.RedactingFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "filters": ["redact"], "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
        },
    }
