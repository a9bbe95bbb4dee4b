"""Sortable identifiers (``new_id``)."""

from __future__ import annotations

import os

from omnichannel_sdk import _ids
from omnichannel_sdk._ids import new_id


def test_ids_stay_unique_and_sorted_past_the_random_pool() -> None:
    made = [new_id("msg") for _ in range(3 * _ids._POOL_BYTES)]  # several pool refills
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_a_forked_child_does_not_repeat_the_parents_next_ids() -> None:
    new_id("msg")  # the pool now holds bytes the parent will draw next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, " ".join(new_id("msg") for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    _ids._last_ms = 0  # make the parent draw fresh random parts as the child did
    parent = [new_id("msg") for _ in range(5)]
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    assert len(child) == 5
    # ids of one millisecond share the time part: the random parts must differ
    assert not {c[-20:] for c in child} & {p[-20:] for p in parent}


def test_ids_are_the_hex_of_milliseconds_and_random_part_at_every_width() -> None:
    # made from the 16 bytes of the 128-bit number: the same digits as the format specs,
    # leading zeros kept, and the format specs again past 48 bits of milliseconds
    saved = _ids._last_ms, _ids._last_rand
    try:
        for ms, rand in ((0x0fff_0000_0001, 0), (0x0fff_0000_0002, 5), ((1 << 48) - 1, (1 << 80) - 2),
                         (1 << 48, 7), (1 << 52, (1 << 79) + 3)):
            _ids._last_ms, _ids._last_rand = ms, rand  # a clock behind: this millisecond again
            assert new_id("t") == f"t_{ms:012x}{rand + 1:020x}"
    finally:
        _ids._last_ms, _ids._last_rand = saved
    assert len(new_id("msg")) == len("msg_") + 32
