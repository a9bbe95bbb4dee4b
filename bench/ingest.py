"""Inbound and outbound throughput of the hub, against hand-rolled floors and peers, in one run.

    python bench/ingest.py [--messages 2000] [--rounds 3] [--sends 1000] [--latency 0.02]
                           [--no-inbound] [--no-outbound] [--no-postgres] [--no-httpx]

Inbound: signed Twilio SMS webhooks (the real ``twilio-sms`` adapter: ``X-Twilio-Signature``
over a form with the fields Twilio documents) through the ASGI gateway in process (no HTTP
server), 64 in flight, against a floor doing the same work by hand (the HMAC-SHA1 signature
check, the form parse, one pydantic model, one SQLite insert committed per message). The two
sides run interleaved over ``--rounds`` rounds; each round prints nothing, the summary gives the
min/median/max of the per-round ratios and the CPU time (``time.process_time``) per message. A
PostgreSQL row (the gateway on a fresh schema against a floor of one asyncpg insert per message)
runs when PostgreSQL answers on 127.0.0.1:5432 and is skipped otherwise; it also reports the
server's CPU per message (``utime + stime`` of the side's own backends, found by their
``application_name``, read from ``/proc`` before and after the timed work). ``--only-postgres``
runs the PostgreSQL row alone.

Outbound: ``hub.send`` through the durable outbox and the ``twilio-sms`` adapter (its
``api_base`` the stub) to a loopback vendor stub (a separate process) that answers Twilio's
Messages API path after ``--latency`` seconds, with the aiohttp and the httpx transports, against a
floor of bare aiohttp POSTs and the ``twilio`` package's own async HTTP client (the ``bench``
extra) posting to the same stub at the same concurrency, also interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from omnichannel_sdk import Address, Hub, Message, TextPart, freeze_after_startup

TOKEN = "bench-twilio-auth-token-0123456789"
PUBLIC_URL = "https://bench.test"
INBOUND_URL = f"{PUBLIC_URL}/webhooks/sms"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONCURRENCY = 64


def twilio_form(i: int, customers: int = 500) -> tuple[bytes, str]:
    """A signed Twilio inbound SMS form (the fields Twilio documents) and its signature: message
    ``i`` of one of ``customers`` customers (the first message of each opens a conversation)."""
    fields = {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": f"SM{i:032d}", "NumMedia": "0",
        "ToCity": "SAN FRANCISCO", "FromZip": "94105", "SmsSid": f"SM{i:032d}", "FromState": "CA",
        "SmsStatus": "received", "FromCity": "SAN FRANCISCO",
        "Body": "Hello, I would like to know where my order is. Thanks!",
        "FromCountry": "US", "To": "+15005550006", "MessagingServiceSid": "MG" + "0" * 32,
        "ToZip": "94105", "NumSegments": "1", "MessageSid": f"SM{i:032d}",
        "AccountSid": "AC" + "0" * 32, "From": f"+1415555{i % customers:04d}", "ApiVersion": "2010-04-01",
    }
    body = urlencode(fields).encode()
    return body, _signature(INBOUND_URL, fields.items())


def _signature(url: str, params: Any) -> str:
    # Twilio's scheme: base64 HMAC-SHA1 over the URL and every name + value, sorted by name
    data = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def config(tmp: str, store: str | None = None, send_url: str = "http://127.0.0.1:1/none",
           transport: str = "aiohttp", api_base: str | None = None) -> dict[str, Any]:
    return {
        "omnichannel": {"store": store or f"sqlite:///{tmp}/hub.db", "blobs": "memory://",
                        "public_url": PUBLIC_URL, "http_transport": transport,
                        # 100 vendor calls in flight, as the peer and the floor make them (the
                        # default per-channel bound, 16, trades throughput for fewer possible
                        # duplicates after a crash)
                        "delivery": {"concurrency": 128, "max_in_flight_per_channel": 100}},
        "channels": {
            "sms": {"adapter": "twilio-sms", "account_sid": "AC" + "0" * 32, "auth_token": TOKEN,
                    "from_number": "+15005550006",
                    # outbound: the vendor stub stands in for api.twilio.com (the peer posts there)
                    **({"api_base": api_base} if api_base else {})},
            "bench": {"adapter": "json-mapping", "secret": "bench-secret", "send_url": send_url,
                      "rate_limit": 100000},
        },
    }


class Sample:
    """Wall and CPU time of one side of one round (and the PostgreSQL server's, when known)."""

    def __init__(self, n: int, wall: float, cpu: float, server: float | None = None) -> None:
        self.rate = n / wall
        self.cpu_us = cpu / n * 1e6
        self.server_us = None if server is None else server / n * 1e6


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


async def backend_cpu(app: str) -> dict[int, float]:
    """CPU seconds (user + system) of each PostgreSQL backend whose ``application_name`` is
    ``app`` (``/proc`` of a local server; empty where it cannot be read)."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        pids = [r[0] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)]
    finally:
        await conn.close()
    found: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return found


def server_delta(before: dict[int, float], after: dict[int, float]) -> float | None:
    """The backends' CPU between two readings (a backend that appeared in between from 0)."""
    if not after:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def timed(n: int, run: Callable[[], Awaitable[None]]) -> Sample:
    """Run ``run`` on a fresh event loop; only the awaited work is timed."""
    box: list[Sample] = []

    async def main() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        await run()
        box.append(Sample(n, time.perf_counter() - wall, time.process_time() - cpu))

    asyncio.run(main())
    return box[0]


# ------------------------------------------------------------------------------------ inbound

def _message(fields: dict[str, str], now: datetime, message_id: str | None = None,
             conversation_id: str = "c") -> Message:
    return Message(id=message_id or fields["MessageSid"], channel="sms", channel_key="sms",
                   adapter="floor", external_id=fields["MessageSid"], direction="inbound",
                   conversation_id=conversation_id,
                   sender=Address(channel="sms", handle=fields["From"]),
                   parts=[TextPart(text=fields["Body"])], created_at=now, received_at=now,
                   status="received")


def _floor_one(body: bytes, sig: str, now: datetime) -> Message:
    fields = dict(parse_qsl(body.decode()))
    if not hmac.compare_digest(_signature(INBOUND_URL, fields.items()), sig):
        raise RuntimeError("bad signature")
    return _message(fields, now)


def floor_sqlite(bodies: list[tuple[bytes, str]], tmp: str) -> Sample:
    """The same work by hand: verify, parse, model, one insert (committed) per message."""
    conn = sqlite3.connect(f"{tmp}/floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE m (id TEXT PRIMARY KEY, data TEXT)")
    now = datetime.now(UTC)

    async def run() -> None:
        for body, sig in bodies:
            message = _floor_one(body, sig, now)
            conn.execute("INSERT INTO m VALUES (?, ?)", (message.id, message.model_dump_json()))

    try:
        return timed(len(bodies), run)
    finally:
        conn.close()


_DURABLE_SCHEMA = (
    "CREATE TABLE raw (id TEXT PRIMARY KEY, received_us INTEGER, headers TEXT, body BLOB)",
    "CREATE TABLE refs (channel_key TEXT, external_id TEXT, message_id TEXT, "
    "PRIMARY KEY (channel_key, external_id))",
    "CREATE TABLE contacts (id TEXT PRIMARY KEY, data TEXT)",
    "CREATE TABLE contact_addresses (channel TEXT, handle TEXT, contact_id TEXT, "
    "PRIMARY KEY (channel, handle))",
    "CREATE TABLE conv (id TEXT PRIMARY KEY, thread_key TEXT, contact_id TEXT, status TEXT, "
    "last_inbound_us INTEGER, window_expires_us INTEGER, data TEXT)",
    "CREATE UNIQUE INDEX conv_open ON conv (thread_key) WHERE status = 'open'",
    "CREATE TABLE m (id TEXT PRIMARY KEY, conversation_id TEXT, created_us INTEGER, data TEXT)",
)


def durable_sqlite(bodies: list[tuple[bytes, str]], tmp: str) -> Sample:
    """What the gateway guarantees, by hand: the floor's verify, parse and model, plus the raw
    request kept, the vendor id claimed (a retried webhook is not stored twice), the customer's
    contact found or made, the thread's open conversation found or opened and its 24-hour
    window moved, the message stored in it; committed per ``CONCURRENCY`` messages (the
    gateway's group commit takes at most that many). No events, metrics, dead letters, merges,
    opt-outs, media jobs or error paths: what a pipeline with these guarantees cannot cost less
    than (issue 19 goal 1's second floor)."""
    from omnichannel_sdk import Contact, Conversation

    conn = sqlite3.connect(f"{tmp}/durable.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in _DURABLE_SCHEMA:
        conn.execute(statement)
    window = 24 * 3600 * 1_000_000

    def one(body: bytes, sig: str, now: datetime, now_us: int) -> None:
        fields = dict(parse_qsl(body.decode()))
        if not hmac.compare_digest(_signature(INBOUND_URL, fields.items()), sig):
            raise RuntimeError("bad signature")
        conn.execute("INSERT INTO raw VALUES (?, ?, ?, ?)",
                     (uuid.uuid4().hex, now_us, json.dumps({"x-twilio-signature": sig}), body))
        message_id = uuid.uuid4().hex
        if conn.execute("INSERT INTO refs VALUES ('sms', ?, ?) ON CONFLICT DO NOTHING "
                        "RETURNING message_id", (fields["MessageSid"], message_id)).fetchone() is None:
            return  # a retried webhook: kept raw, not stored again
        sender = Address(channel="sms", handle=fields["From"])
        ours = Address(channel="sms", handle=fields["To"])
        thread = f"{sender.handle}|{ours.handle}"
        row = conn.execute("SELECT id FROM conv WHERE thread_key = ? AND status = 'open'",
                           (thread,)).fetchone()
        if row is None:
            owner = conn.execute("SELECT contact_id FROM contact_addresses WHERE channel = 'sms' "
                                 "AND handle = ?", (sender.handle,)).fetchone()
            if owner is None:
                contact = Contact(id=uuid.uuid4().hex, addresses=[sender])
                conn.execute("INSERT INTO contacts VALUES (?, ?)",
                             (contact.id, contact.model_dump_json()))
                conn.execute("INSERT INTO contact_addresses VALUES ('sms', ?, ?)",
                             (sender.handle, contact.id))
                owner = (contact.id,)
            conversation = Conversation(id=uuid.uuid4().hex, channel="sms", channel_key="sms",
                                        contact_id=owner[0], participants=[sender, ours],
                                        thread_key=thread, created_at=now)
            conn.execute("INSERT INTO conv VALUES (?, ?, ?, 'open', ?, ?, ?)",
                         (conversation.id, thread, owner[0], now_us, now_us + window,
                          conversation.model_dump_json()))
            row = (conversation.id,)
        else:
            conn.execute("UPDATE conv SET last_inbound_us = ?, window_expires_us = ? WHERE id = ?",
                         (now_us, now_us + window, row[0]))
        message = _message(fields, now, message_id, row[0])
        conn.execute("INSERT INTO m VALUES (?, ?, ?, ?)",
                     (message.id, message.conversation_id, now_us, message.model_dump_json()))

    async def run() -> None:
        for start in range(0, len(bodies), CONCURRENCY):
            now = datetime.now(UTC)
            now_us = int(now.timestamp() * 1_000_000)
            conn.execute("BEGIN")
            for body, sig in bodies[start:start + CONCURRENCY]:
                one(body, sig, now, now_us)
            conn.execute("COMMIT")

    try:
        sample = timed(len(bodies), run)
        stored = conn.execute("SELECT count(*) FROM m").fetchone()[0]
    finally:
        conn.close()
    if stored != len(bodies):  # every request of the bench is a message of its own
        raise RuntimeError(f"the durable floor stored {stored} of {len(bodies)}")
    return sample


def floor_postgres(bodies: list[tuple[bytes, str]], schema: str) -> Sample:
    """The floor on PostgreSQL: one asyncpg insert (autocommit) per message, 64 in flight."""
    import asyncpg

    now = datetime.now(UTC)
    box: list[Sample] = []

    async def main() -> None:
        app = f"floor_{schema}"
        pool = await asyncpg.create_pool(PG_DSN, min_size=8, max_size=8,
                                         server_settings={"application_name": app})
        try:
            await pool.execute(f'CREATE SCHEMA "{schema}"')
            await pool.execute(f'CREATE TABLE "{schema}".m (id TEXT PRIMARY KEY, data TEXT)')
            insert = f'INSERT INTO "{schema}".m VALUES ($1, $2)'

            async def worker(share: list[tuple[bytes, str]]) -> None:
                for body, sig in share:
                    message = _floor_one(body, sig, now)
                    await pool.execute(insert, message.id, message.model_dump_json())

            before = await backend_cpu(app)
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*[worker(bodies[i::CONCURRENCY]) for i in range(CONCURRENCY)])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            box.append(Sample(len(bodies), wall, cpu, server_delta(before, await backend_cpu(app))))
        finally:
            await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await pool.close()

    asyncio.run(main())
    return box[0]


def gateway(bodies: list[tuple[bytes, str]], tmp: str, store: str | None = None,
            feed: bool = False, read_back: bool = True, freeze: bool = False) -> Sample:
    """The real pipeline: the gateway's ASGI app called in process, ``CONCURRENCY`` in flight
    (with the durable feed's log when ``feed``). Afterwards every message is read back through
    the store (untimed); with ``read_back=False`` the rows are only counted in SQL, for
    ``bench/ingest_callgrind.py``, which counts the whole process: the read-back parses every
    stored message, work the floor has no counterpart of (≈ 0.13 M instructions a message).
    ``freeze`` runs ``freeze_after_startup()`` once the hub is open, as an application that
    embeds the hub may (``omnichannel serve`` does)."""
    box: list[Sample] = []

    async def main() -> None:
        conf = config(tmp, store)
        conf["omnichannel"]["feed"] = {"enabled": feed}
        hub = Hub.from_config(conf)
        async with hub:
            if freeze:
                freeze_after_startup()
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

                scope = {"type": "http", "method": "POST", "path": "/webhooks/sms", "root_path": "",
                         "query_string": b"",
                         "headers": [(b"content-type", b"application/x-www-form-urlencoded"),
                                     (b"x-twilio-signature", sig.encode())]}
                await app(scope, receive, send)
                if status != 200:
                    raise RuntimeError(f"gateway answered {status}")

            async def worker(share: list[tuple[bytes, str]]) -> None:
                for body, sig in share:
                    await post(body, sig)

            name = store.rsplit("application_name=", 1)[1] if store and "application_name=" in store else ""
            before = await backend_cpu(name) if name else {}
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*[worker(bodies[i::CONCURRENCY]) for i in range(CONCURRENCY)])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            box.append(Sample(len(bodies), wall, cpu,
                              server_delta(before, await backend_cpu(name)) if name else None))
            if read_back:
                conversations = await hub.store.list_conversations()
                stored = sum([len(await hub.store.list_messages(c.id)) for c in conversations])
                if stored != len(bodies):
                    raise RuntimeError(f"stored {stored} of {len(bodies)}")
        if not read_back and store is None:
            with sqlite3.connect(f"{tmp}/hub.db") as conn:
                stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            if stored != len(bodies):
                raise RuntimeError(f"stored {stored} of {len(bodies)}")
        if store is not None:  # after the hub closed: its outbox poller still runs until then
            import asyncpg

            pg = await asyncpg.connect(PG_DSN)
            try:
                schema = store.split("schema=", 1)[1].split("&", 1)[0]
                if not read_back:
                    stored = await pg.fetchval(f'SELECT count(*) FROM "{schema}".messages')
                    if stored != len(bodies):
                        raise RuntimeError(f"stored {stored} of {len(bodies)}")
                await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await pg.close()

    asyncio.run(main())
    return box[0]


