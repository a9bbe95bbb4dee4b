# ruff: noqa: E402, RUF001 - the path fix below must run before the imports; the Chinese text is real
"""SMS encoding + segment count: ``omnichannel_sms.segment`` vs ``smsutil.split`` vs a floor.

Run: ``.venv/bin/python -P bench/sms_segments.py`` (``smsutil`` comes with ``.[bench]``).
Every contender answers the same question for each text — GSM-7 or UCS-2, and how many SMS
parts — over texts a helpdesk sends: a short GSM-7 reply, a long one with extension characters
(``€``, ``[``), a Chinese reply, and a mixed one with emoji (surrogate pairs in UCS-2).

- ``omnichannel segment``: what ``hub.send`` records on every outbound SMS.
- ``smsutil.split``: the parts themselves (it builds them to count them).
- ``floor``: a set-membership pass and a ceiling division — the least work that answers the
  question, and slightly wrong where an escape pair or a surrogate pair straddles a part
  boundary (which ``segment`` and ``smsutil`` handle).

CPU time of the process per text, contenders interleaved over rounds; min / median / max of the
per-round ratios. The part counts of ours and smsutil's are compared first (they must agree).
"""

from __future__ import annotations

import os
import sys

# bench/ holds scripts named like stdlib modules (email.py): keep this folder off the path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import statistics
import time
from collections.abc import Callable

from omnichannel_sms import segment
from omnichannel_sms._encoding import GSM7_BASIC, GSM7_EXTENSION

TEXTS = [
    "Your order #1234 ships today. Reply STOP to opt out.",
    ("Hello Ana, thanks for waiting. The replacement [part 2] costs 12 € and ships on Monday; "
     "we will text you the tracking link as soon as the courier has it. ") * 4,
    "您好，您的订单已经发货，预计三天内送达。如有问题请回复本短信，我们的客服会尽快联系您。" * 2,
    "Thanks! 😀 Your table for 4 is booked at 19:30 — see you soon 🎉 " * 3,
]


def floor(text: str) -> tuple[str, int]:
    basic, ext = GSM7_BASIC, GSM7_EXTENSION
    units = 0
    for ch in text:
        if ch in basic:
            units += 1
        elif ch in ext:
            units += 2
        else:
            break
    else:
        return "GSM-7", 1 if units <= 160 else -(-units // 153)
    units = len(text.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else -(-units // 67)


def ours(text: str) -> tuple[str, int]:
    found = segment(text)
    return found.encoding, found.segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=3000)
    args = parser.parse_args()
    contenders: list[tuple[str, Callable[[str], object]]] = [("omnichannel segment", ours)]
    try:
        import smsutil  # type: ignore[import-untyped]
    except ImportError:
        print("smsutil is not installed: pip install -e '.[bench]'")
    else:
        def theirs(text: str) -> tuple[str, int]:
            result = smsutil.split(text)
            return result.encoding, len(result.parts)

        for text in TEXTS:
            assert theirs(text)[1] == ours(text)[1], (text[:20], theirs(text), ours(text))
        contenders.append(("smsutil.split", theirs))
    contenders.append(("floor (set pass + ceiling)", floor))

    samples: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders:
            start = time.process_time()
            for _ in range(args.number):
                for text in TEXTS:
                    fn(text)
            samples[name].append((time.process_time() - start) / (args.number * len(TEXTS)))
    print(f"SMS encoding + segment count, {len(TEXTS)} texts "
          f"({', '.join(str(len(t)) for t in TEXTS)} characters), {args.rounds} interleaved rounds")
    print(f"{'contender':28} {'µs/text':>8} {'vs ours (min / median / max)':>30}")
    mine = samples["omnichannel segment"]
    for name, times in samples.items():
        ratios = sorted(t / m for t, m in zip(times, mine, strict=True))
        spread = f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}"
        print(f"{name:28} {statistics.median(times) * 1e6:8.2f} {spread:>30}")
    print("(a ratio above 1 is slower than ours)")


if __name__ == "__main__":
    main()
