"""Instructions per request over uvicorn (callgrind), ``omnichannel serve`` against the
Starlette floor: ``bench/serve.py``'s comparison in a measure a loaded machine does not disturb.

    python -P bench/serve_callgrind.py [--requests 1000] [--rounds 1] [--ports 18700-18799]

Each server of ``bench/serve.py`` — the floor (HMAC-SHA1, form, pydantic, one SQLite insert),
ours (``omnichannel serve`` with the real ``twilio-sms`` adapter) and the two HTTP-layer stubs
(our ``Gateway`` over a stub hub, a Starlette route) — runs under ``valgrind --tool=callgrind``
with the very command ``bench/serve.py`` starts. After a warm-up the counters are zeroed
(``callgrind_control -z``); ``bench/serve.py``'s load process, in its own process and not
counted, sends ``--requests`` signed webhooks, 64 in flight; then the counters are dumped
(``callgrind_control -d``; a few ``/healthz`` requests wake the idle server so that it sees
the command, a few thousand instructions against ≈ 1 M a request). Every thread of the server
is counted (the SQLite checkpoint thread too). The bodies are ``bench/serve.py``'s (500
customers); the default warm-up of 500 requests lets every customer write once, so the counted
requests are returning customers' messages, as nearly all of ``bench/serve.py``'s are (its
first run's first 500 requests open the conversations, every later one is a returning
customer's). Under valgrind the server is about 50 times slower than
the load, so the group commit's batches are as full as in a server-bound run.

The summary prints M instructions per request of each side and floor / ours for the full
path and for the HTTP layer alone (issue 19 goal 2 asks ≥ 0.9 times the floor's requests/s; with
the server the bottleneck, that is floor / ours ≥ 0.9 in instructions too). Needs ``valgrind``
and ``callgrind_control`` on ``PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import serve  # (the bench's own module: the same servers and load)

SIDES = ("floor", "ours", "layer starlette", "layer gateway")


def command(side: str, tmp: str, port: int) -> list[str]:
    if side == "floor":
        return serve.floor_command(f"sqlite:///{tmp}/floor.db", port)
    if side == "ours":
        return serve.ours_command(serve.write_config(tmp, f"sqlite:///{tmp}/hub.db"), port)
    return serve.layer_command(side.split()[1], port)


def healthz(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def count(side: str, port: int, args: argparse.Namespace, first: int) -> float:
    """Instructions per request of one side, one run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command(side, tmp, port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"})
        try:
            deadline = time.monotonic() + 600
            while not healthz(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{side} did not start under valgrind")
                time.sleep(0.5)

            def load(n: int, start: int) -> None:
                spec = {"mode": "throughput", "urls": [f"http://127.0.0.1:{port}/webhooks/sms"],
                        "pids": [server.pid], "first": start, "warm": 0, "requests": n,
                        "rate": 1.0, "duration": 1.0, "concurrency": 64}
                done = subprocess.run([sys.executable, "-P", serve.__file__, "--run-load",
                                       json.dumps(spec)], capture_output=True, check=True)
                if json.loads(done.stdout)["failures"]:
                    raise RuntimeError(f"{side}: requests failed")

            load(args.warm, first)
            subprocess.run(["callgrind_control", "-z", str(server.pid)], capture_output=True,
                           check=True, timeout=120)
            load(args.requests, first + args.warm)
            dump = subprocess.Popen(["callgrind_control", "-d", str(server.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while dump.poll() is None:  # the idle server sees the command when a request wakes it
                healthz(port)
                time.sleep(0.2)
            dumps = sorted(Path(tmp).glob("cg.out.*"))
            summary = [line for line in dumps[-1].read_text().splitlines()
                       if line.startswith("summary:")]
            return int(summary[0].split()[1]) / args.requests
        finally:
            server.terminate()
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000, help="counted, per side and round")
    parser.add_argument("--warm", type=int, default=500,
                        help="uncounted requests before them (500: every customer has written once)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ports", default="18700-18799", metavar="FIRST-LAST")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found on PATH")
    first, _, last = args.ports.partition("-")
    serve.PORTS = range(int(first), int(last or first) + 1)
    port = serve.pick_port(set())
    results: dict[str, list[float]] = {s: [] for s in SIDES}
    start = 0
    for r in range(args.rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            results[side].append(count(side, port, args, start))
            start += args.warm + args.requests
    print(f"# {args.requests} requests counted per side and round (after {args.warm}), "
          f"64 in flight, {args.rounds} round(s); M instructions per request of the server")
    print("| side | M instr / request (median) | floor / ours min / median / max |\n|---|---|---|")

    def line(label: str, ours: str, base: str) -> str:
        ratios = sorted(b / o for o, b in zip(results[ours], results[base], strict=True))
        return (f"| {label} | {statistics.median(results[ours]) / 1e6:.3f} | "
                f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} |")

    print(line("Starlette floor", "floor", "floor"))
    print(line("omnichannel serve", "ours", "floor"))
    print(line("HTTP layer: Starlette route", "layer starlette", "layer starlette"))
    print(line("HTTP layer: our Gateway, stub hub", "layer gateway", "layer starlette"))
    pipeline: dict[str, Any] = {s: statistics.median(results[s]) for s in SIDES}
    print(f"\npipeline alone (full path minus HTTP layer): floor "
          f"{(pipeline['floor'] - pipeline['layer starlette']) / 1e6:.3f} M, ours "
          f"{(pipeline['ours'] - pipeline['layer gateway']) / 1e6:.3f} M")


if __name__ == "__main__":
    main()