def postgres_up() -> bool:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return False
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


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
        # Twilio answers a created message with 201 and its sid
        return web.json_response({"id": f"v{counter}", "sid": f"SM{counter:032d}"}, status=201)

    app = web.Application()
    app.router.add_post("/{path:.*}", handle)

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


async def floor_outbound(n: int, url: str, concurrency: int = 100) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker(ids: range) -> None:
            for i in ids:
                async with session.post(url, json={"id": i, "to": ["+14155550100"], "text": "hi"}) as r:
                    await r.read()

        await asyncio.gather(*[worker(range(i, n, concurrency)) for i in range(concurrency)])


async def twilio_outbound(n: int, url: str, concurrency: int = 100) -> None:
    """The peer: the ``twilio`` package's own async HTTP client (aiohttp inside), one
    form-encoded Messages API call per send, Basic auth, to the same stub."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]

    client = AsyncTwilioHttpClient(pool_connections=True)
    try:
        async def worker(ids: range) -> None:
            for i in ids:
                response = await client.request(
                    "POST", url, data={"To": "+14155550100", "From": "+15005550006",
                                       "Body": f"Reply {i}"}, auth=("AC" + "0" * 32, TOKEN))
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"stub answered {response.status_code}")

        await asyncio.gather(*[worker(range(i, n, concurrency)) for i in range(concurrency)])
    finally:
        await client.close()


async def durable_outbound(n: int, url: str, tmp: str, concurrency: int = 100) -> None:
    """A durable send by hand: twilio's client (as ``twilio_outbound``) with the least an outbox
    must write on SQLite — the message (pydantic, its JSON) and its job in one committed
    transaction before the call, the vendor's id, the status and the job's removal in one after
    it. No de-duplication, threading, events, retries or crash reconciliation: what a durable
    send cannot cost less than."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    conn = sqlite3.connect(f"{tmp}/durable.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE m (id TEXT PRIMARY KEY, status TEXT, external_id TEXT, data TEXT)")
    conn.execute("CREATE TABLE j (id TEXT PRIMARY KEY, message_id TEXT)")
    client = AsyncTwilioHttpClient(pool_connections=True)
    now = datetime.now(UTC)
    try:
        async def worker(ids: range) -> None:
            for i in ids:
                message = Message(id=f"msg_{i}", channel="sms", channel_key="sms",
                                  adapter="floor", direction="outbound", conversation_id="c",
                                  sender=Address(channel="sms", handle="+15005550006"),
                                  recipients=[Address(channel="sms", handle="+14155550100")],
                                  parts=[TextPart(text=f"Reply {i}")], created_at=now,
                                  received_at=now, status="queued")
                conn.execute("BEGIN")
                conn.execute("INSERT INTO m VALUES (?, 'queued', NULL, ?)",
                             (message.id, message.model_dump_json()))
                conn.execute("INSERT INTO j VALUES (?, ?)", (f"job_{i}", message.id))
                conn.execute("COMMIT")
                response = await client.request(
                    "POST", url, data={"To": "+14155550100", "From": "+15005550006",
                                       "Body": message.parts[0].text},  # type: ignore[union-attr]
                    auth=("AC" + "0" * 32, TOKEN))
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"stub answered {response.status_code}")
                sid = json.loads(response.text)["sid"]
                conn.execute("BEGIN")
                conn.execute("UPDATE m SET status = 'sent', external_id = ? WHERE id = ?",
                             (sid, message.id))
                conn.execute("DELETE FROM j WHERE id = ?", (f"job_{i}",))
                conn.execute("COMMIT")

        await asyncio.gather(*[worker(range(i, n, concurrency)) for i in range(concurrency)])
    finally:
        await client.close()
        conn.close()


