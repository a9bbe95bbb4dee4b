"""The default vendor transport (httpx's own pool) against the aiohttp opt-in, interleaved.

    python -P bench/transport.py [--sends 2000] [--rounds 5] [--in-flight 100] [--latency 0.02]
                                 [--per-host 100] [--pool-size 8] [--sweep 32:32,100:4] [--hub]
                                 [--port 0] [--callgrind]

A loopback vendor stub (aiohttp, a separate process) answers every POST after ``--latency``
seconds. Each round runs every side once, in an order that alternates between rounds, each side
on a fresh event loop and a fresh client from :func:`omnichannel_sdk._http.make_http_client`
(what the hub uses): ``--sends`` JSON POSTs through the httpx API with ``--in-flight`` requests
at once. Printed: sends/s and CPU time per send (``time.process_time``, this process only: the
stub's CPU is not counted) for each side (medians), and the per-round ratios of the default to
the opt-in (min / median / max). ``--sweep`` adds default-transport sides with other
``http_max_per_host:http_pool_size`` pairs (``32:32`` is one pool of 32, the layout before
the pools were split); ``--hub`` adds ``hub.send`` → outbox → vendor with both
transports (json-mapping channel, ``delivery.concurrency = --in-flight``).

``--callgrind`` counts instructions per request instead (valgrind's callgrind, each side run
with ``--sends`` and with twice as many, the difference divided by ``--sends``; every thread
counted): a measure a loaded machine does not disturb.

The machine the numbers in docs/performance.md come from is shared and loaded: compare ratios
from one run, never absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from omnichannel_sdk import Hub
from omnichannel_sdk._http import DEFAULT_PER_HOST, DEFAULT_POOL_SIZE, make_http_client


class Sample:
    """Wall and CPU time of one side of one round."""

    def __init__(self, n: int, wall: float, cpu: float) -> None:
        self.rate = n / wall
        self.cpu_us = cpu / n * 1e6


def _stub(port: int, latency: float, ready: Any) -> None:
    from aiohttp import web

    counter = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal counter
        await request.read()
        counter += 1
        await asyncio.sleep(latency)
        return web.json_response({"id": f"v{counter}"})

    app = web.Application()
    app.router.add_post("/messages", handle)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(n: int, run: Callable[[], Awaitable[None]]) -> Sample:
    """Run ``run`` on a fresh event loop; only the awaited work is timed."""
    box: list[Sample] = []

    async def main() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        await run()
        box.append(Sample(n, time.perf_counter() - wall, time.process_time() - cpu))

    asyncio.run(main())
    return box[0]


async def posts(transport: str, layout: tuple[int, int], url: str, n: int, in_flight: int) -> None:
    """``n`` POSTs through the hub's client on ``transport``, ``in_flight`` at once; ``layout``
    is ``(per_host, pool_size)`` of the default transport."""
    client = make_http_client(transport, per_host=layout[0], pool_size=layout[1])
    async with client:
        async def worker(ids: range) -> None:
            for i in ids:
                response = await client.post(url, json={"id": i, "to": "+14155550100", "text": "hi"})
                if response.status_code != 200:
                    raise RuntimeError(f"stub answered {response.status_code}")

        await asyncio.gather(*[worker(range(i, n, in_flight)) for i in range(in_flight)])


async def hub_sends(transport: str, url: str, n: int, in_flight: int) -> Sample:
    """``hub.send`` → outbox → vendor, until every ``message.sent`` event."""
    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub.from_config({
            "omnichannel": {"store": f"sqlite:///{tmp}/hub.db", "blobs": "memory://",
                            "public_url": "https://bench.test", "http_transport": transport,
                            "delivery": {"concurrency": in_flight}},
            "channels": {"bench": {"adapter": "json-mapping", "secret": "bench-secret",
                                   "send_url": url, "rate_limit": 100000}}})
        async with hub:
            conversations = [await hub.start_conversation("bench", f"+1415556{i:04d}")
                             for i in range(50)]
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

            async def agent(k: int) -> None:  # 50 agents replying at once
                for i in range(k, n, 50):
                    await hub.send(conversations[k].id, text=f"Reply {i}")

            await asyncio.gather(*[agent(k) for k in range(50)])
            await asyncio.wait_for(done.wait(), 600)
            sample = Sample(n, time.perf_counter() - wall, time.process_time() - cpu)
            watcher.cancel()
    return sample


def row(label: str, ours: list[Sample], base: list[Sample]) -> str:
    pairs = list(zip(ours, base, strict=True))
    ratios = sorted(o.rate / b.rate for o, b in pairs)
    cpu_ratio = statistics.median(o.cpu_us / b.cpu_us for o, b in pairs)
    return (f"| {label} | {statistics.median(s.rate for s in ours):,.0f} "
            f"| {statistics.median(s.cpu_us for s in ours):,.0f} "
            f"| {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} "
            f"| {cpu_ratio:.2f} |")


def instructions(side: str, layout: tuple[int, int], url: str, n: int, in_flight: int) -> int:
    """Instructions valgrind counted for one run of ``n`` POSTs on ``side``."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ingest_callgrind import callgrind  # the inbound counter's runner

    return callgrind([__file__, "--run", side, "--sends", str(n), "--url", url,
                      "--in-flight", str(in_flight), "--per-host", str(layout[0]),
                      "--pool-size", str(layout[1])])


