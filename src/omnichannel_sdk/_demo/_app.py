"""The demo's ASGI app: its routes, the plugins' vendor stubs and the gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from .._demos import demo_vendor
from .._hub import Hub
from ._api import (
    api_channels,
    api_conversation,
    api_conversations,
    api_reply,
    api_simulate,
    api_status,
    blob,
    simulate_form,
    vendor,
)
from ._contacts import api_contact, api_merge_action, api_merges, api_timeline, api_unmerge
from ._live import live
from ._pages import (
    chat_page,
    conversation_page,
    favicon,
    home,
    inbox,
    reply_form,
    static_file,
)
from ._report import report_page
from ._state import DemoState

__all__ = ["build_demo"]

_ROUTES: list[BaseRoute] = [
    Route("/demo/", inbox),
    Route("/demo/chat", chat_page),
    Route("/demo/report", report_page),
    Route("/demo/static/{name}", static_file),
    Route("/favicon.ico", favicon),
    Route("/demo/c/{cid}", conversation_page),
    Route("/demo/c/{cid}/reply", reply_form, methods=["POST"]),
    Route("/demo/api/channels", api_channels),
    Route("/demo/api/conversations", api_conversations),
    Route("/demo/api/c/{cid}", api_conversation),
    Route("/demo/api/c/{cid}/reply", api_reply, methods=["POST"]),
    Route("/demo/api/c/{cid}/status", api_status, methods=["POST"]),
    Route("/demo/api/contacts/{contact_id}", api_contact),
    Route("/demo/api/contacts/{contact_id}/timeline", api_timeline),
    Route("/demo/api/merges", api_merges),
    Route("/demo/api/merges/{proposal_id}/{action}", api_merge_action, methods=["POST"]),
    Route("/demo/api/unmerge/{merge_id}", api_unmerge, methods=["POST"]),
    Route("/demo/api/simulate/{key}", api_simulate, methods=["POST"]),
    Route("/demo/blob/{key}", blob),
    WebSocketRoute("/demo/ws", live),
    Route("/demo/simulate/{key}", simulate_form, methods=["POST"]),
    Route("/demo/vendor/{name}", vendor, methods=["POST"]),
    Route("/", home),
]


def build_demo(hub: Hub) -> Starlette:
    """The demo ASGI app: gateway at ``/``, live inbox at ``/demo/``, a visitor page with the
    web chat widget at ``/demo/chat``, vendor stubs at ``/demo/vendor``."""
    routes = list(_ROUTES)
    for name in sorted({a.name for a in hub.adapters.values()}):
        stub = demo_vendor(hub.pm, name, hub)
        if stub is not None:
            routes.append(Mount(f"/demo/vendor/{name}", app=stub))
    routes.append(Mount("/", app=hub.asgi(lifespan=False)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub:
            yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.demo = DemoState(hub)
    return app
