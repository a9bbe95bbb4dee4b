"""``omnichannel demo`` support: a demo bot, simulated updates, a loopback Bot API.

The loopback Bot API answers ``sendMessage`` and the other send methods as Telegram does
(``{"ok": true, "result": Message}``), serves ``getFile`` and the file download, so the demo
runs the real media path. Telegram has no delivery receipts for bots: sent stays sent.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnichannel_sdk import WebhookRequest

from ._adapter import SECRET_HEADER

__all__ = ["DEMO_KEY", "demo_channels", "demo_requests", "demo_vendor"]

DEMO_KEY = "demo-telegram"
"""The demo's Telegram channel key."""
_BOT_TOKEN = "100000001:demo-bot-token-published-on-purpose"  # demo credentials, public on purpose
_SECRET = "demo-telegram-secret"
_PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                       "1f15c4890000000d49444154789c6360f80f0000010100005c2d2a4b0000000049454e44ae426082")
_counter = itertools.count(1)


def demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo bot, pointed at the loopback Bot API."""
    return {DEMO_KEY: {"adapter": "telegram", "bot_token": _BOT_TOKEN, "secret_token": _SECRET,
                       "api_base": f"{public_url}/demo/vendor/telegram"}}


def demo_requests(channel_key: str, public_url: str) -> list[WebhookRequest]:
    """A customer writing to the bot: a text, then a photo with a caption."""
    n = next(_counter)
    now = int(time.time())
    user = {"id": 500000000 + n, "is_bot": False, "first_name": "Demo", "last_name": f"Customer {n}",
            "language_code": "en"}
    chat = {"id": user["id"], "type": "private", "first_name": "Demo", "last_name": f"Customer {n}"}
    base = now * 10 + n * 1000
    updates = [
        {"update_id": base + 1, "message": {"message_id": base + 1, "from": user, "chat": chat,
                                            "date": now, "text": "Hi! Is my order #1234 on its way?"}},
        {"update_id": base + 2, "message": {"message_id": base + 2, "from": user, "chat": chat,
                                            "date": now, "caption": "This is the parcel label",
                                            "photo": [{"file_id": f"demo-photo-{n}-s",
                                                       "file_unique_id": f"u{n}s", "width": 90,
                                                       "height": 90, "file_size": 1200},
                                                      {"file_id": f"demo-photo-{n}",
                                                       "file_unique_id": f"u{n}", "width": 800,
                                                       "height": 800, "file_size": 68}]}},
    ]
    return [WebhookRequest("POST", f"{public_url}/webhooks/{channel_key}",
                           {"content-type": "application/json", SECRET_HEADER: _SECRET},
                           orjson.dumps(update)) for update in updates]


def demo_vendor() -> Starlette:
    """A tiny Bot API for the demo bot."""

    async def method(request: Request) -> Response:
        name = request.path_params["method"]
        if request.headers.get("content-type", "").startswith("application/json"):
            params = await request.json()
        else:
            params = dict(await request.form())
        if name in ("sendChatAction", "answerCallbackQuery", "setWebhook"):
            return JSONResponse({"ok": True, "result": True})
        if name == "getFile":
            return JSONResponse({"ok": True, "result": {
                "file_id": params.get("file_id"), "file_unique_id": "demo", "file_size": len(_PIXEL),
                "file_path": "photos/demo.png"}})
        if not name.startswith("send"):
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, 404)
        chat = params.get("chat_id")
        return JSONResponse({"ok": True, "result": {
            "message_id": next(_counter) + 900000, "date": int(time.time()),
            "chat": {"id": int(chat) if str(chat).lstrip("-").isdigit() else 0, "type": "private"},
            **({"text": params["text"]} if "text" in params else {})}})

    async def file(request: Request) -> Response:
        return Response(_PIXEL, media_type="image/png")

    return Starlette(routes=[Route("/bot{token}/{method}", method, methods=["POST"]),
                             Route("/file/bot{token}/{path:path}", file)])
