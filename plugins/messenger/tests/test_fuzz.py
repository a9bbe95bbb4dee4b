"""Hypothesis: the parser and the signature check never fail with anything but our typed errors."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_messenger import InstagramAdapter, MessengerAdapter, sign_body
from omnichannel_messenger._outbound import OutboundLimits, build_messages

from omnichannel_sdk import (
    Action,
    ActionsPart,
    AdapterContext,
    InboundMessage,
    ParseResult,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
    render_parts,
)
from omnichannel_sdk.testing import PUBLIC_URL

SECRET = "fuzz-secret"
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(cls: type = MessengerAdapter) -> MessengerAdapter:
    settings_ = cls.Settings.model_validate({"app_secret": SECRET, "verify_token": "v",
                                             "page_access_token": "t", "page_id": "1"})
    return cls(settings_, AdapterContext(key="k", public_url=PUBLIC_URL, http=httpx.AsyncClient(),
                                         kv=None))  # type: ignore[arg-type]


ADAPTERS = {"page": make(MessengerAdapter), "instagram": make(InstagramAdapter)}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=25)

ids = st.one_of(st.text(max_size=20), st.integers(-5, 10**16), st.none(), st.booleans(), json_values)
stamps = st.one_of(st.integers(-10, 2**62), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=15), st.none(), st.from_regex(r"\A[0-9]{1,14}\Z"))
KEYS = ["mid", "text", "attachments", "quick_reply", "reply_to", "is_echo", "app_id", "metadata",
        "is_deleted", "payload", "title", "url", "type", "coordinates", "lat", "long", "sticker_id",
        "mids", "watermark", "reaction", "emoji", "action", "num_edit", "referral", "story", "id"]
plausible = st.recursive(
    st.one_of(scalars, ids), lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)), max_leaves=12)
EVENT_KINDS = ["message", "postback", "reaction", "delivery", "read", "referral", "optin",
               "message_edit", "pass_thread_control", "take_thread_control", "other"]
events = st.fixed_dictionaries(
    {"sender": st.one_of(st.fixed_dictionaries({"id": ids}), json_values),
     "recipient": st.one_of(st.fixed_dictionaries({"id": ids}), json_values),
     "timestamp": stamps},
    optional={kind: plausible for kind in EVENT_KINDS})
SEEN: dict[str, int] = {"items": 0, "failures": 0}
digits = st.from_regex(r"\A[1-9][0-9]{5,15}\Z")
good_ms = st.integers(1_000_000_000_000, 2_000_000_000_000)
bodies_ = st.one_of(
    st.fixed_dictionaries({"message": st.fixed_dictionaries(
        {"mid": digits.map(lambda d: f"m_{d}")},
        optional={"text": st.text(max_size=50), "is_echo": st.booleans(), "quick_reply": plausible,
                  "reply_to": plausible, "attachments": st.lists(st.fixed_dictionaries(
                      {"type": st.sampled_from(["image", "audio", "video", "file", "sticker", "location",
                                                "fallback", "template", "reel", "story_mention", "x"])},
                      optional={"payload": plausible, "title": st.text(max_size=10)}), max_size=3),
                  "metadata": st.text(max_size=10), "app_id": ids})}),
    st.fixed_dictionaries({"postback": st.fixed_dictionaries({}, optional={
        "mid": digits, "title": st.text(max_size=10), "payload": st.text(max_size=10)})}),
    st.fixed_dictionaries({"reaction": st.fixed_dictionaries({"mid": digits}, optional={
        "reaction": st.text(max_size=5), "emoji": st.text(max_size=2), "action": st.text(max_size=6)})}),
    st.fixed_dictionaries({"delivery": st.fixed_dictionaries({}, optional={
        "mids": st.lists(digits, max_size=3), "watermark": good_ms})}),
    st.fixed_dictionaries({"read": st.fixed_dictionaries({}, optional={
        "watermark": good_ms, "mid": digits})}),
)
valid_ish = st.builds(lambda envelope, body: {**envelope, **body}, st.fixed_dictionaries(
    {"sender": st.fixed_dictionaries({"id": digits}), "recipient": st.fixed_dictionaries({"id": digits}),
     "timestamp": good_ms}), bodies_)
events = st.one_of(valid_ish, events)
entries = st.one_of(
    st.fixed_dictionaries({"id": ids, "time": stamps},
                          optional={"messaging": st.one_of(st.lists(events, max_size=4), json_values),
                                    "standby": st.lists(events, max_size=2),
                                    "changes": st.lists(st.fixed_dictionaries({"value": events}),
                                                        max_size=2)}),
    json_values)


def check(result: ParseResult) -> None:
    for item in result.items:
        assert isinstance(item, InboundMessage | StatusUpdate)
        if isinstance(item, InboundMessage):
            assert item.external_id and item.thread_key
            item.model_dump_json()
    for failure in result.failures:
        orjson.dumps(failure.fragment)  # dead letters must be storable


def parse(obj: str, body: bytes) -> ParseResult | None:
    request = WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/k", {}, body)
    try:
        return ADAPTERS[obj].parse(request)
    except UnparseablePayloadError:
        return None


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes(body: bytes) -> None:
    result = parse("page", body)
    if result is not None:
        check(result)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    result = parse("page", orjson.dumps(value))
    if result is not None:
        check(result)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["page", "instagram"]), st.lists(entries, max_size=3))
def test_plausible_payloads_never_raise(obj: str, entry_list: list[Any]) -> None:
    body = orjson.dumps({"object": obj, "entry": entry_list})
    result = ADAPTERS[obj].parse(WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/k", {}, body))
    check(result)
    SEEN["items"] += len(result.items)
    SEEN["failures"] += len(result.failures)


@FUZZ
@given(st.binary(max_size=64), st.one_of(st.none(), st.text(max_size=80)))
def test_signature_check_only_raises_signature_error(body: bytes, header: str | None) -> None:
    headers = {} if header is None else {"x-hub-signature-256": header}
    try:
        ADAPTERS["page"].verify(WebhookRequest("POST", "https://x/webhooks/k", headers, body))
    except SignatureError:
        return
    assert header is not None and header.strip().lower() == sign_body(SECRET, body)


@FUZZ
@given(st.text(min_size=1, max_size=5000),
       st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=15))
def test_outbound_pieces_respect_limits(text: str, titles: list[str]) -> None:
    adapter = ADAPTERS["page"]
    actions = [Action(id=f"a{i}", title=t) for i, t in enumerate(titles)]
    parts = [TextPart(text=text), ActionsPart(actions=actions)]
    rendered = render_parts(parts, adapter.capabilities).parts
    for piece in build_messages(rendered, OutboundLimits()):
        assert len(piece.get("text", "")) <= 2000
        assert len(piece.get("quick_replies", [])) <= 13
        assert all(len(q["title"]) <= 20 for q in piece.get("quick_replies", []))
        template = piece.get("attachment", {}).get("payload", {})
        assert len(template.get("buttons", [])) <= 3
        assert len(template.get("text", "")) <= 640


def test_the_fuzzer_reaches_the_parser() -> None:
    """Run after the plausible-payload fuzz: both outcomes were produced (the strategies are
    not so wild that every event fails, nor so tame that none does)."""
    if SEEN["items"] + SEEN["failures"] == 0:
        test_plausible_payloads_never_raise()
    assert SEEN["items"] > 0 and SEEN["failures"] > 0
