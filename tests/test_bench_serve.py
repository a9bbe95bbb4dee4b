"""``bench/serve.py`` runs end to end with tiny counts (a smoke test, nothing timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parent.parent / "bench" / "serve.py"


def test_serve_bench_runs_end_to_end() -> None:
    done = subprocess.run([sys.executable, "-P", str(BENCH), "--requests", "30", "--rounds", "1",
                           "--rate", "40", "--duration", "0.5", "--warm", "5", "--no-postgres"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| Starlette floor |" in out and "| omnichannel serve |" in out, out
    assert "| ours |" in out and "p99" in out, out
    assert "| our Gateway over a stub hub |" in out, out
