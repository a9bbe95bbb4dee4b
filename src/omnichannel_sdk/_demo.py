"""``omnichannel demo``: a gateway on embedded defaults, simulated vendors, an agent page.

Everything runs in one process: the hub (SQLite file in ``.omnichannel/``, in-memory bus), a
loopback vendor stub that accepts sends and reports delivery, a page with the web chat widget
(``/demo/chat``, when a channel adapter offers an ``embed_snippet()``) and a live agent inbox
(``/demo/``) that lists conversations of every channel, shows each thread with delivery
statuses, replies through ``hub.send`` and follows ``hub.events()`` over a WebSocket. Plugins add
their channels to the demo by registering a :class:`~omnichannel_sdk.Demo` (``omni_register_demos``).

Typing and "seen" go both ways as ``channel.signal`` events, with no adapter method involved:
the inbox shows the ``ChannelSignal`` events ``hub.events()`` yields (``typing`` with
``data["on"]``, ``typing_stopped``, ``seen``) whose ``data["from"]`` is not ``"agent"``, and
publishes the agent's own with ``hub.signal(channel_key, conversation_id, "typing" | "seen",
{"from": "agent", "on": …, "name": …})``; each channel passes them on to its customers if it can
(the web chat widget does, in every process). The one adapter method the demo looks up, duck-typed
(no plugin is imported by name), is ``embed_snippet(base) -> str``: the ``<script>`` tag of a
web chat widget for the visitor page.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import itertools
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from ._demos import demo_channels, demo_requests, demo_vendor
from ._errors import OmnichannelError
from ._events import ChannelSignal
from ._hub import Hub
from ._models import Author, Conversation, MediaPart, Message, StatusUpdate, TextPart
from ._plugins import build_plugin_manager
from ._webhook import WebhookRequest

__all__ = ["DEMO_SECRET", "build_demo", "demo_config", "simulate_requests"]

DEMO_SECRET = "demo-secret"  # a demo credential, published on purpose
_ids = itertools.count(1)


def demo_config(public_url: str, data_dir: Path, *, plugins: Sequence[object] = (),
                entry_points: bool = True) -> dict[str, Any]:
    """The demo's hub configuration: SQLite + memory bus + every plugin's demo channels
    (installed plugins, plus ``plugins`` registered explicitly, as in tests)."""
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
    pm, _ = build_plugin_manager(plugins, entry_points=entry_points)
    channels.update(demo_channels(pm, public_url))
    return {
        "omnichannel": {
            "store": f"sqlite:///{data_dir / 'demo.db'}",
            "bus": "memory",
            "blobs": f"file://{data_dir / 'blobs'}",
            "public_url": public_url,
            # the demo's vendors are loopback stubs on plain http
            "media_allow_http_loopback": True,
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
    return demo_requests(hub.pm, channel_key, adapter.name, hub.public_url)


_CSS = """
*{box-sizing:border-box}[hidden]{display:none!important}body{font:14px/1.4 system-ui,sans-serif;margin:0;
color:#111;background:#f1f5f9;display:flex;flex-direction:column;height:100vh}
header{display:flex;gap:12px;align-items:center;flex-wrap:wrap;padding:8px 16px;background:#0f172a;color:#fff}
header h1{font-size:18px;margin:0 12px 0 0}header a{color:#93c5fd}header form{display:inline}
header button{font-size:12px}#live{font-size:12px;margin-left:auto}#live.on{color:#4ade80}
main{display:flex;flex:1;min-height:0}#list{width:320px;overflow-y:auto;background:#fff;
border-right:1px solid #cbd5e1;margin:0;padding:0;list-style:none}
.conv{display:block;width:100%;text-align:left;border:0;border-bottom:1px solid #e2e8f0;background:none;
padding:10px 12px;cursor:pointer;font:inherit}.conv[aria-current=true]{background:#dbeafe}
.conv .ch{font-size:11px;background:#e2e8f0;border-radius:8px;padding:0 6px;margin-right:6px}
.conv .pv{display:block;color:#475569;font-size:12px;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis}
.conv .new{color:#dc2626}#thread{flex:1;display:flex;flex-direction:column}
#head{padding:10px 16px;background:#fff;border-bottom:1px solid #cbd5e1}#head small{color:#475569}
#msgs{flex:1;overflow-y:auto;padding:12px 16px;list-style:none;margin:0}
.m{max-width:70%;margin:6px 0;padding:8px 10px;border-radius:10px;background:#fff;white-space:pre-wrap}
.m.outbound{margin-left:auto;background:#dbeafe}.m .who{font-size:12px;color:#475569}
.m img{max-width:240px;display:block}
.st{font-size:11px;border-radius:8px;padding:0 6px;margin-left:6px;background:#e2e8f0}
.st.delivered{background:#bbf7d0}.st.read{background:#86efac}.st.failed{background:#fecaca}
.st.queued{background:#fef9c3}#typing{min-height:20px;padding:0 16px;color:#475569;font-size:12px}
#reply-form{display:flex;gap:8px;padding:8px 16px;background:#fff;border-top:1px solid #cbd5e1}
#reply{flex:1;height:48px;resize:vertical}#error{color:#b91c1c;padding:0 16px;min-height:18px}
:focus-visible{outline:3px solid #f59e0b}
"""

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{css}</style></head><body>{body}</body></html>"""

_INBOX_JS = r"""
(function(){
"use strict";
var current=null, ws=null, typingTimer=null, typingOn=false, reloadTimer=null;
var $=function(id){return document.getElementById(id);};
function el(tag,cls,text){var n=document.createElement(tag);if(cls)n.className=cls;
  if(text!=null)n.textContent=text;return n;}
function when(iso){try{return new Date(iso).toLocaleTimeString();}catch(e){return "";}}
function api(path,body){return fetch(path,body===undefined?{}:{method:"POST",
  headers:{"content-type":"application/json","x-demo-token":DEMO_TOKEN},body:JSON.stringify(body)}).then(function(r){
  return r.json().then(function(j){if(!r.ok)throw new Error(j.error||r.statusText);return j;});});}
function loadList(){return api("/demo/api/conversations").then(function(convs){
  var list=$("list");list.textContent="";
  if(!convs.length){list.appendChild(el("li",null,"No conversations yet."));}
  convs.forEach(function(c){var li=el("li");var b=el("button","conv");b.type="button";
    b.dataset.id=c.id;b.setAttribute("aria-current",String(c.id===current));
    b.appendChild(el("span","ch",c.channel_key));b.appendChild(el("strong",null,c.title));
    b.appendChild(el("span","pv",(c.last_direction==="inbound"?"\u2190 ":"\u2192 ")+(c.preview||"")));
    b.addEventListener("click",function(){open(c.id);});li.appendChild(b);list.appendChild(li);});
});}
function scheduleList(){clearTimeout(reloadTimer);reloadTimer=setTimeout(loadList,150);}
function render(m){var li=el("li","m "+m.direction);li.dataset.id=m.id;
  var who=el("div","who",(m.direction==="inbound"?(m.sender_name||m.sender):(m.author||"us"))+
    " \u00b7 "+when(m.created_at));
  if(m.direction==="outbound"){var st=el("span","st "+m.status,m.status);
    if(m.error)st.title=m.error;who.appendChild(st);}
  li.appendChild(who);if(m.text)li.appendChild(el("div","tx",m.text));
  (m.media||[]).forEach(function(f){if(f.kind==="image"&&f.href){var i=el("img");i.src=f.href;
    i.alt=f.name||"image";li.appendChild(i);}else{var a=el("a",null,"\ud83d\udcce "+(f.name||f.kind));
    if(f.href)a.href=f.href;a.target="_blank";a.rel="noopener";li.appendChild(a);}});
  if(m.error){li.appendChild(el("div","err",m.error));}
  return li;}
var RANK={received:0,queued:1,sent:2,failed:2,delivered:3,read:4};
function upsert(m){var old=document.querySelector('.m[data-id="'+m.id+'"]');
  // the reply's own HTTP answer can land after the live status events: never go backwards
  if(old&&RANK[old.dataset.status]>RANK[m.status])return;
  var node=render(m);node.dataset.status=m.status;
  if(old){old.replaceWith(node);}else{$("msgs").appendChild(node);$("msgs").scrollTop=1e9;}}
function open(id){current=id;location.hash=id;$("typing").textContent="";$("error").textContent="";
  document.querySelectorAll(".conv").forEach(function(b){b.setAttribute("aria-current",String(b.dataset.id===id));});
  return api("/demo/api/c/"+id).then(function(d){var h=$("head");h.textContent="";
    h.appendChild(el("strong",null,d.conversation.title));
    h.appendChild(el("small",null," \u00b7 "+d.conversation.channel_key+" \u00b7 "+d.conversation.thread_key+
      (d.conversation.emails.length?" \u00b7 "+d.conversation.emails.join(", "):"")));
    $("msgs").textContent="";d.messages.forEach(upsert);$("reply-form").hidden=false;
    send({type:"seen",conversation_id:id});});}
function send(f){if(ws&&ws.readyState===1)ws.send(JSON.stringify(f));}
function connect(){var proto=location.protocol==="https:"?"wss://":"ws://";
  ws=new WebSocket(proto+location.host+"/demo/ws");
  ws.onopen=function(){$("live").textContent="\u25cf live";$("live").className="on";loadList();
    if(current)open(current);};
  ws.onclose=function(){$("live").textContent="\u25cb reconnecting";$("live").className="";
    setTimeout(connect,1000);};
  ws.onmessage=function(ev){var e=JSON.parse(ev.data);
    if(e.type==="signal"){if(e.name==="typing"&&e.from!=="agent"&&e.conversation_id===current){
      $("typing").textContent=e.on?"The customer is typing\u2026":"";}return;}
    if(e.message&&e.message.conversation_id===current){upsert(e.message);
      if(e.message.direction==="inbound"){$("typing").textContent="";send({type:"seen",conversation_id:current});}}
    if(e.type!=="message.status"||!e.message)scheduleList();};}
function stopTyping(){if(typingOn&&current){typingOn=false;
  send({type:"typing",conversation_id:current,on:false});}}
$("reply").addEventListener("input",function(){if(!current)return;
  if(!typingOn){typingOn=true;send({type:"typing",conversation_id:current,on:true});}
  clearTimeout(typingTimer);typingTimer=setTimeout(stopTyping,2500);});
$("reply").addEventListener("keydown",function(e){if(e.key==="Enter"&&!e.shiftKey&&!e.isComposing){
  e.preventDefault();$("reply-form").requestSubmit();}});
$("reply-form").addEventListener("submit",function(e){e.preventDefault();var text=$("reply").value.trim();
  if(!text||!current)return;$("reply").value="";stopTyping();$("error").textContent="";
  api("/demo/api/c/"+current+"/reply",{text:text}).then(upsert).catch(function(err){
    $("error").textContent="Not sent: "+err.message;});});
if(location.hash.length>1)current=location.hash.slice(1);
loadList().then(function(){if(current)open(current);});connect();
})();
"""


def _media_href(part: MediaPart) -> str | None:
    if part.blob_key:
        return f"/demo/blob/{part.blob_key}?type={quote(part.content_type or '')}"
    if part.url and part.url.startswith(("http://", "https://")):
        return part.url
    return None


def _message_json(m: Message) -> dict[str, Any]:
    """A message as the inbox shows it."""
    media = [{"kind": p.kind, "name": p.filename or p.caption, "href": _media_href(p)}
             for p in m.parts if isinstance(p, MediaPart)]
    text = m.text or ", ".join(p.type for p in m.parts if p.type not in ("text", "media"))
    return {"id": m.id, "conversation_id": m.conversation_id, "channel_key": m.channel_key,
            "direction": m.direction, "sender": m.sender.handle,
            "sender_name": m.sender.display_name, "text": text, "media": media,
            "status": m.status, "error": m.error.message if m.error else None,
            "author": m.author.name if m.author else None, "created_at": m.created_at.isoformat()}


async def _conversation_json(hub: Hub, conv: Conversation, last: Message | None) -> dict[str, Any]:
    contact = await hub.store.get_contact(conv.contact_id)
    customer = next((a for a in conv.participants if contact and any(
        (a.channel, a.handle) == (c.channel, c.handle) for c in contact.addresses)), None)
    title = (contact.display_name if contact and contact.display_name else None) or (
        customer.display_name or customer.handle if customer else conv.thread_key)
    emails = [a.handle for a in (contact.addresses if contact else []) if a.channel == "email"]
    claimed = contact.profile.get("unverified_email") if contact else None
    if isinstance(claimed, str) and claimed not in emails:
        emails.append(f"{claimed} (unverified)")
    preview = (last.text or ", ".join(
        (p.filename or p.kind) if isinstance(p, MediaPart) else p.type for p in last.parts))[:120] \
        if last else ""
    return {"id": conv.id, "channel": conv.channel, "channel_key": conv.channel_key,
            "thread_key": conv.thread_key, "status": conv.status, "title": title,
            "emails": emails, "preview": preview,
            "last_direction": last.direction if last else None,
            "last_at": (last.created_at if last else conv.created_at).isoformat()}


def _signal_json(event: ChannelSignal) -> dict[str, Any]:
    """A ``channel.signal`` as the inbox sees it: ``{"type": "signal", "name": "typing" | "seen",
    "conversation_id", "from", "on"}``."""
    name = "typing" if event.name == "typing_stopped" else event.name
    on = event.name == "typing" and bool(event.data.get("on"))
    sender = event.data.get("from")
    return {"type": "signal", "name": name, "channel_key": event.channel_key,
            "conversation_id": event.conversation_id, "on": on,
            "from": sender if isinstance(sender, str) else None}


def _event_json(event: Any) -> dict[str, Any]:
    if isinstance(event, ChannelSignal):
        return _signal_json(event)
    out: dict[str, Any] = {"type": event.type}
    message = getattr(event, "message", None)
    if message is not None:
        out["message"] = _message_json(message)
    conversation = getattr(event, "conversation", None)
    if conversation is not None:
        out["conversation_id"] = conversation.id
    if hasattr(event, "previous"):
        out["previous"] = event.previous
    return out


def build_demo(hub: Hub) -> Starlette:
    """The demo ASGI app: gateway at ``/``, live inbox at ``/demo/``, a visitor page with the
    web chat widget at ``/demo/chat``, vendor stubs at ``/demo/vendor``."""

    # the inbox acts as the agent: a page on another site must not drive it. Every POST needs
    # this token (only pages served here carry it) and, when the browser says, our own Origin;
    # the live WebSocket needs our Origin
    token = secrets.token_urlsafe(24)
    hidden = f'<input type="hidden" name="csrf" value="{token}">'

    def same_origin(origin: str | None, host: str | None) -> bool:
        return bool(origin and host) and urlsplit(origin or "").netloc.lower() == (host or "").lower()

    def allowed(request: Request, form: dict[str, list[str]] | None = None) -> bool:
        origin = request.headers.get("origin")
        if origin is not None and not same_origin(origin, request.headers.get("host")):
            return False
        given = request.headers.get("x-demo-token") or ((form or {}).get("csrf") or [""])[0]
        return hmac.compare_digest(given.encode(), token.encode())

    def refused() -> JSONResponse:
        return JSONResponse({"error": "cross-site request refused (no demo token)"}, 403)

    def widget_tags() -> str:
        tags = []
        for key, adapter in hub.adapters.items():
            snippet = getattr(adapter, "embed_snippet", None)
            if callable(snippet):
                tags.append(snippet(f"/channels/{key}"))
        return "".join(tags)

    async def home(request: Request) -> Response:
        return RedirectResponse("/demo/")

    async def inbox(request: Request) -> HTMLResponse:
        items = []
        for conv in await hub.store.list_conversations(limit=100):
            items.append(f'<li><a class="conv" href="/demo/c/{conv.id}">'
                         f'<span class="ch">{html.escape(conv.channel_key)}</span>'
                         f'{html.escape(conv.thread_key)}</a></li>')
        forms = "".join(
            f'<form method="post" action="/demo/simulate/{html.escape(k)}">{hidden}'
            f'<button>simulate {html.escape(k)}</button></form> ' for k in hub.adapters)
        chat = ' <a href="/demo/chat" target="_blank">visitor page (web chat)</a>' \
            if widget_tags() else ""
        body = (f'<header><h1>Agent inbox</h1>{forms}{chat}<span id="live" role="status">'
                '○ connecting</span></header><main>'
                f'<ul id="list" aria-label="Conversations">'
                f"{''.join(items) or '<li>No conversations yet.</li>'}</ul>"
                '<section id="thread" aria-label="Conversation"><div id="head">'
                "Choose a conversation.</div>"
                '<ol id="msgs" aria-live="polite"></ol><div id="typing" aria-live="polite"></div>'
                '<div id="error" role="alert"></div><form id="reply-form" hidden>'
                '<textarea id="reply" aria-label="Reply" placeholder="Reply… (Enter sends, '
                'Shift+Enter for a new line; **bold**, *italic*, [links](https://…))"></textarea>'
                "<button>Send</button></form></section></main>"
                f'<script>var DEMO_TOKEN="{token}";</script><script>{_INBOX_JS}</script>')
        return HTMLResponse(_PAGE.format(title="omnichannel demo inbox", css=_CSS, body=body))

    async def chat_page(request: Request) -> HTMLResponse:
        tags = widget_tags()
        body = ('<header><h1>Example shop</h1><a href="/demo/" target="_blank">agent inbox</a>'
                '</header><main style="display:block;padding:24px"><h2>Welcome!</h2>'
                "<p>This page stands for a customer's website. The chat button at the bottom "
                "right is the web chat widget, embedded with one script tag.</p>"
                + (f"<pre>{html.escape(tags)}</pre>" if tags else
                   "<p>No web chat channel is installed (pip install omnichannel-webchat).</p>")
                + f"</main>{tags}")
        page = _PAGE.format(title="omnichannel demo: visitor page", css=_CSS, body=body)
        lang = request.query_params.get("lang", "en")
        if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}", lang):
            page = page.replace('<html lang="en">', f'<html lang="{lang}">', 1)
        return HTMLResponse(page)

    async def conversation(request: Request) -> Response:
        conv = await hub.store.get_conversation(request.path_params["cid"])
        if conv is None:
            return HTMLResponse("not found", 404)
        rows = []
        for m in await hub.store.list_messages(conv.id):
            text = html.escape(m.text or ", ".join(p.type for p in m.parts))
            rows.append(f'<li class="m {m.direction}"><b>{html.escape(m.sender.handle)}</b>: '
                        f'{text} <small class="st {m.status}">{m.status}</small></li>')
        body = (f'<p><a href="/demo/">← inbox</a></p><h2>{html.escape(conv.thread_key)}</h2>'
                f"<ul>{''.join(rows)}</ul><form method=post action='/demo/c/{conv.id}/reply'>"
                f"{hidden}<input name=text size=60 autofocus aria-label=reply><button>Send</button></form>")
        return HTMLResponse(_PAGE.format(title="omnichannel demo inbox", css=_CSS, body=body))

    async def reply(request: Request) -> Response:
        # parsed here: Starlette's form parser needs python-multipart, which we do not require
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        if not allowed(request, form):
            return refused()
        text = (form.get("text") or [""])[0].strip()
        cid = request.path_params["cid"]
        if text:
            await hub.send(cid, text=text, author=_AGENT)
        return RedirectResponse(f"/demo/c/{cid}", 303)

    async def api_conversations(request: Request) -> JSONResponse:
        out = []
        for conv in await hub.store.list_conversations(limit=100):
            messages = await hub.store.list_messages(conv.id)
            out.append(await _conversation_json(hub, conv, messages[-1] if messages else None))
        out.sort(key=lambda c: c["last_at"], reverse=True)
        return JSONResponse(out)

    async def api_conversation(request: Request) -> JSONResponse:
        conv = await hub.store.get_conversation(request.path_params["cid"])
        if conv is None:
            return JSONResponse({"error": "no such conversation"}, 404)
        messages = await hub.store.list_messages(conv.id)
        return JSONResponse({
            "conversation": await _conversation_json(hub, conv, messages[-1] if messages else None),
            "messages": [_message_json(m) for m in messages]})

    async def api_reply(request: Request) -> JSONResponse:
        if not allowed(request):
            return refused()
        try:
            data = orjson.loads(await request.body())
            text = str(data.get("text") or "").strip()
        except (orjson.JSONDecodeError, AttributeError):
            return JSONResponse({"error": "send JSON {\"text\": ...}"}, 400)
        if not text:
            return JSONResponse({"error": "empty reply"}, 400)
        try:
            sent = await hub.send(request.path_params["cid"], parts=[
                TextPart(text=text, format="markdown")], author=_AGENT)
        except OmnichannelError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        return JSONResponse(_message_json(sent))

    async def blob(request: Request) -> Response:
        try:
            data = await hub.blobs.get(request.path_params["key"])
        except OmnichannelError:
            return Response("not found", 404)
        wanted = request.query_params.get("type", "")
        safe = wanted if wanted.startswith("image/") or wanted in (
            "application/pdf", "text/plain") else "application/octet-stream"
        return Response(data, media_type=safe, headers={
            "x-content-type-options": "nosniff", "content-security-policy": "sandbox"})

    async def live(websocket: WebSocket) -> None:
        # browsers always send Origin on a WebSocket: another site's page never gets events
        if not same_origin(websocket.headers.get("origin"), websocket.headers.get("host")):
            await websocket.close(code=4403)
            return
        await websocket.accept()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(10_000)

        def put(item: dict[str, Any]) -> None:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

        async def events() -> None:
            async for event in hub.events():
                put(_event_json(event))

        async def reader() -> None:
            while True:
                data = orjson.loads(await websocket.receive_text())
                if not isinstance(data, dict) or not isinstance(data.get("conversation_id"), str):
                    continue
                conv = await hub.store.get_conversation(data["conversation_id"])
                if conv is None or conv.channel_key not in hub.adapters:
                    continue
                # passing signals for the customer, in every process (the channel passes them on)
                if data.get("type") == "typing":
                    hub.signal(conv.channel_key, conv.id, "typing",
                               {"from": "agent", "on": bool(data.get("on")), "name": _AGENT.name})
                elif data.get("type") == "seen":
                    hub.signal(conv.channel_key, conv.id, "seen", {"from": "agent"})

        async def writer() -> None:
            while True:
                await websocket.send_text(orjson.dumps(await queue.get()).decode())

        tasks = [asyncio.create_task(events()), asyncio.create_task(reader()),
                 asyncio.create_task(writer())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def simulate(request: Request) -> Response:
        if not allowed(request, parse_qs((await request.body()).decode("utf-8", "replace"))):
            return refused()
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
        Route("/demo/chat", chat_page),
        Route("/demo/c/{cid}", conversation),
        Route("/demo/c/{cid}/reply", reply, methods=["POST"]),
        Route("/demo/api/conversations", api_conversations),
        Route("/demo/api/c/{cid}", api_conversation),
        Route("/demo/api/c/{cid}/reply", api_reply, methods=["POST"]),
        Route("/demo/blob/{key}", blob),
        WebSocketRoute("/demo/ws", live),
        Route("/demo/simulate/{key}", simulate, methods=["POST"]),
        Route("/demo/vendor/{name}", vendor, methods=["POST"]),
        Route("/", home),
    ]
    for name in sorted({a.name for a in hub.adapters.values()}):
        stub = demo_vendor(hub.pm, name, hub)
        if stub is not None:
            routes.append(Mount(f"/demo/vendor/{name}", app=stub))
    routes.append(Mount("/", app=hub.asgi(lifespan=False)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with hub:
            yield

    return Starlette(routes=routes, lifespan=lifespan)


_AGENT = Author(kind="human", id="demo-agent", name="Agent")


_background: set[asyncio.Task[Any]] = set()
