"""Telegram bots for omnichannel_sdk: adapter ``telegram`` (registered through the
``omnichannel`` entry point)."""

from __future__ import annotations

from omnichannel_sdk import redact

from ._adapter import SECRET_HEADER, ChatAction, TelegramAdapter, TelegramSettings, api_error
from ._inbound import FILE_SCHEME, parse_update
from ._outbound import MAX_CALLBACK_DATA, MAX_TEXT, build_calls, callback_data, markdown_to_html

__all__ = [
    "FILE_SCHEME",
    "MAX_CALLBACK_DATA",
    "MAX_TEXT",
    "SECRET_HEADER",
    "ChatAction",
    "TelegramAdapter",
    "TelegramSettings",
    "api_error",
    "build_calls",
    "callback_data",
    "markdown_to_html",
    "parse_update",
    "redact",
]
