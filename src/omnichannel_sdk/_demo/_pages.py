"""The demo's pages: the agent inbox, the visitor page, the no-JavaScript fallbacks, and the
static files shipped in ``static/`` (package data)."""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ._state import AGENT, demo_state, refused

__all__ = ["chat_page", "conversation_page", "favicon", "home", "inbox", "reply_form",
           "static_file", "widget_tags"]

_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}
_LANG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}")


@cache
def _static(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def _static_names() -> frozenset[str]:
    folder = resources.files(__package__) / "static"
    return frozenset(p.name for p in folder.iterdir() if p.name[:1] != ".")


def _page(name: str, **values: str) -> str:
    text = _static(name).decode()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


async def static_file(request: Request) -> Response:
    """``/demo/static/{name}``: the inbox's CSS, JavaScript and icons."""
    name = request.path_params["name"]
    if name not in _static_names():
        return Response("not found", 404)
    suffix = name[name.rfind("."):]
    return Response(_static(name), media_type=_TYPES.get(suffix, "application/octet-stream"),
                    headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})


async def favicon(request: Request) -> Response:
    """``/favicon.ico``: browsers ask for it on every page."""
    return Response(_static("favicon.svg"), media_type="image/svg+xml")


def widget_tags(request: Request) -> str:
    """The ``<script>`` tags of every web chat widget installed (``embed_snippet``)."""
    tags = []
    for key, adapter in demo_state(request).hub.adapters.items():
        snippet = getattr(adapter, "embed_snippet", None)
        if callable(snippet):
            tags.append(snippet(f"/channels/{key}"))
    return "".join(tags)


async def home(request: Request) -> Response:
    """``/``: to the inbox."""
    return RedirectResponse("/demo/")


async def inbox(request: Request) -> HTMLResponse:
    """``/demo/``: the live agent inbox (a static page, its token filled in)."""
    state = demo_state(request)
    chat = "" if not widget_tags(request) else (
        '<a class="visitor" href="/demo/chat" target="_blank">Visitor page</a>')
    return HTMLResponse(_page("inbox.html", TOKEN=state.token, VISITOR=chat))


def _language(request: Request) -> str:
    """The visitor page's language: ``?lang=``, else the browser's first, else English."""
    wanted = request.query_params.get("lang")
    if not wanted:
        header = request.headers.get("accept-language", "")
        wanted = header.split(",", 1)[0].split(";", 1)[0].strip()
    return wanted if wanted and _LANG.fullmatch(wanted) else "en"


async def chat_page(request: Request) -> HTMLResponse:
    """``/demo/chat``: a shop page with the web chat widget embedded by one script tag."""
    tags = widget_tags(request)
    shown = (f"<pre>{html.escape(tags)}</pre>" if tags else
             "<p>No web chat channel is installed (pip install omnichannel-webchat).</p>")
    return HTMLResponse(_page("chat.html", LANG=_language(request), SNIPPET=shown, TAGS=tags))


async def conversation_page(request: Request) -> Response:
    """``/demo/c/{cid}``: one conversation without JavaScript."""
    state = demo_state(request)
    hub = state.hub
    conv = await hub.store.get_conversation(request.path_params["cid"])
    if conv is None:
        return HTMLResponse("not found", 404)
    rows = []
    for m in await hub.store.list_messages(conv.id):
        text = html.escape(m.text or ", ".join(p.type for p in m.parts))
        rows.append(f'<li class="m {m.direction}"><b>{html.escape(m.sender.handle)}</b>: '
                    f'{text} <small class="st {m.status}">{m.status}</small></li>')
    hidden = f'<input type="hidden" name="csrf" value="{state.token}">'
    body = (f'<p><a href="/demo/">← inbox</a></p><h2>{html.escape(conv.subject or conv.channel)}'
            f"</h2><ul>{''.join(rows)}</ul><form method=post action='/demo/c/{conv.id}/reply'>"
            f"{hidden}<input name=text size=60 autofocus aria-label=reply><button>Send</button>"
            "</form>")
    return HTMLResponse('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                        '<meta name="viewport" content="width=device-width,initial-scale=1">'
                        '<title>omnichannel demo inbox</title>'
                        '<link rel="icon" href="/demo/static/favicon.svg"></head>'
                        f"<body>{body}</body></html>")


async def reply_form(request: Request) -> Response:
    """``POST /demo/c/{cid}/reply``: the no-JavaScript reply form."""
    state = demo_state(request)
    # parsed here: Starlette's form parser needs python-multipart, which we do not require
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    if not state.allowed(request, form):
        return refused()
    text = (form.get("text") or [""])[0].strip()
    cid = request.path_params["cid"]
    if text:
        await state.hub.send(cid, text=text, author=AGENT)
    return RedirectResponse(f"/demo/c/{cid}", 303)
