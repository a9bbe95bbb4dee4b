"""Instructions per outbound send (callgrind): ``hub.send`` through the durable outbox and the
``twilio-sms`` adapter against twilio's own ``AsyncTwilioHttpClient`` — a measure a loaded
machine does not disturb.

    python -P bench/outbound_callgrind.py [--sends 300] [--rounds 2] [--latency 0.02] [--port 0]

The vendor stub of ``bench/ingest.py`` runs in a process of its own (not counted). Each side
runs under ``valgrind --tool=callgrind`` with ``--sends`` and with twice as many; the
difference divided by ``--sends`` is the cost of one send, start-up and imports cancelled
out. Every thread of the process is counted. The sides alternate over ``--rounds`` rounds;
the summary prints min / median / max of theirs / ours (issue 19 goal 4: ≥ 1.0). The hub
uses the aiohttp opt-in (``--transport httpx`` for the default), 100 sends in flight, as the
peer. ``--durable`` adds a third side: twilio's client with the least a durable outbox must
write on SQLite, by hand (``ingest.durable_outbound``: two committed transactions a send), the
floor for a send that survives a crash. ``--frozen`` adds the hub again with
``freeze_after_startup()`` called once it is open (what ``omnichannel serve`` does, and an
application embedding the hub may). ``--run SIDE --sends N --url URL`` is what the driver
runs under valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path


def run_side(side: str, n: int, base: str, transport: str) -> None:
    """Run one side once over ``n`` sends (the work valgrind counts)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest  # the bench's own module: the same stub, peer and hub side

    warnings.filterwarnings("ignore", message=".*'auth' parameter is deprecated",
                            category=DeprecationWarning)
    url = f"{base}/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"
    if side == "twilio":
        asyncio.run(ingest.twilio_outbound(n, url))
    elif side == "durable":
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(ingest.durable_outbound(n, url, tmp))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(ingest.hub_outbound(n, base, transport, tmp, freeze=side == "frozen"))


def instructions(side: str, n: int, base: str, transport: str) -> int:
    """Instructions valgrind counted for one run of ``side`` over ``n`` sends."""
    sys.path.insert(0, str(Path(__file__).parent))
    from ingest_callgrind import callgrind  # the inbound counter's runner

    return callgrind([__file__, "--run", side, "--sends", str(n), "--url", base,
                      "--transport", transport])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--transport", choices=["aiohttp", "httpx"], default="aiohttp")
    parser.add_argument("--port", type=int, default=0, help="the stub's port (default: a free one)")
    parser.add_argument("--durable", action="store_true",
                        help="also count a durable send by hand (twilio's client and the least "
                             "an outbox writes on SQLite: ingest.durable_outbound)")
    parser.add_argument("--frozen", action="store_true",
                        help="also the hub with freeze_after_startup() once it is open")
    parser.add_argument("--run", choices=["twilio", "durable", "hub", "frozen"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_side(args.run, args.sends, args.url, args.transport)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest

    load = os.getloadavg()
    print(f"# {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
          f"{load[0]:.1f} (instruction counts do not depend on the load)")
    port = args.port or ingest.free_port()
    ready = multiprocessing.Event()
    stub = multiprocessing.Process(target=ingest._stub, args=(port, args.latency, ready),
                                   daemon=True)
    stub.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{port}"
    n = args.sends
    sides = ["twilio", *(["durable"] if args.durable else []), "hub",
             *(["frozen"] if args.frozen else [])]
    per: dict[str, list[float]] = {side: [] for side in sides}
    try:
        for r in range(args.rounds):
            for side in sides if r % 2 == 0 else sides[::-1]:
                cost = (instructions(side, 2 * n, base, args.transport)
                        - instructions(side, n, base, args.transport)) / n
                per[side].append(cost)
                print(f"round {r + 1}: {side:7} {cost / 1e6:.3f} M instructions per send",
                      flush=True)
    finally:
        stub.terminate()
    ratios = sorted(t / h for t, h in zip(per["twilio"], per["hub"], strict=True))
    print("| side | M instructions / send (median) |")
    print("|---|---|")
    print(f"| twilio AsyncTwilioHttpClient | {statistics.median(per['twilio']) / 1e6:.3f} |")
    if args.durable:
        print("| durable by hand: twilio's client + message and job committed before, "
              f"status and job's removal after | {statistics.median(per['durable']) / 1e6:.3f} |")
    print(f"| hub.send → outbox → twilio-sms ({args.transport}) "
          f"| {statistics.median(per['hub']) / 1e6:.3f} |")
    print(f"twilio / hub: {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} "
          "(min / median / max; goal ≥ 1.0)")
    if args.frozen:
        frozen = sorted(t / h for t, h in zip(per["twilio"], per["frozen"], strict=True))
        print(f"| the same hub, freeze_after_startup() once open | "
              f"{statistics.median(per['frozen']) / 1e6:.3f} |")
        print(f"twilio / frozen hub: {frozen[0]:.2f} / {statistics.median(frozen):.2f} / "
              f"{frozen[-1]:.2f}")
    if args.durable:
        durable = sorted(d / h for d, h in zip(per["durable"], per["hub"], strict=True))
        print(f"durable by hand / hub: {durable[0]:.2f} / {statistics.median(durable):.2f} / "
              f"{durable[-1]:.2f}")


if __name__ == "__main__":
    main()
