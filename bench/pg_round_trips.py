"""Round trips to PostgreSQL per inbound message: a measure a loaded machine does not disturb.

    python -P bench/pg_round_trips.py [--messages 2000] [--customers 500]

The gateway of ``bench/ingest.py`` (signed Twilio SMS through the real ``twilio-sms`` adapter,
the ASGI app in process, 64 in flight, a fresh schema) with every query asyncpg sends counted:
extended-protocol statements (``Connection._execute``: a statement with parameters, one round
trip each once prepared), simple queries (``Connection.execute`` without parameters: ``BEGIN``,
``COMMIT``, the pool's reset on release) and prepares (a statement not in the connection's
cache costs one more round trip). Only the store's connections are counted (their
``application_name``), and only during the timed work (not the read-back after it).
``--floor`` counts the floor of ``bench/ingest.py`` instead: one autocommit insert per message
through asyncpg's pool, which sends its reset query after each (2.00 round trips a message).

Also printed: the distinct statement texts (each prepared once per pooled connection when
asyncpg's statement cache holds them all) and the PostgreSQL server's CPU per message (its
backends, from ``/proc``; this counts the server's work that callgrind of our process does not).
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--show", action="store_true", help="print every statement text")
    parser.add_argument("--floor", action="store_true",
                        help="count the floor of bench/ingest.py instead of the gateway")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import asyncpg
    import ingest  # the bench's own module: the same gateway

    if not ingest.postgres_up():
        sys.exit("PostgreSQL is not reachable on 127.0.0.1:5432")
    counts: collections.Counter[str] = collections.Counter()
    texts: collections.Counter[str] = collections.Counter()
    conn_cls: Any = asyncpg.Connection
    original_execute, original_ex, original_get = (
        conn_cls.execute, conn_cls._execute, conn_cls._get_statement)
    counting = [False]
    prefix = ["ours_"]

    def ours(conn: Any) -> bool:  # the store's own connections, not the bench's bookkeeping
        settings = getattr(conn._params, "server_settings", None) or {}
        return bool(counting[0]) and str(settings.get("application_name", "")).startswith(prefix[0])

    async def execute(self: Any, query: str, *a: Any, **kw: Any) -> Any:
        if not a and ours(self):
            word = query.split(None, 1)[0].upper()
            counts["simple " + ("reset" if "RESET ALL" in query else word)] += 1
        return await original_execute(self, query, *a, **kw)

    async def _execute(self: Any, query: str, a: Any, *rest: Any, **kw: Any) -> Any:
        if ours(self):
            counts["statement"] += 1
            texts[query] += 1
        return await original_ex(self, query, a, *rest, **kw)

    async def _get_statement(self: Any, query: str, *rest: Any, **kw: Any) -> Any:
        # asyncpg's cache key (0.29-0.32): the text, the record class, ignore_custom_codec
        key = (query, kw.get("record_class") or self._protocol.get_record_class(),
               kw.get("ignore_custom_codec", False))
        if ours(self) and self._stmt_cache.get(key) is None:
            counts["prepare"] += 1
        return await original_get(self, query, *rest, **kw)

    conn_cls.execute, conn_cls._execute, conn_cls._get_statement = execute, _execute, _get_statement
    n = args.messages
    bodies = [ingest.twilio_form(i, customers=args.customers) for i in range(n)]
    schema = f"bench_rt_{uuid.uuid4().hex[:8]}"
    store = f"{ingest.PG_DSN}?schema={schema}&application_name=ours_{schema}"
    # ``ingest.backend_cpu`` is read before and after the timed work: counting runs between
    # the two readings (not the hub's start, not the read-back after)
    readings = [0]
    original_cpu = ingest.backend_cpu

    async def backend_cpu(app: str) -> dict[int, float]:
        readings[0] += 1
        found: dict[int, float] = await original_cpu(app)
        counting[0] = readings[0] == 1
        return found

    ingest.backend_cpu = backend_cpu
    try:
        if args.floor:
            prefix[0] = "floor_"
            sample = ingest.floor_postgres(bodies, schema)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                sample = ingest.gateway(bodies, tmp, store)
    finally:
        counting[0] = False
    trips = sum(v for k, v in counts.items())
    print(f"# {'the floor' if args.floor else 'the gateway'}: {n} messages from "
          f"{args.customers} customers, 64 in flight")
    print("| what | count | per message |")
    print("|---|---|---|")
    for key, value in sorted(counts.items()):
        print(f"| {key} | {value:,} | {value / n:.3f} |")
    print(f"| **round trips** | {trips:,} | **{trips / n:.3f}** |")
    print(f"distinct statement texts: {len(texts)}; server CPU per message: "
          f"{sample.server_us or 0:,.0f} µs; bench CPU per message {sample.cpu_us:,.0f} µs "
          "(wall clock: noisy)")
    if args.show:
        for text, value in texts.most_common():
            print(f"{value:6} {' '.join(text.split())[:300]}")


if __name__ == "__main__":
    main()
