"""Shared values of the Telegram tests: credentials, signed requests, Bot API answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from omnichannel_sdk import WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL

SAMPLES = Path(__file__).parent / "samples"
BOT_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"  # the Bot API documentation's example
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{key}", headers, raw)


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, "result": result})


def sent(message_id: int, chat_id: int = 111222333) -> httpx.Response:
    return ok({"message_id": message_id, "date": 1764600000, "chat": {"id": chat_id, "type": "private"}})


def failed(code: int, description: str, **parameters: Any) -> httpx.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return httpx.Response(code, json=body)
