"""freeze_after_startup: what it does to the process's collector (each case in a fresh
interpreter: the effect is process-wide and cannot be taken back fully inside the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from omnichannel_sdk import freeze_after_startup


def run(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_freezes_what_is_alive_and_collects_the_young_less_often() -> None:
    result = run("""
        import gc, json, weakref
        import omnichannel_sdk

        class Node:
            me = None  # set to the object itself: a reference cycle

        freed = []
        left = Node(); left.me = left  # start-up garbage: a cycle only the collector frees
        weakref.finalize(left, freed.append, True)
        del left
        kept = Node(); kept.me = kept  # alive at the call: frozen
        before = gc.get_threshold()
        frozen = omnichannel_sdk.freeze_after_startup()
        print(json.dumps({"frozen": frozen, "count": gc.get_freeze_count(), "freed": freed,
                          "before": before, "after": gc.get_threshold(),
                          "kept_frozen": not any(o is kept for o in gc.get_objects())}))
    """)
    assert result["frozen"] == result["count"]
    assert isinstance(result["frozen"], int) and result["frozen"] > 10_000  # the SDK's modules
    assert result["freed"] == [True]  # start-up's garbage was collected, not frozen
    assert result["kept_frozen"] is True  # frozen objects are out of the collector's lists
    before, after = result["before"], result["after"]
    assert isinstance(before, list) and isinstance(after, list)
    assert after == [10_000, *before[1:]]  # only the youngest generation's threshold moves


def test_keeps_the_thresholds_when_asked_and_refuses_zero() -> None:
    result = run("""
        import gc, json
        from omnichannel_sdk import freeze_after_startup

        before = gc.get_threshold()
        freeze_after_startup(young_threshold=None)
        kept = gc.get_threshold()
        freeze_after_startup(young_threshold=2_500)
        try:
            freeze_after_startup(young_threshold=0)
            refused = False
        except ValueError:
            refused = True
        print(json.dumps({"before": before, "kept": kept, "set": gc.get_threshold(),
                          "refused": refused}))
    """)
    assert result["kept"] == result["before"]
    assert isinstance(result["set"], list) and result["set"][0] == 2_500
    assert result["refused"] is True


def test_refuses_a_threshold_below_one_before_touching_the_collector() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        freeze_after_startup(young_threshold=-5)
