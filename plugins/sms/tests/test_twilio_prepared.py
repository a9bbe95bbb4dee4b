"""The twilio-sms adapter prepares a fresh send once: :meth:`send` takes what
``outbound_metadata`` prepared at ``hub.send`` for the same parts list, and the vendor gets the
same requests and the message the same metadata as when the send prepares it itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from omnichannel_sdk import Address, MediaPart, Part, TextPart

from .test_twilio import API, make, outbound

CASES: dict[str, tuple[list[Part], str]] = {
    "text": ([TextPart(text="Your order ships today €5")], "+14155550100"),
    "split": ([TextPart(text="ж " * 300)], "+14155550100"),
    "mms": ([TextPart(text="see"), MediaPart(kind="image", url="https://x.test/a.png")],
            "+14155550100"),
    "links abroad": ([MediaPart(kind="image", url="https://x.test/a.png", caption="pic")],
                     "+447700900123"),
}


async def _send(parts: list[Part], to: str, *, metadata_first: bool, recipient: str | None = None,
                **extra: Any) -> tuple[list[bytes], dict[str, Any], dict[str, Any], int]:
    """One send; the bodies posted, the result's and outbound_metadata's metadata, and how
    many times the adapter prepared the parts."""
    async with httpx.AsyncClient() as http:
        adapter = make(http, max_segments=2, max_segments_action="split", **extra)
        prepared = adapter._prepare
        calls: list[int] = []

        def counted(given: Any, handle: str) -> Any:
            calls.append(1)
            return prepared(given, handle)

        adapter._prepare = counted  # type: ignore[method-assign]
        meta = adapter.outbound_metadata(parts, [Address(channel="sms", handle=recipient or to)]) \
            if metadata_first else {}
        with respx.mock() as router:
            route = router.post(API).mock(return_value=httpx.Response(201, json={"sid": "SM1"}))
            result = await adapter.send(outbound(*parts, to=to), parts)
        return [c.request.content for c in route.calls], result.metadata, meta, len(calls)


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(CASES))
async def test_a_send_prepared_at_hub_send_is_the_send_prepared_by_itself(case: str) -> None:
    parts, to = CASES[case]
    posted, result, meta, prepared = await _send(parts, to, metadata_first=True)
    assert prepared == 1  # once, at outbound_metadata
    alone, alone_result, _, alone_prepared = await _send(list(parts), to, metadata_first=False)
    assert alone_prepared == 1
    assert posted == alone and result == alone_result == meta


@pytest.mark.anyio
async def test_other_parts_or_another_recipient_are_prepared_again() -> None:
    parts, to = CASES["mms"]
    # outbound_metadata saw another number (links abroad); the send goes to a US one (MMS)
    posted, result, _, prepared = await _send(parts, to, metadata_first=True,
                                              recipient="+447700900123")
    alone, alone_result, _, _ = await _send(list(parts), to, metadata_first=False)
    assert prepared == 2 and posted == alone and result == alone_result