async def hub_outbound(n: int, base: str, transport: str, tmp: str, freeze: bool = False) -> Sample:
    """``hub.send`` through the twilio-sms adapter, its ``api_base`` the stub (``freeze``: as
    ``gateway``'s)."""
    hub = Hub.from_config(config(tmp, transport=transport, api_base=base))
    async with hub:
        conversations = [await hub.start_conversation("sms", f"+1415556{i:04d}") for i in range(50)]
        if freeze:
            freeze_after_startup()
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
        wall, cpu = time.perf_counter(), time.process_time()

        async def agent(k: int) -> None:  # 50 agents replying at once, one conversation each
            for i in range(k, n, 50):
                await hub.send(conversations[k].id, text=f"Reply {i}")

        await asyncio.gather(*[agent(k) for k in range(50)])
        await asyncio.wait_for(done.wait(), 300)
        sample = Sample(n, time.perf_counter() - wall, time.process_time() - cpu)
        watcher.cancel()
    return sample


# -------------------------------------------------------------------------------------- report

def summary(label: str, ours: list[Sample], floor: list[Sample]) -> str:
    """One table row: median rate and CPU per item, and the per-round ratios to ``floor`` (rate:
    min / median / max; CPU: the floor's CPU per item over ours, median)."""
    pairs = list(zip(ours, floor, strict=True))
    ratios = sorted(o.rate / f.rate for o, f in pairs)
    cpu_ratio = statistics.median(f.cpu_us / o.cpu_us for o, f in pairs)
    rate = statistics.median(s.rate for s in ours)
    cpu = statistics.median(s.cpu_us for s in ours)
    return (f"| {label} | {rate:,.0f} | {cpu:,.0f} | {ratios[0]:.2f} / {statistics.median(ratios):.2f}"
            f" / {ratios[-1]:.2f} | {cpu_ratio:.2f} |")


