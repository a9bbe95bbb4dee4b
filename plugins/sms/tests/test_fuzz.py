"""Hypothesis: arbitrary input never raises anything but our typed errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_sms import (
    ConcatAssembler,
    ConcatPart,
    TwilioSmsAdapter,
    VonageSmsAdapter,
    keyword_event,
    parse_form,
    segment,
    signed_params,
    split_segments,
)
from omnichannel_sms._twilio import signed_request

from omnichannel_sdk import AdapterContext, OmnichannelError, WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

TOKEN = "fuzz-token"
SECRET = "fuzz-secret"
URL = f"{PUBLIC_URL}/webhooks/k"
FIELDS = ["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
          "MessageStatus", "ErrorCode", "OptOutType", "NumSegments", "FromCountry"]
VONAGE_FIELDS = ["msisdn", "to", "messageId", "text", "type", "concat", "concat-ref", "concat-part",
                 "concat-total", "status", "err-code", "scts", "message-timestamp", "data", "udh"]
CONTEXT = AdapterContext(key="k", public_url=PUBLIC_URL, http=httpx.AsyncClient(), kv=MemoryKV())
TWILIO = TwilioSmsAdapter(TwilioSmsAdapter.Settings.model_validate(
    {"account_sid": "AC1", "auth_token": TOKEN, "from_number": "+15005550006"}), CONTEXT)
VONAGE = VonageSmsAdapter(VonageSmsAdapter.Settings.model_validate(
    {"api_key": "k", "api_secret": "s", "signature_secret": SECRET, "from_number": "+447700900000"}),
    CONTEXT)
values = st.one_of(st.text(max_size=40), st.sampled_from(
    ["", "0", "1", "3", "-1", "99", "+14155550100", "447700900001", "received", "delivered", "failed",
     "undelivered", "true", "binary", "unicode", "STOP", "image/png", "2026-01-15 12:00:00", "x" * 300]))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _typed(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except OmnichannelError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_twilio_raw_bytes(body: bytes) -> None:
    request = WebhookRequest("POST", URL, {"x-twilio-signature": "x"}, body)
    _typed(TWILIO.verify, request)
    _typed(TWILIO.parse, request)
    _typed(parse_form, body)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS), values), max_size=12))
def test_twilio_signed_forms(pairs: list[tuple[str, str]]) -> None:
    request = signed_request(TOKEN, URL, pairs)
    TWILIO.verify(request)
    _typed(TWILIO.parse, request)


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["GET", "POST"]),
       st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]))
def test_vonage_raw(body: bytes, method: str, content_type: str) -> None:
    request = WebhookRequest(method, URL + "?" + body.decode("latin-1").replace("#", ""),
                             {"content-type": content_type}, body)
    _typed(VONAGE.verify, request)
    _typed(VONAGE.parse, request)
    _typed(VONAGE.handshake, request)


@FUZZ
@given(st.dictionaries(st.sampled_from(VONAGE_FIELDS), st.one_of(values, st.integers(), st.booleans(),
                                                                 st.none()), max_size=12),
       st.sampled_from(["json", "form"]))
def test_vonage_signed(params: dict[str, Any], kind: str) -> None:
    signed = signed_params(SECRET, params, "md5hash", int(time.time()))
    if kind == "json":
        request = WebhookRequest("POST", URL, {"content-type": "application/json"}, orjson.dumps(signed))
    else:
        request = WebhookRequest("POST", URL, {"content-type": "application/x-www-form-urlencoded"},
                                 urlencode(signed).encode())
    VONAGE.verify(request)
    _typed(VONAGE.parse, request)  # outside a running loop: concatenated parts come back alone


@FUZZ
@given(st.text(max_size=500), st.integers(min_value=1, max_value=6))
def test_segment_counter_and_keywords(text: str, limit: int) -> None:
    info = segment(text)
    assert info.segments >= 1 and info.units >= 0
    assert all(segment(chunk).segments <= limit for chunk in split_segments(text, limit))
    keyword_event(text, TWILIO.settings)


def _part(number: int, total: int) -> ConcatPart:
    return ConcatPart(sender="+447700900001", ref="42", number=number, total=total,
                      message_id=f"m{number}", text=f"<{number}>", recipient="+447700900000")


@st.composite
def arrivals(draw: Any) -> tuple[int, list[int], bool]:
    total = draw(st.integers(min_value=1, max_value=6))
    retries = draw(st.lists(st.integers(min_value=1, max_value=total), max_size=4))
    order = draw(st.permutations(list(range(1, total + 1)) + retries))
    return total, order, draw(st.booleans())


@FUZZ
@given(arrivals())
def test_concat_assembles_once_whatever_the_order(case: tuple[int, list[int], bool]) -> None:
    total, order, concurrent = case

    async def run() -> list[tuple[list[ConcatPart], dict[str, Any]]]:
        stored: list[tuple[list[ConcatPart], dict[str, Any]]] = []

        async def ingest(parts: list[ConcatPart], meta: dict[str, Any]) -> None:
            stored.append((parts, meta))

        assembler = ConcatAssembler(MemoryKV(), "k", ingest, timeout=60)
        if concurrent:
            await asyncio.gather(*(assembler.add(_part(n, total)) for n in order))
        else:
            for n in order:
                await assembler.add(_part(n, total))
        assert await assembler.flush() == 0
        return stored

    stored = asyncio.run(run())
    assert len(stored) == 1
    parts, meta = stored[0]
    assert [p.number for p in parts] == list(range(1, total + 1))
    assert meta["complete"] is True and meta["missing"] == []


@FUZZ
@given(st.integers(min_value=2, max_value=6).flatmap(
    lambda total: st.tuples(st.just(total), st.sets(st.integers(min_value=1, max_value=total),
                                                    min_size=1, max_size=total - 1))))
def test_concat_flush_keeps_what_arrived(case: tuple[int, set[int]]) -> None:
    total, arrived = case

    async def run() -> list[tuple[list[ConcatPart], dict[str, Any]]]:
        stored: list[tuple[list[ConcatPart], dict[str, Any]]] = []

        async def ingest(parts: list[ConcatPart], meta: dict[str, Any]) -> None:
            stored.append((parts, meta))

        assembler = ConcatAssembler(MemoryKV(), "k", ingest, timeout=30)
        for n in sorted(arrived):
            await assembler.add(_part(n, total))
        assert await assembler.flush() == 0  # not yet timed out
        assert await assembler.flush(now=time.time() + 31) == 1
        assert await assembler.flush(now=time.time() + 62) == 0
        return stored

    (parts, meta), = asyncio.run(run())
    assert [p.number for p in parts] == sorted(arrived)
    assert meta["complete"] is False
    assert meta["missing"] == [n for n in range(1, total + 1) if n not in arrived]
