"""The gateway over real uvicorn processes against a Starlette floor under the same uvicorn.

    python -P bench/serve.py [--requests 4000] [--rounds 3] [--rate 1000] [--duration 10]

Ours is ``omnichannel serve`` (the CLI, in a subprocess) with the real ``twilio-sms`` adapter
configured as ``bench/ingest.py`` configures it in process. The floor is a Starlette app doing
by hand what ``bench/ingest.py``'s floor does — the HMAC-SHA1 signature check, the form parse,
one pydantic model, one insert (SQLite committed per message, or asyncpg on a pool of 8) — run by
``uvicorn.run`` with the very settings ``omnichannel serve`` uses (``uvicorn_settings``). Both
listen on loopback ports 18700-18799 (``--ports`` picks others).

A load generator in its own process (aiohttp, keep-alive connections, signed Twilio webhooks
with a unique ``MessageSid`` each) drives one side at a time in two modes:

- throughput: ``--requests`` requests, ``--concurrency`` in flight;
- open loop: ``--rate`` requests a second for ``--duration`` seconds, each sent at its scheduled
  time whether or not the earlier ones were answered; latency counts from the scheduled time
  (a server that falls behind is charged for the queue), p50 / p95 / p99 / max.

The sides alternate over ``--rounds`` rounds (the order flips each round); the summary prints
the min / median / max of the per-round ratios and the server processes' CPU per request (user +
system from ``/proc/<pid>/stat`` over the measured window; the PostgreSQL server's own CPU is
not counted). Rows: SQLite, one process; PostgreSQL, one process (skipped when 127.0.0.1:5432
does not answer); PostgreSQL, two gateway processes on two ports with the load split, and
``omnichannel serve --workers 2`` on one port (the workers' CPU counted), each against one.

A further SQLite-free row (``--no-http-layer`` skips it) measures the HTTP layer alone, so that
the server CPU per request splits into what serving over HTTP costs and what the pipeline
costs: our ``Gateway`` over a stub hub (``StubHost``: no verification, no store) against a
Starlette route that reads the body and the signature header, both answering the same TwiML
under the same uvicorn settings. ``bench/serve_callgrind.py`` counts the same servers'
instructions per request (the measure for A/B work on a shared machine).

``--run-floor STORE PORT``, ``--run-layer KIND PORT`` and ``--run-load JSON`` are what the driver
starts in subprocesses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import ingest  # (the bench's own module: the same payloads, signing and floor work)

PORTS = range(18700, 18800)
TICKS = os.sysconf("SC_CLK_TCK")
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# ------------------------------------------------------------------------------ the floor app

def floor_app(store: str) -> Any:
    """The floor: Starlette, HMAC-SHA1 + form + one pydantic model + one insert per request."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    state: dict[str, Any] = {}

    async def insert_sqlite(mid: str, data: str) -> None:
        state["conn"].execute("INSERT INTO m VALUES (?, ?)", (mid, data))  # autocommit

    async def insert_pg(mid: str, data: str) -> None:
        await state["pool"].execute(state["sql"], mid, data)

    insert = insert_sqlite if store.startswith("sqlite:///") else insert_pg

    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            message = ingest._floor_one(body, request.headers.get("x-twilio-signature", ""),
                                        datetime.now(UTC))
        except RuntimeError:
            return Response(b"signature verification failed", 403)
        await insert(message.id, message.model_dump_json())
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def health(_: Request) -> Response:
        return Response(b'{"ok": true}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        if insert is insert_sqlite:
            conn = sqlite3.connect(store[len("sqlite:///"):], isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS m (id TEXT PRIMARY KEY, data TEXT)")
            state["conn"] = conn
            yield
            conn.close()
            return
        import asyncpg

        dsn, _, schema = store.partition("?schema=")
        pool = await asyncpg.create_pool(dsn, min_size=8, max_size=8)
        await pool.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await pool.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".m (id TEXT PRIMARY KEY, data TEXT)')
        state["pool"], state["sql"] = pool, f'INSERT INTO "{schema}".m VALUES ($1, $2)'
        yield
        await pool.close()

    return Starlette(routes=[Route("/webhooks/sms", webhook, methods=["POST"]),
                             Route("/healthz", health)], lifespan=lifespan)


def run_floor(store: str, port: int) -> None:
    import uvicorn

    from omnichannel_sdk._cli import uvicorn_settings

    uvicorn.run(floor_app(store), host="127.0.0.1", port=port, **uvicorn_settings())


# ------------------------------------------------------------------- the HTTP layer on its own

class StubHost:
    """A ``GatewayHost`` whose pipeline does nothing: ``handle_webhook`` reads the signature
    header and answers the empty TwiML, as :func:`http_layer_app`'s Starlette route does."""

    def __init__(self) -> None:
        from omnichannel_sdk._config import HubSettings
        from omnichannel_sdk._metrics import HubMetrics

        self.settings, self.metrics = HubSettings(), HubMetrics()
        self.adapters: dict[str, Any] = {"sms": None}
        self.is_open = True
        self.storage, self.bus = self, self

    async def schema_version(self) -> int:  # (storage, for /healthz)
        return 1

    async def check(self) -> None:  # (bus, for /healthz)
        return None

    def request_url(self, channel_key: str, query_string: str = "") -> str:
        url = f"{ingest.PUBLIC_URL}/webhooks/{channel_key}"
        return f"{url}?{query_string}" if query_string else url

    async def handle_webhook(self, channel_key: str, request: Any, *, trusted: bool = False) -> Any:
        from omnichannel_sdk._webhook import WebhookResponse

        request.headers.get("x-twilio-signature", "")
        return WebhookResponse(200, EMPTY_TWIML, "text/xml; charset=utf-8")

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


def http_layer_app(kind: str) -> Any:
    """uvicorn's and the app's share alone: ``gateway`` is our ASGI app (``hub.asgi()``'s
    :class:`Gateway`) over :class:`StubHost`; ``starlette`` is the floor's Starlette app with a
    route that reads the body and the signature header and answers the same bytes."""
    if kind == "gateway":
        from omnichannel_sdk._gateway import Gateway

        return Gateway(StubHost(), lifespan=False)  # type: ignore[arg-type]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def webhook(request: Request) -> Response:
        await request.body()
        request.headers.get("x-twilio-signature", "")
        return Response(EMPTY_TWIML, media_type="text/xml")

    async def health(_: Request) -> Response:
        return Response(b'{"ok": true}', media_type="application/json")

    return Starlette(routes=[Route("/webhooks/sms", webhook, methods=["POST"]),
                             Route("/healthz", health)])


def run_layer(kind: str, port: int) -> None:
    import uvicorn

    from omnichannel_sdk._cli import uvicorn_settings

    uvicorn.run(http_layer_app(kind), host="127.0.0.1", port=port, **uvicorn_settings())


# --------------------------------------------------------------------------- the load process

def cpu_ticks(pids: list[int]) -> int:
    """User + system clock ticks so far of ``pids`` and every process they started (the
    workers of ``omnichannel serve --workers N``): fields 14 and 15 of ``/proc/<pid>/stat``."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (parent, ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    wanted, total = set(pids), 0
    grew = True
    while grew:
        more = {pid for pid, (parent, _) in stats.items() if parent in wanted} - wanted
        wanted |= more
        grew = bool(more)
    for pid in wanted:
        total += stats[pid][1] if pid in stats else 0
    return total


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured run (see the module docstring); returns rates, latencies and CPU."""
    import aiohttp

    urls: list[str] = spec["urls"]
    first, warm = spec["first"], spec["warm"]
    count = spec["requests"] if spec["mode"] == "throughput" else int(spec["rate"] * spec["duration"])
    bodies = [ingest.twilio_form(first + i) for i in range(warm + count)]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=spec["concurrency"])
    latencies: list[float] = []
    failures = 0
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(i: int, since: float | None = None) -> None:
            nonlocal failures
            body, sig = bodies[i]
            start = time.perf_counter() if since is None else since
            async with session.post(urls[i % len(urls)], data=body, headers={
                    "content-type": "application/x-www-form-urlencoded",
                    "x-twilio-signature": sig}) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - start)

        async def worker(share: range) -> None:
            for i in share:
                await post(i)

        width = spec["concurrency"]
        await asyncio.gather(*[worker(range(k, warm, width)) for k in range(width)])  # untimed
        latencies.clear()
        ticks, wall = cpu_ticks(spec["pids"]), time.perf_counter()
        client = time.process_time()
        if spec["mode"] == "throughput":
            await asyncio.gather(*[worker(range(warm + k, warm + count, width)) for k in range(width)])
        else:
            tasks: set[asyncio.Task[None]] = set()
            interval = 1 / spec["rate"]
            for i in range(count):
                due = wall + i * interval
                delay = due - time.perf_counter()
                if delay > 0.0005:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(post(warm + i, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - wall
        client = time.process_time() - client
        ticks = cpu_ticks(spec["pids"]) - ticks
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"rate": count / elapsed, "server_us": ticks / TICKS / count * 1e6,
            "client_us": client / count * 1e6, "failures": failures,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "max": latencies[-1] * 1000}


# ----------------------------------------------------------------------------------- servers

def pick_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def write_config(tmp: str, store: str) -> Path:
    """A TOML file for ``omnichannel serve``: ``bench/ingest.py``'s config, the SMS channel."""
    conf = ingest.config(tmp, store)
    sms = conf["channels"]["sms"]
    omni = conf["omnichannel"]
    delivery = omni.pop("delivery")
    lines = ["[omnichannel]", *(f"{k} = {json.dumps(v)}" for k, v in omni.items()),
             "[omnichannel.delivery]", *(f"{k} = {json.dumps(v)}" for k, v in delivery.items()),
             "[channels.sms]", *(f"{k} = {json.dumps(v)}" for k, v in sms.items())]
    path = Path(tmp) / f"serve-{uuid.uuid4().hex[:6]}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def servers(commands: list[list[str]], ports: list[int], log: Path) -> Iterator[list[int]]:
    """Start one server per command, wait for ``/healthz``, yield their pids, stop them."""
    import httpx

    running: list[subprocess.Popen[bytes]] = []
    with open(log, "ab") as out:
        try:
            for command, port in zip(commands, ports, strict=True):
                running.append(subprocess.Popen(command, stdout=out, stderr=out))
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if running[-1].poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"server {' '.join(command)} did not start: see {log}")
                    time.sleep(0.2)
                if "--workers" in command:  # /healthz answered from one worker; let the rest start
                    time.sleep(3)
            yield [p.pid for p in running]
        finally:
            for process in running:
                process.terminate()
            for process in running:
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:  # a server that hangs on shutdown
                    process.kill()
                    process.wait(10)