def server_summary(ours: list[Sample], floor: list[Sample]) -> str:
    """The PostgreSQL server's CPU per message of both sides (their own backends), and the
    floor's bench + server CPU over ours (median of the rounds)."""
    pairs = [(o.cpu_us, o.server_us, f.cpu_us, f.server_us) for o, f in zip(ours, floor, strict=True)
             if o.server_us is not None and f.server_us is not None]
    if not pairs:
        return "(the server's CPU could not be read from /proc: not a local server)"
    mine = statistics.median(p[1] for p in pairs)
    theirs = statistics.median(p[3] for p in pairs)
    total = statistics.median((p[2] + p[3]) / (p[0] + p[1]) for p in pairs)
    return (f"PostgreSQL server CPU per message (its backends, median): gateway {mine:,.0f} µs, "
            f"floor {theirs:,.0f} µs; floor (bench + server) CPU / ours {total:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--port", type=int, default=0, help="the vendor stub's port (default: a free one)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL row")
    parser.add_argument("--no-outbound", action="store_true", help="skip the outbound table")
    parser.add_argument("--no-inbound", action="store_true", help="skip the inbound table")
    parser.add_argument("--no-httpx", action="store_true",
                        help="skip the outbound row with the default (httpx) transport")
    parser.add_argument("--only-postgres", action="store_true",
                        help="the PostgreSQL inbound row alone (no SQLite rows, no outbound)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")

    if not args.no_inbound:
        inbound(args)
    if not args.no_outbound and not args.only_postgres:
        outbound(args)


