"""Hook implementations of omnichannel-wechat: the adapter and its demo."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from omnichannel_sdk import ChannelAdapter, Demo, Hub, WebhookRequest, hookimpl

from ._adapter import WeChatAdapter
from ._crypto import WeChatCrypto, decode_aes_key
from ._simulate import signed_webhook
from ._xml import build_xml

DEMO_APP_ID = "wxd3m0000000000001"
DEMO_TOKEN = "demotoken"  # demo credentials, published on purpose
DEMO_AES_KEY = "b21uaWNoYW5uZWwtZGVtby13ZWNoYXQtYWVzLWtleSE"
_counter = itertools.count(1)
_background: set[asyncio.Task[Any]] = set()


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``wechat-mp``."""
    register(WeChatAdapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """A safe-mode WeChat channel whose API is the demo's loopback stub."""
    return {"demo-wechat": {
        "adapter": WeChatAdapter.name, "app_id": DEMO_APP_ID, "app_secret": "demo-secret",
        "token": DEMO_TOKEN, "encoding_aes_key": DEMO_AES_KEY,
        "api_base": f"{public_url}/demo/vendor/{WeChatAdapter.name}"}}


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """A follower subscribing, then writing a text, in safe mode."""
    if adapter_name != WeChatAdapter.name:
        return None
    n = next(_counter)
    openid = f"oDemoCustomer{n:04d}"
    now = int(time.time())
    crypto = WeChatCrypto(decode_aes_key(DEMO_AES_KEY), DEMO_APP_ID)
    url = f"{public_url}/webhooks/{channel_key}"
    subscribe = build_xml({"ToUserName": "gh_demo", "FromUserName": openid, "CreateTime": now,
                           "MsgType": "event", "Event": "subscribe", "EventKey": "qrscene_demo"})
    text = build_xml({"ToUserName": "gh_demo", "FromUserName": openid, "CreateTime": now + 1,
                      "MsgType": "text", "Content": "你好, 我的订单 #1234 到哪里了?",
                      "MsgId": 24000000000000000 + n * 1000 + now % 1000})
    return [signed_webhook(url, DEMO_TOKEN, body, crypto=crypto, openid=openid)
            for body in (subscribe, text)]


def _demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """The WeChat API as a stub: tokens, customer-service and template sends (a template
    receipt follows half a second later), media upload and download."""
    if adapter_name != WeChatAdapter.name:
        return None

    async def token(request: Request) -> Response:
        return JSONResponse({"access_token": f"demo-access-{next(_counter)}", "expires_in": 7200})

    async def custom(request: Request) -> Response:
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def template(request: Request) -> Response:
        msgid = 200000000 + next(_counter)
        body = await request.json()
        keys = [k for k, a in hub.adapters.items() if a.name == WeChatAdapter.name]

        async def report() -> None:
            await asyncio.sleep(0.5)
            xml = build_xml({"ToUserName": "gh_demo", "FromUserName": str(body.get("touser")),
                             "CreateTime": int(time.time()), "MsgType": "event",
                             "Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid,
                             "Status": "success"})
            for key in keys:
                await hub.handle_webhook(key, WebhookRequest(
                    "POST", hub.request_url(key), {"content-type": "text/xml"}, xml), trusted=True)

        task = asyncio.create_task(report())
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def upload(request: Request) -> Response:
        kind = request.query_params.get("type", "image")
        return JSONResponse({"type": kind, "media_id": f"demo-media-{next(_counter)}",
                             "created_at": int(time.time())})

    async def media(request: Request) -> Response:
        return Response(b"\x89PNG\r\n\x1a\ndemo", media_type="image/png")

    return Starlette(routes=[
        Route("/cgi-bin/token", token),
        Route("/cgi-bin/stable_token", token, methods=["POST"]),
        Route("/cgi-bin/message/custom/send", custom, methods=["POST"]),
        Route("/cgi-bin/message/template/send", template, methods=["POST"]),
        Route("/cgi-bin/media/upload", upload, methods=["POST"]),
        Route("/cgi-bin/media/get", media),
    ])


DEMO = Demo(adapters=frozenset({"wechat-mp"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
