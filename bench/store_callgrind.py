"""Instructions per inbound message spent in the store alone (callgrind): what
``store.ingest`` costs a signed Twilio SMS on SQLite, without the adapter, the hub or ASGI.

    python -P bench/store_callgrind.py [--messages 300] [--rounds 1] [--profile]

The requests of ``bench/ingest.py`` (a customer per four messages) go once through the real
gateway, whose ``store.ingest`` calls are recorded (items and raw payloads, pickled): that
part is not measured. Then, under ``valgrind --tool=callgrind``, a fresh SQLite store takes
the recorded calls again, 64 in flight as in the gateway bench (so the group commit's batches
are alike), with ``--messages`` and with twice as many; loading the recorded calls is counted
alone and subtracted. The difference divided by ``--messages`` is the store's cost of one
message (it is part of ``bench/ingest_callgrind.py``'s gateway count).

``--profile`` runs the replay of 3,000 messages under cProfile instead (no valgrind) and
prints the store's functions by own time: where the instructions go, with a profiler's
distortion.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pickle
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CONCURRENCY = 64


def record(n: int, path: str) -> None:
    """Run the gateway over ``n`` requests and pickle its ``store.ingest`` calls to ``path``."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest

    from omnichannel_sdk._store._sqlite import SQLiteStore

    calls: list[tuple[Any, Any]] = []
    original = SQLiteStore.ingest

    async def recording(self: SQLiteStore, items: Any, raw: Any) -> Any:
        calls.append((items, raw))
        return await original(self, items, raw)

    SQLiteStore.ingest = recording  # type: ignore[method-assign]
    bodies = [ingest.twilio_form(i, customers=max(1, n // 4)) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        ingest.gateway(bodies, tmp, read_back=False)
    SQLiteStore.ingest = original  # type: ignore[method-assign]
    Path(path).write_bytes(pickle.dumps(calls))


def replay(path: str, store_it: bool) -> None:
    """Load the recorded calls; with ``store_it``, run them against a fresh SQLite store."""
    from omnichannel_sdk._store._sqlite import SQLiteStore

    calls = pickle.loads(Path(path).read_bytes())
    if not store_it:
        return

    async def main(tmp: str) -> None:
        store = SQLiteStore(f"{tmp}/store.db")
        await store.open()

        async def worker(share: list[tuple[Any, Any]]) -> None:
            for items, raw in share:
                await store.ingest(items, raw)

        await asyncio.gather(*[worker(calls[i::CONCURRENCY]) for i in range(CONCURRENCY)])
        stored = store.conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        await store.close()
        if stored != len(calls):
            raise RuntimeError(f"stored {stored} of {len(calls)}")

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))


def profile(path: str) -> None:
    """The replay under cProfile: the store's functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    replay(path, True)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(45)
    stats.sort_stats("cumulative").print_stats("_store", 40)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--record", help=argparse.SUPPRESS)
    parser.add_argument("--replay", help=argparse.SUPPRESS)
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record:
        record(args.messages, args.record)
        return
    if args.replay:
        replay(args.replay, not args.load_only)
        return
    with tempfile.TemporaryDirectory() as tmp:
        n = 3000 if args.profile else args.messages
        files = {}
        for count in (n,) if args.profile else (n, 2 * n):
            files[count] = f"{tmp}/calls-{count}.pickle"
            subprocess.run([sys.executable, "-P", __file__, "--record", files[count],
                            "--messages", str(count)], check=True)
        if args.profile:
            profile(files[n])
            return
        if shutil.which("valgrind") is None:
            sys.exit("valgrind is not installed (apt-get install valgrind)")
        sys.path.insert(0, str(Path(__file__).parent))
        from ingest_callgrind import callgrind  # the inbound counter's runner
        for r in range(args.rounds):
            counts = {}
            for load_only in (True, False):
                flag = ["--load-only"] if load_only else []
                counts[load_only] = [callgrind([__file__, "--replay", files[c], *flag])
                                     for c in (n, 2 * n)]
            load = (counts[True][1] - counts[True][0]) / n
            store = (counts[False][1] - counts[False][0]) / n - load
            print(f"round {r + 1}: store {store / 1e6:.3f} M instructions per message "
                  f"(loading the recorded calls, {load / 1e6:.3f} M, subtracted)", flush=True)


if __name__ == "__main__":
    main()