def inbound(args: argparse.Namespace) -> None:
    """The inbound table: floor and gateway, SQLite and PostgreSQL, interleaved."""
    bodies = [twilio_form(i) for i in range(args.messages)]
    size = statistics.mean(len(b) for b, _ in bodies)
    pg = postgres_up() and not args.no_postgres
    sides: dict[str, list[Sample]] = {"floor": [], "ours": [], "pg floor": [], "pg ours": []}
    for r in range(args.rounds):  # interleaved; the order alternates so neither side always goes first
        order = ["floor", "ours"] if r % 2 == 0 else ["ours", "floor"]
        for side in order if not args.only_postgres else []:
            with tempfile.TemporaryDirectory() as tmp:
                sides[side].append(floor_sqlite(bodies, tmp) if side == "floor" else gateway(bodies, tmp))
        if pg:
            for side in order:
                schema = "bench_" + uuid.uuid4().hex[:12]
                with tempfile.TemporaryDirectory() as tmp:
                    sides["pg " + side].append(
                        floor_postgres(bodies, schema) if side == "floor"
                        else gateway(bodies, tmp,
                                     f"{PG_DSN}?schema={schema}&application_name=ours_{schema}"))

    print(f"\n## inbound: signed Twilio SMS forms ({size:.0f} B), twilio-sms adapter, in process, "
          f"{args.messages} messages from {min(500, args.messages)} customers, "
          f"{args.rounds} interleaved rounds")
    print("| path | msg/s (median) | CPU µs/msg (median) | rate vs floor min / median / max "
          "| floor CPU / ours |")
    print("|---|---|---|---|---|")
    if not args.only_postgres:
        print(summary("floor, SQLite (HMAC-SHA1 + form + pydantic + 1 insert/msg)",
                      sides["floor"], sides["floor"]))
        print(summary(f"gateway, SQLite (full pipeline, {CONCURRENCY} in flight)",
                      sides["ours"], sides["floor"]))
    if pg:
        print(summary(f"floor, PostgreSQL (1 asyncpg insert/msg, {CONCURRENCY} in flight)",
                      sides["pg floor"], sides["pg floor"]))
        print(summary("gateway, PostgreSQL (fresh schema)", sides["pg ours"], sides["pg floor"]))
        print("(CPU is this process only; the server's is below)")
        print(server_summary(sides["pg ours"], sides["pg floor"]))
    else:
        print("| PostgreSQL | skipped: not reachable on 127.0.0.1:5432 (or asyncpg missing) | | | |")



