"""Python bytecodes per unit of work, by module and by function: where the interpreter's share
of a message or a send goes, counted exactly (the same count on a loaded machine).

    python -P bench/opcodes.py inbound  [--units 300] [--top 40]   # twilio-sms in process
    python -P bench/opcodes.py outbound [--units 300] [--top 40]   # hub.send → outbox → vendor
        [--send-side hub|frozen|durable|twilio]                    # (or another side of the send bench)
    python -P bench/opcodes.py bodies   [--units 300]              # the bench's own requests

Each side of ``bench/ingest_callgrind.py`` / ``bench/outbound_callgrind.py`` runs twice in a
subprocess under a ``sys.settrace`` opcode counter, with ``--units`` and with twice as many;
the difference divided by ``--units`` is one unit's, start-up and imports cancelled out.
``inbound`` subtracts the bench's own making and signing of the requests (``bodies``). The
tracer slows the run about fiftyfold: counts are exact, times meaningless. Callgrind
(``bench/ingest_callgrind.py``) stays the measure of cost; this says which Python code the
instructions run for (a bytecode of ours costs 60 to 100 instructions with what it calls).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
Key = tuple[str, int, str]


def _count(argv: list[str], out: str) -> None:
    """Run ``argv`` (a bench script and its arguments) with every opcode counted."""
    import runpy

    counts: collections.Counter[Key] = collections.Counter()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        code = frame.f_code
        key = (code.co_filename, code.co_firstlineno, code.co_name)

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[key] += 1
            return local

        return local

    sys.argv = argv
    sys.path.insert(0, str(HERE))
    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        with contextlib.suppress(SystemExit):  # a bench script may end with sys.exit
            runpy.run_path(argv[0], run_name="__main__")
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
    with open(out, "wb") as fh:
        pickle.dump(dict(counts), fh)


def _run(argv: list[str]) -> dict[Key, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/counts.pkl"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run([sys.executable, "-P", __file__, "--count", out, "--", *argv],
                       check=True, env=env)
        with open(out, "rb") as fh:
            counts: dict[Key, int] = pickle.load(fh)
    return counts


def per_unit(argv_for: Any, n: int) -> dict[Key, float]:
    """Opcodes per unit: (the run over ``2n`` minus the run over ``n``) / ``n``."""
    a, b = _run(argv_for(n)), _run(argv_for(2 * n))
    return {k: (b.get(k, 0) - a.get(k, 0)) / n for k in set(a) | set(b)}


def _module(filename: str) -> str:
    for marker, label in (("omnichannel_sdk/", "ours "), ("/plugins/", "plugin "),
                          ("site-packages/", "pkg "), ("/bench/", "bench ")):
        if marker in filename:
            rest = filename.split(marker, 1)[1]
            if label == "pkg ":
                rest = rest.split("/")[0]
            elif label == "plugin ":
                rest = rest.split("/src/", 1)[-1]
            return label + rest
    return "std " + filename.rsplit("/", 1)[-1]


def main() -> None:
    if sys.argv[1:2] == ["--count"]:  # a subprocess of _run: count one run
        _count(sys.argv[4:], sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("side", choices=["inbound", "outbound", "bodies"])
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--send-side", default="hub", choices=["hub", "frozen", "durable", "twilio"],
                        help="outbound: which side of bench/outbound_callgrind.py to count")
    args = parser.parse_args()
    inbound = str(HERE / "ingest_callgrind.py")
    stub = None
    if args.side == "outbound":
        sys.path.insert(0, str(HERE))
        import ingest

        port = ingest.free_port()
        ready = multiprocessing.Event()
        stub = multiprocessing.Process(target=ingest._stub, args=(port, 0.02, ready), daemon=True)
        stub.start()
        ready.wait(10)
        url = f"http://127.0.0.1:{port}"

        def argv_for(n: int) -> list[str]:
            return [str(HERE / "outbound_callgrind.py"), "--run", args.send_side, "--sends", str(n),
                    "--url", url, "--transport", "aiohttp"]
    else:
        def argv_for(n: int) -> list[str]:
            side = "gateway" if args.side == "inbound" else "bodies"
            return [inbound, "--run", side, "--messages", str(n)]
    try:
        counts = per_unit(argv_for, args.units)
        if args.side == "inbound":
            bodies = per_unit(lambda n: [inbound, "--run", "bodies", "--messages", str(n)],
                              args.units)
            counts = {k: v - bodies.get(k, 0.0) for k, v in counts.items()}
    finally:
        if stub is not None:
            stub.terminate()
    total = sum(counts.values())
    print(f"# {args.side}: {total:,.0f} Python opcodes per unit ({args.units} and "
          f"{2 * args.units} units; the bench's requests subtracted)")
    modules: collections.Counter[str] = collections.Counter()
    for (filename, _, _), value in counts.items():
        modules[_module(filename)] += value
    print("| opcodes / unit | module |\n|---:|---|")
    for name, value in modules.most_common(args.top):
        if abs(value) >= 1:
            print(f"| {value:,.0f} | {name} |")
    print("\n| opcodes / unit | function |\n|---:|---|")
    for (filename, line, name), value in sorted(counts.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {value:,.0f} | {_module(filename)}:{line} {name} |")


if __name__ == "__main__":
    main()
