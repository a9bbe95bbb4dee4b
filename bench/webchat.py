"""Web chat at scale: N concurrent WebSocket visitors against one server process.

Measures, for each server, the memory each connected visitor costs the server (RSS growth / N)
and the agent -> visitor fan-out latency at a fixed message rate (each message carries its send
time; the visitor measures on arrival). Servers, one at a time, each in its own process:

- ``ours-push``: the web chat adapter's fan-out (``WebchatAdapter.send``, what the outbox calls)
  behind the real gateway (session tokens, origin check, registry, mailboxes), uvicorn.
- ``ours-hub``: the full path, ``hub.send`` -> SQLite outbox -> delivery -> adapter -> socket
  (agent replies to visitors that each wrote once first).
- ``floor``: a hand-rolled raw-ASGI WebSocket server that keeps sockets in a dict and pushes.
- ``socketio``: the peer library, python-socketio (ASGI) with its own client, when installed.

Loopback only, bounded in time. Run: ``.venv/bin/python bench/webchat.py [--visitors 10000]
[--rate 500] [--seconds 10]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds scripts named like stdlib modules (email.py): keep them off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

SECRET = "bench-webchat-secret-000000"
KEY = "webchat"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------------------
# servers (run as: bench/webchat.py --serve KIND --port P)


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind.startswith("ours"):
        app = _ours_app()
    elif kind == "floor":
        app = _floor_app()
    else:
        app = _socketio_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", ws_ping_interval=None,
                backlog=4096, lifespan="on")


def _bench_line(t0: float, seq: int) -> str:
    return f"bench:{t0!r}:{seq}"


def _ours_app() -> Any:
    import tempfile

    from omnichannel_webchat import _plugin

    from omnichannel_sdk import Address, Hub, Message, TextPart
    from omnichannel_sdk._ids import new_id

    data = Path(tempfile.mkdtemp(prefix="webchat-bench-"))
    hub = Hub.from_config({
        "omnichannel": {"store": f"sqlite:///{data / 'bench.db'}", "bus": "memory",
                        "blobs": "memory://", "public_url": "http://127.0.0.1:1"},
        "channels": {KEY: {"adapter": "webchat", "secret": SECRET, "allowed_origins": ["*"],
                           "visitor_burst": 1000, "visitor_rate": 1000}},
    }, plugins=[_plugin], entry_points=False)
    gateway = hub.asgi()
    adapter: Any = hub.adapter(KEY)

    async def drive(rate: float, seconds: float, mode: str) -> dict[str, Any]:
        visitors = list(adapter.registry._by_visitor)
        conversations: list[str] = []
        if mode == "hub":
            for visitor in visitors:
                cid = await adapter.conversation_of(visitor)
                if cid:
                    conversations.append(cid)
            if not conversations:
                return {"error": "no conversations"}
        now = time.time()
        own = Address(channel="webchat", handle=KEY)
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = []
        for seq in range(total):
            due = start + seq / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            text = _bench_line(time.time(), seq)
            if mode == "hub":
                tasks.append(asyncio.create_task(hub.send(conversations[seq % len(conversations)],
                                                          text=text)))
            else:
                visitor = visitors[seq % len(visitors)]
                now_dt = __import__("datetime").datetime.now(__import__("datetime").UTC)
                message = Message(id=new_id("msg"), channel="webchat", channel_key=KEY,
                                  adapter="webchat", direction="outbound", conversation_id="bench",
                                  sender=own, recipients=[Address(channel="webchat", handle=visitor)],
                                  parts=[TextPart(text=text)], created_at=now_dt, received_at=now_dt,
                                  status="queued")
                await adapter.send(message, message.parts)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return {"sent": total, "took": loop.time() - start, "at": now}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/bench/drive":
            query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
            result = await drive(float(query["rate"]), float(query["seconds"]), query["mode"])
            await _json(send, result)
            return
        if scope["type"] == "http" and scope["path"] == "/bench/gc":
            gc.collect()
            await _json(send, {"connections": len(adapter.registry)})
            return
        await gateway(scope, receive, send)

    return app


async def _json(send: Any, data: Any) -> None:
    body = json.dumps(data).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _floor_app() -> Any:
    sockets: dict[int, Any] = {}

    async def drive(rate: float, seconds: float) -> dict[str, Any]:
        keys = list(sockets)
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(total):
            delay = start + seq / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = json.dumps({"type": "message", "message": {"texts": [
                {"text": _bench_line(time.time(), seq)}]}})
            with contextlib.suppress(Exception):
                await sockets[keys[seq % len(keys)]]({"type": "websocket.send", "text": frame})
        return {"sent": total, "took": loop.time() - start}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            if scope["path"] == "/bench/drive":
                query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
                await _json(send, await drive(float(query["rate"]), float(query["seconds"])))
            else:
                gc.collect()
                await _json(send, {"connections": len(sockets)})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # the auth frame
        await send({"type": "websocket.send", "text": '{"type":"ready"}'})
        key = id(send)
        sockets[key] = send
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            sockets.pop(key, None)

    return app


def _socketio_app() -> Any:
    import socketio

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", transports=["websocket"])
    sids: list[str] = []

    @sio.event
    async def connect(sid: str, environ: Any) -> None:
        sids.append(sid)

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        with contextlib.suppress(ValueError):
            sids.remove(sid)

    inner = socketio.ASGIApp(sio)

    async def drive(rate: float, seconds: float) -> dict[str, Any]:
        targets = list(sids)
        total = int(rate * seconds)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(total):
            delay = start + seq / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await sio.emit("message", {"texts": [{"text": _bench_line(time.time(), seq)}]},
                           to=targets[seq % len(targets)])
        return {"sent": total, "took": loop.time() - start}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/"):
            if scope["path"] == "/bench/drive":
                query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
                await _json(send, await drive(float(query["rate"]), float(query["seconds"])))
            else:
                gc.collect()
                await _json(send, {"connections": len(sids)})
            return
        await inner(scope, receive, send)

    return app


# ----------------------------------------------------------------------------------------------
# the visitors (this process)


class Visitors:
    """N WebSocket clients that record the latency of every bench message they receive."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.connected = 0
        self.failed = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.stop = asyncio.Event()

    def seen(self, text: str) -> None:
        if text.startswith("bench:"):
            self.latencies.append(time.time() - float(text.split(":")[1]))

    async def websocket(self, url: str, token: str | None, first: str | None,
                        ready: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        try:
            async with connect(url, origin="http://127.0.0.1", open_timeout=30,  # type: ignore[arg-type]
                               ping_interval=None, compression=None) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                await ws.recv()
                if first:
                    await ws.send(json.dumps({"type": "message", "id": "first", "text": first}))
                    await ws.recv()
                self.connected += 1
                ready.release()
                async for raw in ws:
                    data = json.loads(raw)
                    if data.get("type") == "message":
                        self.seen(data["message"]["texts"][0]["text"])
        except Exception:
            self.failed += 1
            ready.release()

    async def socketio(self, url: str, ready: asyncio.Semaphore) -> None:
        import socketio

        client = socketio.AsyncClient(reconnection=False)

        @client.on("message")
        async def on_message(data: Any) -> None:
            self.seen(data["texts"][0]["text"])

        try:
            await client.connect(url, transports=["websocket"], wait_timeout=30)
            self.connected += 1
            ready.release()
            await self.stop.wait()
            await client.disconnect()
        except Exception:
            self.failed += 1
            ready.release()


def tokens(n: int) -> list[str]:
    from omnichannel_webchat import Session, new_visitor_id, sign_session

    exp = int(time.time()) + 3600
    return [sign_session(Session(visitor=new_visitor_id(), channel_key=KEY, expires=exp), SECRET)
            for _ in range(n)]


async def run_one(kind: str, visitors: int, rate: float, seconds: float,
                  budget: float) -> dict[str, Any]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "plugins/webchat/src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"server": kind}
    crowd = Visitors()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    await http.get("/bench/gc")
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            rss_before = rss_kb(proc.pid)
            ready = asyncio.Semaphore(0)
            gate = asyncio.Semaphore(100)  # connections being opened at once
            started = time.monotonic()
            writers = min(visitors, 300) if kind == "ours-hub" else 0
            toks = tokens(visitors) if kind.startswith("ours") or kind == "floor" else []
            url = f"ws://127.0.0.1:{port}/channels/{KEY}/ws" if kind.startswith("ours") else \
                f"ws://127.0.0.1:{port}/ws"
            for i in range(visitors):
                await gate.acquire()

                async def one(i: int = i) -> None:
                    inner = asyncio.Semaphore(0)
                    if kind == "socketio":
                        task = asyncio.create_task(crowd.socketio(base, inner))
                    else:
                        task = asyncio.create_task(crowd.websocket(
                            url, toks[i] if toks else None, "hi" if i < writers else None, inner))
                    crowd.tasks.append(task)
                    await inner.acquire()
                    gate.release()
                    ready.release()

                crowd.tasks.append(asyncio.create_task(one()))
                if time.monotonic() - started > budget:
                    break
            opened = i + 1
            for _ in range(opened):
                remaining = budget - (time.monotonic() - started)
                try:
                    await asyncio.wait_for(ready.acquire(), max(1.0, remaining))
                except TimeoutError:
                    break
            result["connect_s"] = round(time.monotonic() - started, 1)
            result["visitors"] = crowd.connected
            result["failed"] = crowd.failed
            server_count = (await http.get("/bench/gc")).json()["connections"]
            await asyncio.sleep(0.5)
            rss_after = rss_kb(proc.pid)
            result["kb_per_visitor"] = round((rss_after - rss_before) / max(1, server_count), 1)
            result["server_rss_mb"] = round(rss_after / 1024)
            cpu0 = cpu_seconds(proc.pid)
            mode = "hub" if kind == "ours-hub" else "push"
            drive = (await http.get("/bench/drive", params={
                "rate": rate, "seconds": seconds, "mode": mode})).json()
            await asyncio.sleep(1.0)
            cpu = cpu_seconds(proc.pid) - cpu0
            lat = sorted(crowd.latencies)
            result["sent"] = drive.get("sent", 0)
            result["received"] = len(lat)
            result["achieved_rate"] = round(drive.get("sent", 0) / max(drive.get("took", 1), 1e-9))
            result["server_cpu_pct"] = round(100 * cpu / max(drive.get("took", 1), 1e-9))
            if lat:
                result["p50_ms"] = round(1000 * statistics.median(lat), 2)
                result["p99_ms"] = round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2)
                result["max_ms"] = round(1000 * lat[-1], 2)
    finally:
        crowd.stop.set()
        await asyncio.sleep(0.5 if kind == "socketio" else 0)  # let socket.io clients disconnect
        for task in crowd.tasks:
            task.cancel()
        await asyncio.gather(*crowd.tasks, return_exceptions=True)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--budget", type=float, default=120, help="max seconds to connect visitors")
    parser.add_argument("--servers", default="floor,ours-push,ours-hub,socketio")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    kinds = [k for k in args.servers.split(",") if k]
    if "socketio" in kinds:
        try:
            import socketio  # noqa: F401
        except ImportError:
            kinds.remove("socketio")
            print("(python-socketio not installed: peer skipped)")
    rows = []
    for kind in kinds:
        rows.append(asyncio.run(run_one(kind, args.visitors, args.rate, args.seconds, args.budget)))
        print(json.dumps(rows[-1]), flush=True)
    cols = ["server", "visitors", "failed", "connect_s", "kb_per_visitor", "server_rss_mb", "sent",
            "received", "achieved_rate", "server_cpu_pct", "p50_ms", "p99_ms", "max_ms"]
    print(f"\n{args.visitors} visitors, {args.rate:g} msg/s for {args.seconds:g} s, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(" | ".join(cols))
    floor = next((r for r in rows if r["server"] == "floor"), None)
    for row in rows:
        print(" | ".join(str(row.get(c, "-")) for c in cols))
    if floor and floor.get("kb_per_visitor"):
        for row in rows:
            if row is not floor and row.get("kb_per_visitor"):
                print(f"{row['server']}: memory x{row['kb_per_visitor'] / floor['kb_per_visitor']:.2f} "
                      f"of the floor, p99 x{row.get('p99_ms', 0) / max(floor.get('p99_ms', 1), 1e-9):.2f}")


if __name__ == "__main__":
    main()