def outbound(args: argparse.Namespace) -> None:
    """The outbound table: the floor, twilio's client and the hub, interleaved."""
    port = args.port or free_port()
    ready = multiprocessing.Event()
    stub = multiprocessing.Process(target=_stub, args=(port, args.latency, ready), daemon=True)
    stub.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"  # Twilio's path
    import aiohttp  # noqa: F401  (imported before timing: no side pays for the first import)

    # twilio passes ``auth=`` to aiohttp, which warns on every request
    warnings.filterwarnings("ignore", message=".*'auth' parameter is deprecated", category=DeprecationWarning)
    try:
        import twilio.http.async_http_client  # type: ignore[import-untyped]  # noqa: F401
        peers = ["floor", "twilio", "aiohttp", "httpx"]
    except ImportError:
        print("(twilio not installed: pip install -e '.[bench]' for the peer row)")
        peers = ["floor", "aiohttp", "httpx"]
    if args.no_httpx:
        peers.remove("httpx")
    out: dict[str, list[Sample]] = {p: [] for p in peers}
    try:
        for r in range(args.rounds):
            for side in peers if r % 2 == 0 else list(reversed(peers)):
                if side == "floor":
                    out[side].append(timed(args.sends, lambda: floor_outbound(args.sends, url)))
                elif side == "twilio":
                    out[side].append(timed(args.sends, lambda: twilio_outbound(args.sends, url)))
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        out[side].append(asyncio.run(hub_outbound(args.sends, base, side, tmp)))
    finally:
        stub.terminate()
    print(f"\n## outbound: {args.sends} sends (twilio-sms adapter on the hub), vendor stub "
          f"answering after {args.latency * 1000:.0f} ms, "
          f"{args.rounds} interleaved rounds")
    print("| path | sends/s (median) | CPU µs/send (median) | rate vs floor min / median / max "
          "| floor CPU / ours |")
    print("|---|---|---|---|---|")
    print(summary("floor (bare aiohttp POSTs, 100 in flight)", out["floor"], out["floor"]))
    if "twilio" in out:
        print(summary("peer: twilio AsyncTwilioHttpClient, 100 in flight", out["twilio"], out["floor"]))
    for transport in [t for t in ("aiohttp", "httpx") if t in out]:
        print(summary(f"hub.send → outbox → vendor ({transport} transport)", out[transport], out["floor"]))
    if "twilio" in out:
        pairs = list(zip(out["aiohttp"], out["twilio"], strict=True))
        ratios = sorted(o.rate / t.rate for o, t in pairs)
        cpu = statistics.median(o.cpu_us / t.cpu_us for o, t in pairs)
        print(f"hub.send (aiohttp) vs twilio's client: sends/s {ratios[0]:.2f} / "
              f"{statistics.median(ratios):.2f} / {ratios[-1]:.2f} (min / median / max), "
              f"CPU per send {cpu:.2f} times theirs (median)")


if __name__ == "__main__":
    main()
