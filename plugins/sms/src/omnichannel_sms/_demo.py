"""``omnichannel demo`` support: demo channels, signed sample traffic, loopback vendor APIs."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnichannel_sdk import WebhookRequest

from ._twilio import signed_request
from ._vonage import signed_params

__all__ = ["DEMO_TWILIO_TOKEN", "DEMO_VONAGE_SECRET", "demo_channels", "simulate", "vendor_app"]

DEMO_TWILIO_TOKEN = "demo-twilio-token"  # demo credentials, published on purpose
DEMO_VONAGE_SECRET = "demo-vonage-signature-secret"
_DEMO_SID = "AC00000000000000000000000000000000"
_ids = itertools.count(1)
_background: set[asyncio.Task[Any]] = set()


def demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's SMS channels, their APIs played by :func:`vendor_app`."""
    return {
        "demo-twilio": {
            "adapter": "twilio-sms", "account_sid": _DEMO_SID, "auth_token": DEMO_TWILIO_TOKEN,
            "from_number": "+15005550006", "api_base": f"{public_url}/demo/vendor/twilio-sms",
        },
        "demo-vonage": {
            "adapter": "vonage-sms", "api_key": "demo", "api_secret": "demo-api-secret",
            "signature_secret": DEMO_VONAGE_SECRET, "signature_method": "sha256",
            "from_number": "+447700900000", "concat_timeout": 10,
            "api_base": f"{public_url}/demo/vendor/vonage-sms",
        },
    }


def simulate(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest] | None:
    """Signed sample requests for a demo SMS channel (demo credentials)."""
    url = f"{public_url}/webhooks/{channel_key}"
    n = next(_ids)
    stamp = int(time.time())
    if adapter_name == "twilio-sms":
        return [signed_request(DEMO_TWILIO_TOKEN, url, [
            ("MessageSid", f"SMdemo{stamp}{n:06d}"), ("AccountSid", _DEMO_SID),
            ("From", "+14155550100"), ("To", "+15005550006"), ("Body", "Hi! Where is my order #1234?"),
            ("NumMedia", "0"), ("NumSegments", "1"), ("SmsStatus", "received"), ("FromCountry", "US"),
            ("ApiVersion", "2010-04-01")])]
    if adapter_name == "vonage-sms":
        def vonage(params: dict[str, Any]) -> WebhookRequest:
            body = orjson.dumps(signed_params(DEMO_VONAGE_SECRET, params, "sha256"))
            return WebhookRequest("POST", url, {"content-type": "application/json"}, body)

        ref = f"{stamp % 250}{n}"
        base = {"msisdn": "447700900001", "to": "447700900000", "type": "text",
                "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "concat": "true", "concat-ref": ref, "concat-total": "2"}
        # the second half of a long SMS arrives first; the hub puts them back together
        return [vonage({**base, "messageId": f"demo{stamp}{n}b", "concat-part": "2",
                        "text": "the parcel has not arrived yet."}),
                vonage({**base, "messageId": f"demo{stamp}{n}a", "concat-part": "1",
                        "text": "Hello, I ordered a blue kettle last week and "})]
    return None


def _channel_key(callback: str | None) -> str | None:
    if not callback or "/webhooks/" not in callback:
        return None
    return callback.rsplit("/webhooks/", 1)[1].split("?", 1)[0] or None


def _later(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def vendor_app(adapter_name: str, hub: Any) -> Starlette | None:
    """A loopback vendor API that accepts sends and reports delivery with signed callbacks."""
    if adapter_name == "twilio-sms":
        async def messages(request: Request) -> Response:
            form = await request.form()
            sid = f"SMstub{next(_ids):026d}"
            key = _channel_key(str(form.get("StatusCallback") or ""))

            async def report() -> None:
                for status in ("sent", "delivered"):
                    await asyncio.sleep(0.3)
                    if key and key in hub.adapters:
                        await hub.handle_webhook(key, signed_request(
                            DEMO_TWILIO_TOKEN, hub.request_url(key), [
                                ("MessageSid", sid), ("MessageStatus", status),
                                ("AccountSid", _DEMO_SID), ("To", str(form.get("To") or ""))]))

            _later(report())
            return JSONResponse({"sid": sid, "status": "queued", "to": form.get("To"),
                                 "body": form.get("Body"), "num_segments": "1"}, status_code=201)

        return Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", messages,
                                       methods=["POST"])])
    if adapter_name == "vonage-sms":
        async def sms(request: Request) -> Response:
            form = await request.form()
            mid = f"stub{next(_ids):012d}"
            key = _channel_key(str(form.get("callback") or ""))

            async def report() -> None:
                await asyncio.sleep(0.3)
                if key and key in hub.adapters:
                    params = signed_params(DEMO_VONAGE_SECRET, {
                        "msisdn": str(form.get("to") or ""), "to": str(form.get("from") or ""),
                        "messageId": mid, "status": "delivered", "err-code": "0",
                        "client-ref": str(form.get("client-ref") or ""), "scts": "2601011200"},
                        "sha256")
                    await hub.handle_webhook(key, WebhookRequest(
                        "POST", hub.request_url(key), {"content-type": "application/json"},
                        orjson.dumps(params)))

            _later(report())
            return JSONResponse({"message-count": "1", "messages": [{
                "to": form.get("to"), "message-id": mid, "status": "0",
                "remaining-balance": "10.0", "message-price": "0.03", "network": "23410"}]})

        return Starlette(routes=[Route("/sms/json", sms, methods=["POST"])])
    return None
