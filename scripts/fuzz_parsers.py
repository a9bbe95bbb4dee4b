"""The long fuzz run of every non-email parse path (issue 11): >= 100,000 hostile inputs per
path, built from the plugins' recorded vendor samples by the seeded mutator the CI suite uses
(``tests/fuzz_targets.py``). Prints, per path, how inputs ended: message, receipt, empty, typed
dead letter, and untyped exceptions (bugs: the hub dead-letters them too, but they are counted).

    .venv/bin/python scripts/fuzz_parsers.py [--per-path 100000] [--seed 11] [--only NAME]

Exit status 1 when any untyped exception was found (its seed and input index are printed, so
``Target.request(random.Random(seed))`` replays it). Record the table in docs/security.md.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_targets import outcome, targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-path", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    failed = 0
    print("| path | inputs | message | receipt | empty | dead letter | untyped | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for target in targets():
        if args.only and target.name != args.only:
            continue
        adapter = target.make()
        counts: collections.Counter[str] = collections.Counter()
        examples: dict[str, int] = {}
        started = time.perf_counter()
        for index in range(args.per_path):
            seed = args.seed * 1_000_003 + index  # each input reproducible on its own
            result = outcome(adapter, target.request(random.Random(seed)))
            kind = "untyped" if result.startswith("untyped") else result
            counts[kind] += 1
            if kind == "untyped" and result not in examples:
                examples[result] = seed
        seconds = time.perf_counter() - started
        print(f"| {target.name} | {args.per_path:,} | {counts['message']:,} | {counts['receipt']:,} | "
              f"{counts['empty']:,} | {counts['dead-letter']:,} | {counts['untyped']:,} | {seconds:.0f} |",
              flush=True)
        for result, seed in examples.items():
            print(f"    {result} (seed {seed})", file=sys.stderr)
        failed += counts["untyped"]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