def ours_command(config: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "omnichannel_sdk._cli", "serve", "--config", str(config),
            "--port", str(port)]


def floor_command(store: str, port: int) -> list[str]:
    return [sys.executable, "-P", __file__, "--run-floor", store, str(port)]


def layer_command(kind: str, port: int) -> list[str]:
    return [sys.executable, "-P", __file__, "--run-layer", kind, str(port)]


class Driver:
    """Runs load processes; hands out MessageSid ranges that never repeat."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.next = 0

    def run(self, mode: str, ports: list[int], pids: list[int]) -> dict[str, Any]:
        a = self.args
        spec = {"mode": mode, "urls": [f"http://127.0.0.1:{p}/webhooks/sms" for p in ports],
                "pids": pids, "first": self.next, "warm": a.warm, "requests": a.requests,
                "rate": a.rate, "duration": a.duration, "concurrency": a.concurrency}
        self.next += a.warm + max(a.requests, int(a.rate * a.duration)) + 1
        done = subprocess.run([sys.executable, "-P", __file__, "--run-load", json.dumps(spec)],
                              capture_output=True, check=True, timeout=600)
        result: dict[str, Any] = json.loads(done.stdout)
        if result["failures"]:
            raise RuntimeError(f"{result['failures']} requests failed ({mode}, ports {ports})")
        return result


# ----------------------------------------------------------------------------------- report

def ratio_line(label: str, ours: list[dict[str, Any]], base: list[dict[str, Any]]) -> str:
    rates = sorted(o["rate"] / b["rate"] for o, b in zip(ours, base, strict=True))
    # (a tiny smoke run can end within one clock tick of server CPU: no ratio then)
    cpu = statistics.median(b["server_us"] / o["server_us"] if o["server_us"] else float("nan")
                            for o, b in zip(ours, base, strict=True))
    return (f"| {label} | {statistics.median(o['rate'] for o in ours):,.0f} | "
            f"{statistics.median(o['server_us'] for o in ours):,.0f} | "
            f"{statistics.median(o['client_us'] for o in ours):,.0f} | "
            f"{rates[0]:.2f} / {statistics.median(rates):.2f} / {rates[-1]:.2f} | {cpu:.2f} |")


def latency_line(label: str, runs: list[dict[str, Any]]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in ("rate", "p50", "p95", "p99", "max")}
    worst = max(r["p99"] for r in runs)
    return (f"| {label} | {med['rate']:,.0f} | {med['p50']:.1f} | {med['p95']:.1f} | "
            f"{med['p99']:.1f} (worst round {worst:.1f}) | {med['max']:.1f} | "
            f"{statistics.median(r['server_us'] for r in runs):,.0f} |")


def bench_row(driver: Driver, sides: dict[str, tuple[list[list[str]], list[int]]], log: Path,
              latency: bool) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Run every side of one row over the rounds, order flipping per round. Servers of all
    sides stay up for the whole row (an idle server costs a few µs of CPU a second)."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"throughput": [], "open": []}
                                                          for s in sides}
    names = list(sides)
    with servers([c for s in names for c in sides[s][0]], [p for s in names for p in sides[s][1]],
                 log) as pids:
        owned: dict[str, list[int]] = {}
        offset = 0
        for s in names:
            owned[s] = pids[offset:offset + len(sides[s][1])]
            offset += len(sides[s][1])
        for r in range(driver.args.rounds):
            for s in names if r % 2 == 0 else names[::-1]:
                results[s]["throughput"].append(driver.run("throughput", sides[s][1], owned[s]))
                if latency:
                    results[s]["open"].append(driver.run("open", sides[s][1], owned[s]))
    return results


def drop_schemas(schemas: list[str]) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(ingest.PG_DSN)
        try:
            for schema in schemas:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000, help="per throughput run")
    parser.add_argument("--concurrency", type=int, default=64, help="in flight, throughput mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop, requests/s")
    parser.add_argument("--duration", type=float, default=10.0, help="open loop, seconds")
    parser.add_argument("--warm", type=int, default=200, help="untimed requests before each run")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-latency", action="store_true", help="open loop on PostgreSQL too")
    parser.add_argument("--ports", default="18700-18799", metavar="FIRST-LAST",
                        help="loopback ports the servers may listen on (several benches at once)")
    parser.add_argument("--no-http-layer", action="store_true",
                        help="skip the row of the HTTP layer alone (stub pipeline on both sides)")
    parser.add_argument("--run-floor", nargs=2, metavar=("STORE", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--run-layer", nargs=2, metavar=("KIND", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--run-load", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global PORTS
    first, _, last = args.ports.partition("-")
    PORTS = range(int(first), int(last or first) + 1)
    if args.run_floor:
        run_floor(args.run_floor[0], int(args.run_floor[1]))
        return
    if args.run_layer:
        run_layer(args.run_layer[0], int(args.run_layer[1]))
        return
    if args.run_load:
        sys.stdout.write(json.dumps(asyncio.run(drive(json.loads(args.run_load)))))
        return

    def loadavg() -> str:
        return Path("/proc/loadavg").read_text().strip()

    import uvicorn

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}, uvicorn {uvicorn.__version__}; loadavg {loadavg()}")
    print(f"# throughput: {args.requests} requests, {args.concurrency} in flight; open loop: "
          f"{args.rate:.0f} req/s for {args.duration:.0f} s; {args.rounds} interleaved rounds")
    driver = Driver(args)
    taken: set[int] = set()
    header = ("| side | req/s (median) | server CPU µs/req | load generator CPU µs/req "
              "| rate vs base min / median / max | base CPU / ours |\n|---|---|---|---|---|---|")
    lat_header = ("| side | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | server CPU µs/req |"
                  "\n|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "servers.log"
        try:
            store = f"sqlite:///{tmp}/hub.db"
            ports = [pick_port(taken), pick_port(taken)]
            sides = {"floor": ([floor_command(f"sqlite:///{tmp}/floor.db", ports[0])], [ports[0]]),
                     "ours": ([ours_command(write_config(tmp, store), ports[1])], [ports[1]])}
            res = bench_row(driver, sides, log, latency=True)
            print(f"\n## SQLite, one process each (loadavg after: {loadavg()})\n{header}")
            print(ratio_line("Starlette floor", res["floor"]["throughput"], res["floor"]["throughput"]))
            print(ratio_line("omnichannel serve", res["ours"]["throughput"], res["floor"]["throughput"]))
            print(f"\nopen loop, {args.rate:.0f} req/s for {args.duration:.0f} s\n{lat_header}")
            for s in ("floor", "ours"):
                print(latency_line(s, res[s]["open"]))
            if not args.no_http_layer:
                ports = [pick_port(taken), pick_port(taken)]
                sides = {"starlette": ([layer_command("starlette", ports[0])], [ports[0]]),
                         "gateway": ([layer_command("gateway", ports[1])], [ports[1]])}
                res = bench_row(driver, sides, log, latency=False)
                print(f"\n## The HTTP layer alone: uvicorn + the app, no pipeline (loadavg after: "
                      f"{loadavg()})\n{header}")
                print(ratio_line("Starlette route (body, header, answer)",
                                 res["starlette"]["throughput"], res["starlette"]["throughput"]))
                print(ratio_line("our Gateway over a stub hub", res["gateway"]["throughput"],
                                 res["starlette"]["throughput"]))
            if args.no_postgres or not ingest.postgres_up():
                print("\n(PostgreSQL rows skipped)")
                return
            schemas = ["bench_" + uuid.uuid4().hex[:12] for _ in range(4)]
            try:
                pg = [f"{ingest.PG_DSN}?schema={s}" for s in schemas]
                ports = [pick_port(taken) for _ in range(5)]
                sides = {"floor": ([floor_command(pg[0], ports[0])], [ports[0]]),
                         "ours": ([ours_command(write_config(tmp, pg[1]), ports[1])], [ports[1]]),
                         "ours x2": ([ours_command(write_config(tmp, pg[2]), p) for p in ports[2:4]],
                                     ports[2:4]),
                         "workers 2": ([[*ours_command(write_config(tmp, pg[3]), ports[4]),
                                         "--workers", "2"]], [ports[4]])}
                res = bench_row(driver, sides, log, latency=args.pg_latency)
            finally:
                drop_schemas(schemas)
            print(f"\n## PostgreSQL (loadavg after: {loadavg()})\n{header}")
            print(ratio_line("Starlette floor (asyncpg, 8 connections)", res["floor"]["throughput"],
                             res["floor"]["throughput"]))
            print(ratio_line("omnichannel serve, 1 process", res["ours"]["throughput"],
                             res["floor"]["throughput"]))
            print(ratio_line("omnichannel serve, 2 processes (load split) vs 1",
                             res["ours x2"]["throughput"], res["ours"]["throughput"]))
            print(ratio_line("omnichannel serve --workers 2 (one port) vs 1 process",
                             res["workers 2"]["throughput"], res["ours"]["throughput"]))
            if args.pg_latency:
                print(f"\nopen loop, {args.rate:.0f} req/s for {args.duration:.0f} s\n{lat_header}")
                for s in sides:
                    print(latency_line(s, res[s]["open"]))
        except BaseException:
            sys.stderr.write(log.read_text() if log.exists() else "")
            raise


if __name__ == "__main__":
    main()