def count(sides: list[tuple[str, tuple[int, int]]], url: str, n: int, in_flight: int,
          rounds: int) -> None:
    """Print instructions per request of every side, rounds interleaved."""
    per: dict[str, list[float]] = {}
    for r in range(rounds):
        for transport, layout in sides if r % 2 == 0 else sides[::-1]:
            name = transport if transport == "aiohttp" else f"httpx/{layout[0]}/{layout[1]}"
            cost = (instructions(transport, layout, url, 2 * n, in_flight)
                    - instructions(transport, layout, url, n, in_flight)) / n
            per.setdefault(name, []).append(cost)
            print(f"round {r + 1}: {name:14} {cost / 1e6:.3f} M instructions per request", flush=True)
    base = per["aiohttp"]
    print("| side | M instructions / request (median) | vs aiohttp (median) |")
    print("|---|---|---|")
    for name, costs in per.items():
        ratio = statistics.median(c / b for c, b in zip(costs, base, strict=True))
        print(f"| {name} | {statistics.median(costs) / 1e6:.3f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--per-host", type=int, default=DEFAULT_PER_HOST)
    parser.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE)
    parser.add_argument("--sweep", default="", help="more per_host:pool_size pairs, e.g. 32:32,100:16")
    parser.add_argument("--hub", action="store_true", help="add hub.send rows")
    parser.add_argument("--port", type=int, default=0, help="the stub's port (default: a free one)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions per request")
    parser.add_argument("--run", choices=["aiohttp", "httpx"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # one side, under valgrind
        asyncio.run(posts(args.run, (args.per_host, args.pool_size), args.url, args.sends,
                          args.in_flight))
        return

    port = args.port or free_port()
    ready = multiprocessing.Event()
    stub = multiprocessing.Process(target=_stub, args=(port, args.latency, ready), daemon=True)
    stub.start()
    if not ready.wait(20):
        raise SystemExit("the vendor stub did not start")
    url = f"http://127.0.0.1:{port}/messages"
    layouts = [(args.per_host, args.pool_size)] + [
        (int(a), int(b)) for a, b in (pair.split(":") for pair in args.sweep.split(",") if pair.strip())]
    if args.callgrind:
        print(f"# {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
              f"{os.getloadavg()[0]:.1f} (instruction counts do not depend on the load)")
        try:
            count([("aiohttp", (1, 1))] + [("httpx", layout) for layout in dict.fromkeys(layouts)],
                  url, args.sends, args.in_flight, args.rounds)
        finally:
            stub.terminate()
        return

    def side(transport: str, layout: tuple[int, int]) -> Callable[[], Sample]:
        return lambda: timed(args.sends, lambda: posts(transport, layout, url, args.sends,
                                                       args.in_flight))

    sides: dict[str, Callable[[], Sample]] = {"aiohttp": side("aiohttp", (1, 1))}
    for layout in dict.fromkeys(layouts):
        sides[f"httpx/{layout[0]}/{layout[1]}"] = side("httpx", layout)
    if args.hub:
        sides["hub aiohttp"] = lambda: asyncio.run(hub_sends("aiohttp", url, args.sends, args.in_flight))
        sides["hub httpx"] = lambda: asyncio.run(hub_sends("httpx", url, args.sends, args.in_flight))
    out: dict[str, list[Sample]] = {name: [] for name in sides}
    load_before = os.getloadavg()
    try:
        for side in sides:  # warm-up: imports and first connections are paid outside the rounds
            sides[side]()
        names = list(sides)
        for r in range(args.rounds):
            for side in names if r % 2 == 0 else list(reversed(names)):
                out[side].append(sides[side]())
    finally:
        stub.terminate()
        stub.join(5)
    load_after = os.getloadavg()

    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after (shared machine: compare ratios, not rates)")
    print(f"## {args.sends} POSTs per side and round, {args.in_flight} in flight, stub answering after "
          f"{args.latency * 1000:.0f} ms, {args.rounds} interleaved rounds")
    print("| side | sends/s (median) | CPU µs/send (median) | rate vs aiohttp min / median / max "
          "| CPU vs aiohttp (median) |")
    print("|---|---|---|---|---|")
    for name in out:
        if name.startswith("hub"):
            continue
        label = "aiohttp opt-in"
        if name != "aiohttp":
            _, per_host, pool = name.split("/")
            label = f"default (httpx), {per_host} per host in pools of {pool}"
        print(row(label, out[name], out["aiohttp"]))
    if args.hub:
        print(row("hub.send → outbox → vendor, aiohttp", out["hub aiohttp"], out["hub aiohttp"]))
        print(row("hub.send → outbox → vendor, default", out["hub httpx"], out["hub aiohttp"]))


if __name__ == "__main__":
    main()
