"""``omnichannel demo`` support: demo channels, signed sample traffic, a loopback Send API.

The demo Send API accepts every message like Graph does (``{"recipient_id", "message_id"}``)
and, a moment later, reports delivery and read back as signed-equivalent webhooks through the
hub's own pipeline (``hub.handle_webhook(..., trusted=True)``), so the parser is exercised too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from omnichannel_sdk import WebhookRequest
from omnichannel_sdk.meta import SIGNATURE_HEADER, sign_body

if TYPE_CHECKING:
    from omnichannel_sdk import Hub

__all__ = ["DEMO_SETTINGS", "demo_channels", "demo_requests", "demo_vendor"]

DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "messenger": {"key": "demo-messenger", "page_id": "100000000000001", "object": "page"},
    "instagram": {"key": "demo-instagram", "page_id": "17840000000000001", "object": "instagram"},
}
_APP_SECRET = "demo-meta-app-secret"  # demo credentials, published on purpose
_VERIFY_TOKEN = "demo-verify-token"
_PAGE_TOKEN = "demo-page-token"
_counter = itertools.count(1)
log = logging.getLogger("omnichannel_messenger.demo")
_background: set[asyncio.Task[Any]] = set()


def demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's Messenger and Instagram channels, pointed at the loopback Send API."""
    return {
        spec["key"]: {
            "adapter": name, "app_secret": _APP_SECRET, "verify_token": _VERIFY_TOKEN,
            "page_access_token": _PAGE_TOKEN, "page_id": spec["page_id"], "human_agent_tag": True,
            "api_base": f"{public_url}/demo/vendor/{name}",
        }
        for name, spec in DEMO_SETTINGS.items()
    }


def _signed(url: str, body: dict[str, Any]) -> WebhookRequest:
    raw = orjson.dumps(body)
    return WebhookRequest("POST", url, {"content-type": "application/json",
                                        SIGNATURE_HEADER: sign_body(_APP_SECRET, raw)}, raw)


def demo_requests(adapter_name: str, channel_key: str, public_url: str) -> list[WebhookRequest]:
    """A customer writing to the demo page: a text and a quick-reply answer, signed."""
    spec = DEMO_SETTINGS[adapter_name]
    n = next(_counter)
    now = int(time.time() * 1000)
    customer = f"{7000000000000000 + n}"
    page = spec["page_id"]
    events = [
        {"sender": {"id": customer}, "recipient": {"id": page}, "timestamp": now,
         "message": {"mid": f"m_demo_{n}_{now}_1", "text": "Hi! Is my order #1234 on its way?"}},
        {"sender": {"id": customer}, "recipient": {"id": page}, "timestamp": now + 1,
         "message": {"mid": f"m_demo_{n}_{now}_2", "text": "Track it",
                     "quick_reply": {"payload": "TRACK_ORDER"}}},
    ]
    body = {"object": spec["object"], "entry": [{"id": page, "time": now, "messaging": events}]}
    return [_signed(f"{public_url}/webhooks/{channel_key}", body)]


def demo_vendor(adapter_name: str, hub: Hub) -> Starlette:
    """A tiny Graph API: accepts sends (and uploads), reports delivery and read via webhooks, and
    answers profile lookups with a made-up name."""
    spec = DEMO_SETTINGS[adapter_name]
    keys = [k for k, a in hub.adapters.items() if a.name == adapter_name]

    async def report(psid: str, mid: str) -> None:
        for delay, field in ((0.3, "delivery"), (0.5, "read")):
            await asyncio.sleep(delay)
            now = int(time.time() * 1000)
            receipt: dict[str, Any] = {"watermark": now}
            if field == "delivery":
                receipt["mids"] = [mid]
            body = {"object": spec["object"], "entry": [{"id": spec["page_id"], "time": now, "messaging": [
                {"sender": {"id": psid}, "recipient": {"id": spec["page_id"]}, "timestamp": now,
                 field: receipt}]}]}
            for key in keys:
                if not hub.is_open:  # the demo stopped meanwhile
                    return
                raw = orjson.dumps(body)
                try:
                    await hub.handle_webhook(key, WebhookRequest(
                        "POST", hub.request_url(key), {"content-type": "application/json"}, raw),
                        trusted=True)
                except Exception:  # a demo receipt is best effort
                    log.debug("demo receipt for %s not applied", mid, exc_info=True)

    async def messages(request: Request) -> JSONResponse:
        payload = await request.json()
        psid = str(payload.get("recipient", {}).get("id", ""))
        if "sender_action" in payload:
            return JSONResponse({"recipient_id": psid})
        mid = f"m_demo_out_{next(_counter)}"
        task = asyncio.create_task(report(psid, mid))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({"recipient_id": psid, "message_id": mid})

    async def attachments(request: Request) -> JSONResponse:
        form = await request.form()
        if "filedata" not in form:
            return JSONResponse({"error": {"message": "(#100) filedata is required", "code": 100}},
                                status_code=400)
        return JSONResponse({"attachment_id": f"{900000000000000 + next(_counter)}"})

    async def profile(request: Request) -> JSONResponse:
        user = str(request.path_params["user"])
        if adapter_name == "instagram":
            return JSONResponse({"name": f"Demo Customer {user[-4:]}", "username": f"demo_{user[-4:]}",
                                 "id": user})
        return JSONResponse({"first_name": "Demo", "last_name": f"Customer {user[-4:]}",
                             "locale": "en_US", "timezone": 1, "id": user})

    return Starlette(routes=[Route("/{version}/me/messages", messages, methods=["POST"]),
                             Route("/{version}/me/message_attachments", attachments, methods=["POST"]),
                             Route("/{version}/{user}", profile, methods=["GET"])])
