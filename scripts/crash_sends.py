"""kill -9 of a real ``omnichannel serve`` mid-send, several rounds, and a table of what it cost.

Each round queues ``--sends`` sends per adapter (Twilio- and Vonage-shaped loopback vendors)
through the service API, SIGKILLs the server once ``--kill-after`` of them reached the vendor,
restarts it on the same store and waits until every send is ``sent``. "lost" is a send that
never reached the vendor or did not end ``sent`` (must be 0); "duplicates" reached the vendor
more than once; "reconciled" were found at the vendor (Twilio's Messages list) instead of sent
again; "sent again" went again after a call of unknown outcome (possible duplicates, counted by
``omnichannel_uncertain_sends_total``).

    .venv/bin/python scripts/crash_sends.py --rounds 5 --sends 500 --store sqlite --store postgres
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from crash_harness import CrashResult, crash_run

PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _store_url(kind: str, workdir: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'crash.db'}", None
    schema = "crash_" + uuid.uuid4().hex[:10]
    return f"{PG_DSN}?schema={schema}", schema


def _drop(schema: str) -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sends", type=int, default=500, help="sends per adapter and round")
    parser.add_argument("--kill-after", type=float, default=0.4,
                        help="share of the sends at the vendor when the kill comes")
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--ports", default="18100-18199", help="TCP port range to use")
    args = parser.parse_args()
    first, last = (int(p) for p in args.ports.split("-"))
    rows: list[CrashResult] = []
    for kind in args.store or ["sqlite"]:
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="crash-sends-") as tmp:
                url, schema = _store_url(kind, Path(tmp))
                try:
                    results = crash_run(Path(tmp) / "run", url, adapters=["twilio-sms", "vonage-sms"],
                                        sends=args.sends, kill_after=args.kill_after,
                                        ports=(first, last), deadline=120.0)
                finally:
                    if schema:
                        _drop(schema)
            for result in results:
                print(f"round {n + 1} {kind} {result.adapter}: lost {result.lost}, "
                      f"duplicates {result.duplicates}", file=sys.stderr)
            rows.extend(results)
    print("| adapter | store | sends | at the vendor at kill | lost | duplicates | reconciled "
          "| sent again | recovery s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.adapter} | {r.store} | {r.sends} | {r.at_kill} | {r.lost} | {r.duplicates} "
              f"| {r.reconciled:.0f} | {r.possible:.0f} | {r.recovery_seconds} |")
    if any(r.lost for r in rows):
        raise SystemExit("sends were lost")


if __name__ == "__main__":
    main()
