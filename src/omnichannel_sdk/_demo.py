"""``omnichannel demo``: a gateway on embedded defaults, simulated vendors, an agent page.

Everything runs in one process: the hub (SQLite file in ``.omnichannel/``, in-memory bus), a
loopback vendor stub that accepts sends and reports delivery, and a small agent page that lists
conversations of every channel and replies through ``hub.send``. Plugins add their channels to
the demo through the ``omni_demo_channels`` hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ._hub import Hub
from ._models import StatusUpdate
from ._plugins import build_plugin_manager
from ._webhook import WebhookRequest

__all__ = ["DEMO_SECRET", "build_demo", "demo_config", "simulate_requests"]

DEMO_SECRET = "demo-secret"  # a demo credential, published on purpose
_ids = itertools.count(1)


def demo_config(public_url: str, data_dir: Path) -> dict[str, Any]:
    """The demo's hub configuration: SQLite + memory bus + every plugin's demo channels."""
    channels: dict[str, Any] = {
        "demo-json": {
            "adapter": "json-mapping",
            "channel": "custom",
            "secret": DEMO_SECRET,
            "signature_header": "x-demo-signature",
            "items": "messages",
            "external_id": "id",
            "sender": "from",
            "sender_name": "name",
            "text": "text",
            "send_url": f"{public_url}/demo/vendor/json",
        }
    }
    pm, _ = build_plugin_manager()
    for extra in pm.hook.omni_demo_channels(public_url=public_url):
        channels.update(extra or {})
    return {
        "omnichannel": {
            "store": f"sqlite:///{data_dir / 'demo.db'}",
            "bus": "memory",
            "blobs": f"file://{data_dir / 'blobs'}",
            "public_url": public_url,
            "http_transport": "httpx",
        },
        "channels": channels,
    }


def simulate_requests(hub: Hub, channel_key: str) -> list[WebhookRequest]:
    """Signed sample traffic for a demo channel (the built-in JSON channel or a plugin's)."""
    adapter = hub.adapter(channel_key)
    if adapter.name == "json-mapping":
        n = next(_ids)
        body = orjson.dumps({"messages": [{
            "id": f"demo-{n}-{asyncio.get_running_loop().time():.0f}", "from": f"customer-{n}",
            "name": f"Customer {n}", "text": "Hello! Where is my order #1234?"}]})
        signature = hmac.new(DEMO_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return [WebhookRequest("POST", hub.request_url(channel_key),
                               {"content-type": "application/json",
                                "x-demo-signature": signature}, body)]
    found: list[WebhookRequest] = []
    for batch in hub.pm.hook.omni_demo_simulate(
            channel_key=channel_key, adapter_name=adapter.name, public_url=hub.public_url):
        found.extend(batch or [])
    return found


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>omnichannel demo inbox</title><meta http-equiv="refresh" content="5">
<style>body{{font:15px system-ui;margin:2rem;max-width:60rem}}li{{margin:.3rem 0}}
.in{{color:#064}}.out{{color:#036}}small{{color:#777}}</style></head><body>
<h1>Agent inbox</h1>{body}</body></html>"""


def build_demo(hub: Hub) -> Starlette:
    """The demo ASGI app: gateway at ``/``, inbox at ``/demo/``, vendor stub at ``/demo/vendor``."""

    async def home(request: Request) -> Response:
        return RedirectResponse("/demo/")

    async def inbox(request: Request) -> HTMLResponse:
        items = []
        for conv in await hub.store.list_conversations(limit=100):
            items.append(f'<li><a href="/demo/c/{conv.id}">{html.escape(conv.channel_key)} · '
                         f'{html.escape(conv.thread_key)}</a> <small>{conv.status}</small></li>')
        forms = "".join(
            f'<form method="post" action="/demo/simulate/{k}" style="display:inline">'
            f'<button>simulate {html.escape(k)}</button></form> ' for k in hub.adapters)
        body = f"<p>{forms}</p><ul>{''.join(items) or '<li>No conversations yet.</li>'}</ul>"
        return HTMLResponse(_PAGE.format(body=body))

    async def conversation(request: Request) -> Response:
        conv = await hub.store.get_conversation(request.path_params["cid"])
        if conv is None:
            return HTMLResponse("not found", 404)
        rows = []
        for m in await hub.store.list_messages(conv.id):
            text = html.escape(m.text or ", ".join(p.type for p in m.parts))
            rows.append(f'<li class="{m.direction[:3]}"><b>{html.escape(m.sender.handle)}</b>: '
                        f'{text} <small>{m.status}</small></li>')
        body = (f'<p><a href="/demo/">← inbox</a></p><h2>{html.escape(conv.thread_key)}</h2>'
                f"<ul>{''.join(rows)}</ul><form method=post action='/demo/c/{conv.id}/reply'>"
                "<input name=text size=60 autofocus aria-label=reply><button>Send</button></form>")
        return HTMLResponse(_PAGE.format(body=body))

    async def reply(request: Request) -> Response:
        form = await request.form()
        text = str(form.get("text") or "").strip()
        cid = request.path_params["cid"]
        if text:
            await hub.send(cid, text=text)
        return RedirectResponse(f"/demo/c/{cid}", 303)

    async def simulate(request: Request) -> Response:
        key = request.path_params["key"]
        for req in simulate_requests(hub, key):
            await hub.handle_webhook(key, req)
        return RedirectResponse("/demo/", 303)

    async def vendor(request: Request) -> Response:
        # the loopback vendor: accepts, then reports delivery a moment later
        ext = f"stub-{next(_ids)}"
        key = next((k for k, a in hub.adapters.items() if a.name == "json-mapping"), None)

        async def deliver() -> None:
            await asyncio.sleep(0.5)
            if key:
                await hub.apply_status(key, StatusUpdate(external_id=ext, status="delivered"))

        task = asyncio.create_task(deliver())
        _background.add(task)
        task.add_done_callback(_background.discard)
        return JSONResponse({"id": ext, "status": "accepted"})

    routes: list[BaseRoute] = [
        Route("/demo/", inbox),
        Route("/demo/c/{cid}", conversation),
        Route("/demo/c/{cid}/reply", reply, methods=["POST"]),
        Route("/demo/simulate/{key}", simulate, methods=["POST"]),
        Route("/demo/vendor/{name}", vendor, methods=["POST"]),
        Route("/", home),
    ]
    for name in sorted({a.name for a in hub.adapters.values()}):
        stub = hub.pm.hook.omni_demo_vendor(adapter_name=name, hub=hub)
        if stub is not None:
            routes.append(Mount(f"/demo/vendor/{name}", app=stub))
    routes.append(Mount("/", app=hub.asgi(lifespan=False)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub:
            yield

    return Starlette(routes=routes, lifespan=lifespan)


_background: set[asyncio.Task[Any]] = set()
