"""Helpers for tests of code that uses the ``telegram`` adapter: webhook requests as Telegram
sends them, and Bot API answers (for respx) in Telegram's documented shapes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from omnichannel_sdk import WebhookRequest

from ._adapter import SECRET_HEADER

__all__ = ["EXAMPLE_BOT_TOKEN", "api_error", "api_result", "sent_message", "update_request"]

EXAMPLE_BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
"""The example token of the Bot API documentation (bot id ``123456``)."""


def update_request(body: dict[str, Any] | bytes, url: str, secret: str | None) -> WebhookRequest:
    """A webhook POST of ``body`` (an ``Update``) to ``url``, with ``secret`` in
    ``X-Telegram-Bot-Api-Secret-Token`` (``None``: without the header)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return WebhookRequest("POST", url, headers, raw)


def api_result(result: Any) -> httpx.Response:
    """A successful Bot API answer: ``{"ok": true, "result": …}``."""
    return httpx.Response(200, json={"ok": True, "result": result})


def sent_message(message_id: int, chat_id: int = 111222333) -> httpx.Response:
    """The answer to ``sendMessage`` and the other send methods: the sent ``Message``."""
    return api_result({"message_id": message_id, "date": 1764600000,
                       "chat": {"id": chat_id, "type": "private"}})


def api_error(code: int, description: str, **parameters: Any) -> httpx.Response:
    """A failed Bot API answer (``parameters`` such as ``retry_after=7``)."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(code, json=body)
