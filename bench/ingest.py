"""Inbound and outbound throughput of the hub, against hand-rolled floors, in one run.

    python bench/ingest.py [--messages 5000] [--sends 3000] [--latency 0.02]

Inbound: signed JSON webhooks through the ASGI gateway in process (no HTTP server), 64 in flight,
against a floor that does the same work by hand (HMAC check, JSON parse, a pydantic model, one
SQLite insert per message). Outbound: ``hub.send`` through the durable outbox to a loopback
vendor stub (a separate process) that answers after ``--latency`` seconds, with the aiohttp and
the httpx transports, against a floor of bare aiohttp POSTs at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing
import os
import platform
import socket
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from omnichannel_sdk import Address, Hub, Message, TextPart

SECRET = b"bench-secret"


def payload(i: int) -> tuple[bytes, str]:
    body = orjson.dumps({"id": f"m{i}", "from": f"+1415555{i % 500:04d}", "name": "Customer",
                         "text": "Hello, I would like to know where my order is. Thanks!",
                         "created_at": "2026-11-23T10:00:00Z"})
    return body, hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def form_payload(i: int) -> tuple[bytes, str]:
    """A Twilio-shaped inbound SMS form (about 1 KB, the fields Twilio documents)."""
    fields = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": f"SM{i:032d}", "NumMedia": "0",
        "ToCity": "SAN FRANCISCO", "FromZip": "94105", "SmsSid": f"SM{i:032d}", "FromState": "CA",
        "SmsStatus": "received", "FromCity": "SAN FRANCISCO",
        "Body": "Hello, I would like to know where my order is. Thanks!",
        "FromCountry": "US", "To": "+15005550006", "MessagingServiceSid": "MG" + "0" * 32,
        "ToZip": "94105", "NumSegments": "1", "MessageSid": f"SM{i:032d}",
        "AccountSid": "AC" + "0" * 32, "From": f"+1415555{i % 500:04d}", "ApiVersion": "2010-04-01",
    }
    body = urlencode(fields).encode()
    return body, hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def config(tmp: str, send_url: str = "http://127.0.0.1:1/none", transport: str = "aiohttp") -> dict[str, Any]:
    return {
        "omnichannel": {"store": f"sqlite:///{tmp}/hub.db", "blobs": "memory://",
                        "public_url": "https://bench.test", "http_transport": transport,
                        "delivery": {"concurrency": 128}},
        "channels": {
            "bench": {"adapter": "json-mapping", "secret": SECRET.decode(),
                      "created_at": "created_at", "sender_name": "name",
                      "send_url": send_url, "rate_limit": 100000},
            "bench-form": {"adapter": "json-mapping", "secret": SECRET.decode(), "channel": "sms",
                           "body": "form", "external_id": "MessageSid", "sender": "From",
                           "recipient": "To", "text": "Body"},
        },
    }


# ------------------------------------------------------------------------------------ inbound

def floor_inbound(n: int, tmp: str, form: bool = False) -> float:
    """The same work by hand: verify, parse, model, one insert (committed) per message."""
    conn = sqlite3.connect(f"{tmp}/floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE m (id TEXT PRIMARY KEY, data TEXT)")
    bodies = [(form_payload if form else payload)(i) for i in range(n)]
    now = datetime.now(UTC)
    start = time.perf_counter()
    for body, sig in bodies:
        expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise RuntimeError("bad signature")
        if form:
            fields = dict(parse_qsl(body.decode()))
            data = {"id": fields["MessageSid"], "from": fields["From"], "text": fields["Body"]}
        else:
            data = orjson.loads(body)
        channel = "sms" if form else "custom"
        message = Message(id=data["id"], channel=channel, channel_key="bench", adapter="floor",
                          external_id=data["id"], direction="inbound", conversation_id="c",
                          sender=Address(channel=channel, handle=data["from"]),
                          parts=[TextPart(text=data["text"])], created_at=now, received_at=now,
                          status="received")
        conn.execute("INSERT INTO m VALUES (?, ?)", (message.id, message.model_dump_json()))
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


async def gateway_inbound(n: int, tmp: str, concurrency: int = 64, form: bool = False) -> float:
    hub = Hub.from_config(config(tmp))
    bodies = [(form_payload if form else payload)(i) for i in range(n)]
    key = b"/webhooks/bench-form" if form else b"/webhooks/bench"
    ctype = b"application/x-www-form-urlencoded" if form else b"application/json"
    async with hub:
        app = hub.asgi(lifespan=False)

        async def post(body: bytes, sig: str) -> None:
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            status = 0

            async def send(message: dict[str, Any]) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]

            scope = {"type": "http", "method": "POST", "path": key.decode(), "root_path": "",
                     "query_string": b"", "headers": [(b"content-type", ctype),
                                                      (b"x-signature", sig.encode())]}
            await app(scope, receive, send)
            if status != 200:
                raise RuntimeError(f"gateway answered {status}")

        async def worker(share: list[tuple[bytes, str]]) -> None:
            for body, sig in share:
                await post(body, sig)

        start = time.perf_counter()
        await asyncio.gather(*[worker(bodies[i::concurrency]) for i in range(concurrency)])
        elapsed = time.perf_counter() - start
        stored = sum([len(await hub.store.list_messages(c.id)) for c in await hub.store.list_conversations()])
        if stored != n:
            raise RuntimeError(f"stored {stored} of {n}")
    return n / elapsed


# ----------------------------------------------------------------------------------- outbound

def _stub(port: int, latency: float, ready: Any) -> None:
    from aiohttp import web

    counter = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal counter
        await request.read()
        counter += 1
        if latency:
            await asyncio.sleep(latency)
        return web.json_response({"id": f"v{counter}"})

    app = web.Application()
    app.router.add_post("/messages", handle)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def floor_outbound(n: int, url: str, concurrency: int = 128) -> float:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker(ids: range) -> None:
            for i in ids:
                async with session.post(url, json={"id": i, "to": ["+14155550100"], "text": "hi"}) as r:
                    await r.read()

        start = time.perf_counter()
        await asyncio.gather(*[worker(range(i, n, concurrency)) for i in range(concurrency)])
        return n / (time.perf_counter() - start)


async def hub_outbound(n: int, url: str, transport: str, tmp: str) -> float:
    hub = Hub.from_config(config(tmp, url, transport))
    async with hub:
        conversations = [await hub.start_conversation("bench", f"+1415556{i:04d}") for i in range(50)]
        sent = 0
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal sent
            async for event in hub.events():
                if event.type == "message.sent":
                    sent += 1
                    if sent == n:
                        done.set()
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        start = time.perf_counter()
        async def agent(k: int) -> None:  # 50 agents replying at once, one conversation each
            for i in range(k, n, 50):
                await hub.send(conversations[k].id, text=f"Reply {i}")

        await asyncio.gather(*[agent(k) for k in range(50)])
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - start
        watcher.cancel()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sends", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")

    print("\n## inbound: signed webhooks, in process, 500 customers")
    print("| body | path | msg/s | vs floor |\n|---|---|---|---|")
    for form in (False, True):
        kind = "form (Twilio-shaped, 1 KB)" if form else "JSON (300 B)"
        with tempfile.TemporaryDirectory() as tmp:
            floor = floor_inbound(args.messages, tmp, form=form)
        with tempfile.TemporaryDirectory() as tmp:
            ours = asyncio.run(gateway_inbound(args.messages, tmp, form=form))
        print(f"| {kind} | floor (HMAC + parse + pydantic + 1 insert/msg) | {floor:,.0f} | 1.00 |")
        print(f"| {kind} | gateway (full pipeline, 64 in flight) | {ours:,.0f} | {ours / floor:.2f} |")

    port = free_port()
    ready = multiprocessing.Event()
    stub = multiprocessing.Process(target=_stub, args=(port, args.latency, ready), daemon=True)
    stub.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port}/messages"
    try:
        base = asyncio.run(floor_outbound(args.sends, url))
        results = {}
        for transport in ("aiohttp", "httpx"):
            with tempfile.TemporaryDirectory() as tmp:
                results[transport] = asyncio.run(hub_outbound(args.sends, url, transport, tmp))
    finally:
        stub.terminate()
    print(f"\n## outbound: {args.sends} sends, vendor stub answering after {args.latency * 1000:.0f} ms")
    print("| path | sends/s | vs floor |\n|---|---|---|")
    print(f"| floor (bare aiohttp POSTs, 128 in flight) | {base:,.0f} | 1.00 |")
    for transport, rate in results.items():
        print(f"| hub.send → outbox → vendor ({transport} transport) | {rate:,.0f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
