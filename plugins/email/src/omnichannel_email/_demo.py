"""The email channels of ``omnichannel demo``: Mailgun, SendGrid and Postmark against a
loopback vendor stub, with correctly signed sample inbound mail; the stub reports delivery the
way each vendor does, by posting a signed event webhook that runs the hub's full pipeline."""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnichannel_sdk import WebhookRequest

from ._mailgun import mailgun_signature

__all__ = ["demo_channels", "demo_event", "demo_requests", "demo_vendor"]

DEMO_SECRET = "demo-secret"  # published on purpose: the demo runs offline on loopback
_ADAPTERS = ("mailgun", "sendgrid", "postmark")
_counter = itertools.count(1)
_background: set[asyncio.Task[Any]] = set()


def demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """One demo channel per vendor adapter."""
    common = {"from_address": "support@demo.example", "from_name": "Demo Support"}
    return {
        "demo-mailgun": {"adapter": "mailgun", **common, "signing_key": DEMO_SECRET,
                         "api_key": DEMO_SECRET, "api_base": f"{public_url}/demo/vendor/mailgun"},
        "demo-sendgrid": {"adapter": "sendgrid", **common, "api_key": DEMO_SECRET,
                          "basic_auth_username": "demo", "basic_auth_password": DEMO_SECRET,
                          "api_base": f"{public_url}/demo/vendor/sendgrid"},
        "demo-postmark": {"adapter": "postmark", **common, "server_token": DEMO_SECRET,
                          "basic_auth_username": "demo", "basic_auth_password": DEMO_SECRET,
                          "api_base": f"{public_url}/demo/vendor/postmark"},
    }


def _sample_mime(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@mail.example>"
    msg["To"] = "Demo Support <support@demo.example>"
    msg["Subject"] = "Where is my order #1234?"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<demo-{n}-{time.time_ns()}@mail.example>"
    msg.set_content("Hello,\n\nmy order #1234 has not arrived yet. Can you help?\n\n-- \nCustomer")
    return msg.as_bytes()


def _multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "demo" + secrets.token_hex(8)
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                      .encode() + value + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def demo_requests(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest]:
    """A signed inbound email for a demo channel of ``adapter_name``."""
    if adapter_name not in _ADAPTERS:
        return []
    url = f"{public_url}/webhooks/{channel_key}"
    n = next(_counter)
    raw = _sample_mime(n)
    basic = "Basic " + base64.b64encode(f"demo:{DEMO_SECRET}".encode()).decode()
    if adapter_name == "mailgun":
        timestamp, token = str(int(time.time())), secrets.token_hex(25)
        body, ctype = _multipart({
            "recipient": b"support@demo.example", "sender": f"customer{n}@mail.example".encode(),
            "timestamp": timestamp.encode(), "token": token.encode(),
            "signature": mailgun_signature(DEMO_SECRET, timestamp, token).encode(),
            "body-mime": raw})
        return [WebhookRequest("POST", url, {"content-type": ctype}, body)]
    if adapter_name == "sendgrid":
        body, ctype = _multipart({
            "email": raw, "to": b"support@demo.example",
            "envelope": orjson.dumps({"to": ["support@demo.example"],
                                      "from": f"customer{n}@mail.example"})})
        return [WebhookRequest("POST", url, {"content-type": ctype, "authorization": basic}, body)]
    payload = orjson.dumps({
        "FromFull": {"Email": f"customer{n}@mail.example", "Name": f"Customer {n}"},
        "ToFull": [{"Email": "support@demo.example", "Name": "Demo Support"}],
        "Subject": "Where is my order #1234?", "MessageID": f"demo-{n}-{time.time_ns()}",
        "Date": formatdate(usegmt=True), "TextBody": "Hello,\n\nmy order #1234 is late.",
        "Headers": [{"Name": "Message-ID", "Value": f"<pm-{n}-{time.time_ns()}@mail.example>"}],
        "Attachments": []})
    return [WebhookRequest("POST", url, {"content-type": "application/json", "authorization": basic},
                           payload)]


def demo_event(adapter_name: str, vendor_id: str, url: str) -> WebhookRequest:
    """The vendor's signed "delivered" event webhook about the message it named ``vendor_id``."""
    basic = "Basic " + base64.b64encode(f"demo:{DEMO_SECRET}".encode()).decode()
    now = int(time.time())
    if adapter_name == "mailgun":
        token = secrets.token_hex(25)
        body = orjson.dumps({
            "signature": {"timestamp": str(now), "token": token,
                          "signature": mailgun_signature(DEMO_SECRET, str(now), token)},
            "event-data": {"event": "delivered", "id": secrets.token_urlsafe(16),
                           "timestamp": float(now), "recipient": "customer@mail.example",
                           "message": {"headers": {"message-id": vendor_id}},
                           "delivery-status": {"code": 250, "message": "OK"}}})
        return WebhookRequest("POST", url, {"content-type": "application/json"}, body)
    if adapter_name == "sendgrid":
        body = orjson.dumps([{"event": "delivered", "timestamp": now, "email": "customer@mail.example",
                              "sg_event_id": secrets.token_urlsafe(16), "response": "250 OK",
                              "sg_message_id": f"{vendor_id}.filterdrecv-demo-1-0"}])
    else:
        body = orjson.dumps({"RecordType": "Delivery", "MessageID": vendor_id,
                             "Recipient": "customer@mail.example", "Details": "250 OK",
                             "DeliveredAt": datetime.fromtimestamp(now, UTC).isoformat()})
    return WebhookRequest("POST", url, {"content-type": "application/json", "authorization": basic},
                          body)


def demo_vendor(adapter_name: str, hub: Any) -> Any:
    """A loopback vendor that accepts sends and posts a signed delivery event half a second
    later (through the hub's verify → parse → apply pipeline, as the real vendor would)."""
    if adapter_name not in _ADAPTERS:
        return None

    def report(vendor_id: str) -> None:
        keys = [k for k, a in hub.adapters.items() if a.name == adapter_name]

        async def later() -> None:
            await asyncio.sleep(0.5)
            for key in keys:
                await hub.handle_webhook(key, demo_event(adapter_name, vendor_id,
                                                         hub.request_url(key)))

        task = asyncio.create_task(later())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def endpoint(request: Request) -> Response:
        n = next(_counter)
        if adapter_name == "mailgun":
            vendor_id = f"stub-{n}@demo.example"
            report(vendor_id)
            return JSONResponse({"id": f"<{vendor_id}>", "message": "Queued. Thank you."})
        if adapter_name == "sendgrid":
            vendor_id = f"stub-{n}"
            report(vendor_id)
            return Response(status_code=202, headers={"x-message-id": vendor_id})
        vendor_id = f"stub-{n}"
        report(vendor_id)
        return JSONResponse({"ErrorCode": 0, "Message": "OK", "MessageID": vendor_id,
                             "SubmittedAt": formatdate(usegmt=True)})

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])
