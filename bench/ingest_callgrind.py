"""Instructions per inbound message (callgrind), the gateway against the floor: a measure a
loaded machine does not disturb.

    python -P bench/ingest_callgrind.py [--messages 300] [--rounds 2] [--feed] [--postgres]

Each side (the floor of ``bench/ingest.py``: HMAC-SHA1, form parse, pydantic, one SQLite insert
per message; the gateway: the real ``twilio-sms`` adapter through the ASGI app in process, 64
in flight) runs under ``valgrind --tool=callgrind`` twice, with ``--messages`` and with twice
as many; the difference divided by ``--messages`` is the cost of one message, start-up and
imports cancelled out. Every thread of the process is counted (a checkpoint thread too); the
gateway's stored messages are counted in SQL afterwards instead of read back (until 2026-12-02
the read-back, ≈ 0.13 M instructions a message, was counted as the gateway's), and the
bench's own making and signing of the requests is counted alone and subtracted from both
(until 2026-12-02 it was counted in both, which pulled the ratio towards 1). The
sides alternate over ``--rounds`` rounds; the summary prints min / median / max of the ratio
floor instructions / ours (issue 19 goal 1: ≥ 0.7).

``--durable`` adds ``bench/ingest.py``'s durable floor (``durable_sqlite``): the floor's work plus
what the gateway guarantees, written by hand — the raw request kept, the vendor id claimed
(no duplicate), the contact and the thread's open conversation found or made, the reply
window moved, one commit per 64 messages — and prints durable floor / gateway and
floor / durable floor: how far a plain hand-written pipeline with the same guarantees gets.

``--frozen`` adds the gateway again with ``freeze_after_startup()`` called once the hub is open
(what ``omnichannel serve`` does, and an application embedding the hub may): the collector's
share with the start-up heap frozen and the youngest generation collected less often.

``--postgres`` counts the PostgreSQL row of ``bench/ingest.py`` instead (its floor: one
autocommit asyncpg insert per message, 64 in flight; the gateway on a fresh schema). Only our
process is counted, not the PostgreSQL server's work: ``bench/pg_round_trips.py`` counts the
round trips per message, and ``bench/ingest.py --only-postgres`` the server's CPU.

Needs ``valgrind`` on ``PATH``. ``--run SIDE --messages N`` is what the driver runs under
valgrind (one side, once, no output).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run_side(side: str, n: int) -> None:
    """Run one side once over ``n`` messages (the work valgrind counts)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest  # the bench's own module: the same floor and gateway

    # a customer per four messages, as in bench/ingest.py (2,000 messages from 500 customers):
    # the extra messages of the longer run are a quarter first messages, like the whole run
    bodies = [ingest.twilio_form(i, customers=max(1, n // 4)) for i in range(n)]
    if side == "bodies":  # making and signing the requests, counted in both sides: subtracted
        return
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"bench_cg_{uuid.uuid4().hex[:8]}"
        if side == "floor":
            ingest.floor_sqlite(bodies, tmp)
        elif side == "durable":
            ingest.durable_sqlite(bodies, tmp)
        elif side == "pgfloor":
            ingest.floor_postgres(bodies, schema)
        elif side == "pggateway":
            ingest.gateway(bodies, tmp, f"{ingest.PG_DSN}?schema={schema}", read_back=False)
        else:
            # the stored rows are counted in SQL, not read back through the store: parsing
            # every message again is no part of ingesting it (and the floor does not)
            ingest.gateway(bodies, tmp, feed=side == "feed", read_back=False,
                           freeze=side == "frozen")
    asyncio.set_event_loop_policy(None)


def callgrind(args: list[str]) -> int:
    """Instructions valgrind counts for one run of ``python -P *args`` (every thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
             sys.executable, "-P", *args],
            capture_output=True, text=True, check=True)
    match = _COLLECTED.search(out.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(match.group(1))


def instructions(side: str, n: int) -> int:
    """Instructions valgrind counted for one run of ``side`` over ``n`` messages."""
    return callgrind([__file__, "--run", side, "--messages", str(n)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--feed", action="store_true",
                        help="also the gateway with the durable feed's log on (issue 15: < 10%%)")
    parser.add_argument("--frozen", action="store_true",
                        help="also the gateway with freeze_after_startup() once the hub is open")
    parser.add_argument("--durable", action="store_true",
                        help="also the floor with the gateway's guarantees, by hand")
    parser.add_argument("--postgres", action="store_true",
                        help="the PostgreSQL floor and gateway instead of SQLite's")
    parser.add_argument("--run", choices=["bodies", "floor", "durable", "gateway", "frozen", "feed",
                                          "pgfloor", "pggateway"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_side(args.run, args.messages)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    load = os.getloadavg()
    print(f"# {os.cpu_count()} cores, Python {sys.version.split()[0]}, load average "
          f"{load[0]:.1f} (instruction counts do not depend on the load)")
    n = args.messages
    sides = (["pgfloor", "pggateway"] if args.postgres
             else ["floor", *(["durable"] if args.durable else []), "gateway",
                   *(["frozen"] if args.frozen else []), *(["feed"] if args.feed else [])])
    per: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(args.rounds):
        # what building and signing the test requests costs is in both sides' counts: measured
        # alone and taken off, so the ratio compares the work of receiving them
        bodies = (instructions("bodies", 2 * n) - instructions("bodies", n)) / n
        print(f"round {r + 1}: requests {bodies / 1e6:.3f} M instructions per message (made by "
              "the bench, subtracted below)", flush=True)
        for side in sides if r % 2 == 0 else sides[::-1]:
            cost = (instructions(side, 2 * n) - instructions(side, n)) / n - bodies
            per[side].append(cost)
            print(f"round {r + 1}: {side:9} {cost / 1e6:.3f} M instructions per message", flush=True)
    floor, ours = ("pgfloor", "pggateway") if args.postgres else ("floor", "gateway")
    ratios = sorted(f / g for f, g in zip(per[floor], per[ours], strict=True))
    print("| side | M instructions / message (median) |")
    print("|---|---|")
    for side, costs in per.items():
        print(f"| {side} | {statistics.median(costs) / 1e6:.3f} |")
    print(f"floor / gateway: {ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f} "
          f"(min / median / max; goal ≥ {'0.80, the server not counted' if args.postgres else '0.70'})")
    if args.durable and not args.postgres:
        by_hand = sorted(d / g for d, g in zip(per["durable"], per["gateway"], strict=True))
        bound = sorted(f / d for f, d in zip(per["floor"], per["durable"], strict=True))
        print(f"durable floor / gateway: {by_hand[0]:.2f} / {statistics.median(by_hand):.2f} / "
              f"{by_hand[-1]:.2f}; floor / durable floor: {bound[0]:.2f} / "
              f"{statistics.median(bound):.2f} / {bound[-1]:.2f} (goal 1's ratio for the "
              "guarantees written by hand, plainly)")
    if args.frozen and not args.postgres:
        frozen = sorted(f / g for f, g in zip(per["floor"], per["frozen"], strict=True))
        print(f"floor / frozen gateway: {frozen[0]:.2f} / {statistics.median(frozen):.2f} / "
              f"{frozen[-1]:.2f} (freeze_after_startup(), as an embedding application may call it)")
    if args.feed and not args.postgres:
        extra = sorted(f / g - 1 for f, g in zip(per["feed"], per["gateway"], strict=True))
        print(f"feed on / off: +{extra[0]:.1%} / +{statistics.median(extra):.1%} / +{extra[-1]:.1%} "
              "(min / median / max; goal < 10%)")


if __name__ == "__main__":
    main()
