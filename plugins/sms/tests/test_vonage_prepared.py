"""The vonage-sms adapter prepares a fresh send once: :meth:`send` takes what
``outbound_metadata`` prepared at ``hub.send`` for the same parts list, and the vendor gets the
same requests (URL, headers, bodies) and the message the same metadata as when the send
prepares it itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx
from omnichannel_sms import _vonage

from omnichannel_sdk import Address, Part, TextPart
from omnichannel_sdk._http import make_http_client

from .test_vonage import SEND, make, outbound

CASES: dict[str, list[Part]] = {
    "text": [TextPart(text="Your order ships today")],
    "unicode": [TextPart(text="Привет!")],
    "split": [TextPart(text="ж " * 300)],
}
_OK = {"message-count": "1", "messages": [{"status": "0", "message-id": "0B1"}]}


async def _send(parts: list[Part], *, metadata_first: bool, monkeypatch: pytest.MonkeyPatch,
                ) -> tuple[list[tuple[str, Any, bytes]], dict[str, Any], dict[str, Any], int]:
    """One send; the requests posted, the result's and outbound_metadata's metadata, and how
    many times the parts were prepared."""
    calls: list[int] = []
    prepare = _vonage.prepare_outbound

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(_vonage, "prepare_outbound", counted)
    async with make_http_client() as http:
        adapter = make(http, max_segments=2, max_segments_action="split")
        meta = adapter.outbound_metadata(parts, [Address(channel="sms", handle="+447700900001")]) \
            if metadata_first else {}
        with respx.mock() as router:
            route = router.post(SEND).mock(return_value=httpx.Response(200, json=_OK))
            result = await adapter.send(outbound("x"), parts)
    posted = [(str(c.request.url), c.request.headers.multi_items(), c.request.content)
              for c in route.calls]
    return posted, result.metadata, meta, len(calls)


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(CASES))
async def test_a_send_prepared_at_hub_send_is_the_send_prepared_by_itself(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = CASES[case]
    posted, result, meta, prepared = await _send(parts, metadata_first=True,
                                                 monkeypatch=monkeypatch)
    assert prepared == 1  # once, at outbound_metadata
    alone, alone_result, _, alone_prepared = await _send(list(parts), metadata_first=False,
                                                         monkeypatch=monkeypatch)
    assert alone_prepared == 1
    assert posted == alone and result == alone_result == meta


@pytest.mark.anyio
async def test_other_parts_than_the_prepared_ones_are_prepared_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async with make_http_client() as http:
        adapter = make(http)
        adapter.outbound_metadata([TextPart(text="first")], [Address(channel="sms", handle="+1")])
        with respx.mock() as router:
            route = router.post(SEND).mock(return_value=httpx.Response(200, json=_OK))
            await adapter.send(outbound("second"), [TextPart(text="second")])
        assert b"text=second" in route.calls.last.request.content
