"""kill -9 of a real ``omnichannel serve`` in the middle of 300 sends (Twilio- and Vonage-shaped
loopback vendors): nothing is lost, and what reached a vendor twice is counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .crash_harness import crash_run

pytestmark = pytest.mark.slow


def test_kill_9_mid_send_loses_nothing(tmp_path: Path, store_url: str | None,
                                       record_property: Any) -> None:
    store = store_url or f"sqlite:///{tmp_path / 'crash.db'}"
    results = crash_run(tmp_path / "run", store, adapters=["twilio-sms", "vonage-sms"], sends=150)
    for result in results:
        print(f"\n{result.adapter} on {result.store}: {result.sends} sends, killed after "
              f"{result.at_kill}, lost {result.lost}, duplicates {result.duplicates}, "
              f"reconciled {result.reconciled:.0f}, sent again {result.possible:.0f}")
        record_property(f"{result.adapter}-duplicates", result.duplicates)
        assert 0 < result.at_kill < result.sends, "the kill did not land mid-send"
        # at least once: every send reached the vendor and ends ``sent``
        assert result.lost == 0, result.not_sent
        # what was sent again is counted, never fewer than the vendor's duplicates
        assert result.duplicates <= result.possible
    twilio = results[0]
    # the restarted process took its own leases back at once (the lease is 120 s)
    assert twilio.taken_over > 0
    # Twilio is asked before a send of unknown outcome goes again: no duplicate
    assert twilio.reconciled > 0 and twilio.duplicates == 0
