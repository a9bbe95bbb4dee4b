"""``omnichannel demo`` support: a demo WhatsApp channel, signed customer traffic, a loopback Cloud API.

The loopback API accepts sends like the Cloud API does and then reports ``sent``, ``delivered``
and ``read`` back as status webhooks through the channel's own pipeline
(``services.receive(..., trusted=True)``), so the parser runs on them too. It also answers media
lookups and serves the media bytes, with the same bearer token check as Meta's media host.
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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnichannel_sdk import WebhookRequest
from omnichannel_sdk.meta import SIGNATURE_HEADER, sign_body

from ._inbound import OBJECT

if TYPE_CHECKING:
    from omnichannel_sdk import Hub

__all__ = ["DEMO_KEY", "DEMO_PHONE_NUMBER_ID", "demo_channels", "demo_requests", "demo_vendor"]

DEMO_KEY = "demo-whatsapp"
"""Channel key of the demo's WhatsApp channel."""
DEMO_PHONE_NUMBER_ID = "106540352242922"
"""The demo business number's id."""
_DISPLAY_NUMBER = "15550783881"
_WABA = "102290129340398"
_APP_SECRET = "demo-whatsapp-app-secret"  # demo credentials, published on purpose
_VERIFY_TOKEN = "demo-whatsapp-verify-token"
_ACCESS_TOKEN = "demo-whatsapp-access-token"
# a 1x1 PNG: what the demo customer "sends"
_PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                     "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2219bc3"
                     "0000000049454e44ae426082")
_counter = itertools.count(1)
log = logging.getLogger("omnichannel_whatsapp.demo")
_background: set[asyncio.Task[Any]] = set()


def demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's WhatsApp channel, pointed at the loopback Cloud API."""
    return {DEMO_KEY: {
        "adapter": "whatsapp", "app_secret": _APP_SECRET, "verify_token": _VERIFY_TOKEN,
        "access_token": _ACCESS_TOKEN, "phone_number_id": DEMO_PHONE_NUMBER_ID,
        "api_base": f"{public_url}/demo/vendor/whatsapp"}}


def _envelope(value: dict[str, Any]) -> dict[str, Any]:
    return {"object": OBJECT, "entry": [{"id": _WABA, "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": _DISPLAY_NUMBER, "phone_number_id": DEMO_PHONE_NUMBER_ID},
        **value}}]}]}


def demo_requests(channel_key: str, public_url: str) -> list[WebhookRequest]:
    """A customer writing to the demo number: a text and a photo with a caption, signed."""
    n = next(_counter)
    now = int(time.time())
    customer = f"1555010{n % 10000:04d}"
    body = _envelope({
        "contacts": [{"profile": {"name": f"Demo Customer {n}"}, "wa_id": customer}],
        "messages": [
            {"from": customer, "id": f"wamid.DEMO{n}{now}A", "timestamp": str(now), "type": "text",
             "text": {"body": "Hi! My parcel #1234 arrived damaged."}},
            {"from": customer, "id": f"wamid.DEMO{n}{now}B", "timestamp": str(now + 1), "type": "image",
             "image": {"caption": "This is how it looks", "mime_type": "image/png",
                       "sha256": "demo", "id": f"{900000000 + n}"}},
        ]})
    raw = orjson.dumps(body)
    return [WebhookRequest("POST", f"{public_url}/webhooks/{channel_key}", {
        "content-type": "application/json", SIGNATURE_HEADER: sign_body(_APP_SECRET, raw)}, raw)]


def demo_vendor(hub: Hub) -> Starlette:
    """A tiny Cloud API: sends (reporting receipts back), mark-as-read, uploads, media lookups."""
    adapters = [a for a in hub.adapters.values() if a.name == "whatsapp"]

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {_ACCESS_TOKEN}"

    def denied() -> JSONResponse:
        return JSONResponse({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                       "code": 190, "fbtrace_id": "demo"}}, status_code=401)

    async def report(to: str, wamid: str) -> None:
        for delay, status in ((0.1, "sent"), (0.3, "delivered"), (0.5, "read")):
            await asyncio.sleep(delay)
            item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                                    "recipient_id": to}
            if status != "read":
                item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service",
                                   "type": "free_customer_service"}
            raw = orjson.dumps(_envelope({"statuses": [item]}))
            for adapter in adapters:
                services = adapter.context.services
                if not services.running:  # the demo stopped meanwhile
                    return
                try:
                    await services.receive(WebhookRequest(
                        "POST", adapter.context.webhook_url, {"content-type": "application/json"}, raw),
                        trusted=True)
                except Exception:  # a demo receipt is best effort
                    log.debug("demo receipt for %s not applied", wamid, exc_info=True)

    async def messages(request: Request) -> JSONResponse:
        if not authorized(request):
            return denied()
        payload = await request.json()
        if payload.get("status") == "read":
            return JSONResponse({"success": True})
        to = str(payload.get("to", ""))
        wamid = f"wamid.DEMOOUT{next(_counter)}"
        task = asyncio.create_task(report(to.lstrip("+"), wamid))
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({"messaging_product": "whatsapp",
                             "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                             "messages": [{"id": wamid, "message_status": "accepted"}]})

    async def upload(request: Request) -> JSONResponse:
        if not authorized(request):
            return denied()
        form = await request.form()
        if "file" not in form:
            return JSONResponse({"error": {"message": "(#100) file is required", "code": 100}},
                                status_code=400)
        return JSONResponse({"id": f"{800000000 + next(_counter)}"})

    async def lookup(request: Request) -> JSONResponse:
        if not authorized(request):
            return denied()
        media = str(request.path_params["media"])
        base = str(request.base_url).rstrip("/")
        prefix = request.scope.get("root_path", "")
        return JSONResponse({"messaging_product": "whatsapp", "url": f"{base}{prefix}/download/{media}",
                             "mime_type": "image/png", "sha256": "demo", "file_size": str(len(_PNG)),
                             "id": media})

    async def download(request: Request) -> Response:
        if not authorized(request):
            return Response(status_code=401)
        return Response(_PNG, media_type="image/png")

    return Starlette(routes=[
        Route("/{version}/{number}/messages", messages, methods=["POST"]),
        Route("/{version}/{number}/media", upload, methods=["POST"]),
        Route("/download/{media}", download, methods=["GET"]),
        Route("/{version}/{media}", lookup, methods=["GET"]),
    ])
