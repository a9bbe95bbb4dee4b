"""Hypothesis (fixed seed): the signature check and the parser meet hostile input with our typed
errors or per-item failures only, never a crash, and nothing parsed is silently dropped."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_whatsapp import Built, WhatsAppAdapter, build_messages, sign_body

from omnichannel_sdk import (
    Action,
    ActionsPart,
    AdapterContext,
    InboundMessage,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    UnsupportedFeatureError,
    WebhookRequest,
    render_parts,
)
from omnichannel_sdk.testing import PUBLIC_URL

SECRET = "fuzz-secret"
PNID = "106540352242922"
FUZZ = settings(max_examples=400, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ADAPTER = WhatsAppAdapter(
    WhatsAppAdapter.Settings.model_validate({"app_secret": SECRET, "verify_token": "v", "access_token": "t",
                                             "phone_number_id": PNID}),
    AdapterContext(key="wa", public_url=PUBLIC_URL, http=httpx.AsyncClient(), kv=None))  # type: ignore[arg-type]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=20)
KEYS = ["id", "from", "timestamp", "type", "text", "body", "image", "audio", "video", "document", "sticker",
        "location", "latitude", "longitude", "name", "address", "contacts", "interactive", "button_reply",
        "list_reply", "title", "description", "button", "payload", "reaction", "message_id", "emoji",
        "context", "forwarded", "errors", "code", "mime_type", "caption", "filename", "voice", "system",
        "wa_id", "referral", "status", "recipient_id", "pricing", "conversation"]
plausible = st.recursive(st.one_of(scalars, st.sampled_from(["16505551234", "wamid.X", "1003383421387256"])),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                         max_leaves=14)
TYPES = ["text", "image", "audio", "video", "document", "sticker", "location", "contacts", "interactive",
         "button", "reaction", "system", "order", "unsupported", "whatever"]
numbers = st.one_of(st.from_regex(r"\A[1-9][0-9]{9,13}\Z"), st.text(max_size=16), st.integers(), json_values)
messages = st.fixed_dictionaries(
    {"from": numbers, "id": st.one_of(st.from_regex(r"\Awamid\.[A-Za-z0-9=]{4,40}\Z"), json_values),
     "timestamp": st.one_of(st.from_regex(r"\A1[0-9]{9}\Z"), st.integers(), st.text(max_size=12), st.none()),
     "type": st.sampled_from(TYPES)},
    optional={t: plausible for t in TYPES} | {"context": plausible, "errors": plausible, "referral": plausible})
statuses = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=20), json_values),
     "status": st.sampled_from(["sent", "delivered", "read", "failed", "deleted", "", "warning"])},
    optional={"timestamp": st.one_of(st.from_regex(r"\A1[0-9]{9}\Z"), json_values), "errors": plausible,
              "pricing": plausible, "conversation": plausible, "recipient_id": numbers})
values = st.fixed_dictionaries(
    {"metadata": st.one_of(st.just({"display_phone_number": "15550783881", "phone_number_id": PNID}), json_values)},
    optional={"messages": st.one_of(st.lists(messages, max_size=4), json_values),
              "statuses": st.one_of(st.lists(statuses, max_size=3), json_values),
              "contacts": st.one_of(st.lists(st.fixed_dictionaries({"wa_id": numbers, "profile": plausible}),
                                             max_size=2), json_values),
              "errors": plausible})
bodies = st.fixed_dictionaries({"object": st.sampled_from(["whatsapp_business_account", "page", 1]),
                                "entry": st.one_of(st.lists(st.fixed_dictionaries({"changes": st.one_of(
                                    st.lists(st.fixed_dictionaries({"value": st.one_of(values, json_values)},
                                                                   optional={"field": st.sampled_from(
                                                                       ["messages", "account_update"])}),
                                             max_size=3), json_values)}), max_size=3), json_values)})


def signed(raw: bytes) -> WebhookRequest:
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/wa", {"x-hub-signature-256": sign_body(SECRET, raw)}, raw)


def counted(body: Any) -> int:
    """How many messages and statuses the body offers (each must end up an item or a failure)."""
    total = 0
    for entry in body.get("entry") if isinstance(body.get("entry"), list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or change.get("field", "messages") != "messages":
                continue
            meta = value.get("metadata")
            if isinstance(meta, dict) and meta.get("phone_number_id") not in (None, PNID):
                continue
            for name in ("messages", "statuses", "errors"):
                if isinstance(value.get(name), list):
                    total += len(value[name])
    return total


@FUZZ
@given(bodies)
def test_parser_never_crashes_and_loses_nothing(body: dict[str, Any]) -> None:
    try:
        result = ADAPTER.parse(signed(orjson.dumps(body)))
    except UnparseablePayloadError:
        assert body["object"] != "whatsapp_business_account" or not isinstance(body["entry"], list)
        return
    for item in result.items:
        assert isinstance(item, (InboundMessage, StatusUpdate))
        if isinstance(item, InboundMessage):
            assert item.parts and item.sender.handle.startswith("+")
        orjson.dumps(item.model_dump(mode="json"))  # storable
    for failure in result.failures:
        orjson.dumps(failure.fragment, option=orjson.OPT_NON_STR_KEYS)  # storable as a dead letter
    items_and_failures = len(result.items) + len(result.failures)
    assert items_and_failures >= counted(body)


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.text(max_size=80)))
def test_arbitrary_bytes_and_headers(raw: bytes, header: str | None) -> None:
    request = WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/wa",
                             {} if header is None else {"x-hub-signature-256": header}, raw)
    try:
        ADAPTER.verify(request)
    except SignatureError:
        pass
    else:
        assert header is not None and header.strip().lower() == sign_body(SECRET, raw)
    try:
        ADAPTER.parse(signed(raw))
    except UnparseablePayloadError:
        pass


@FUZZ
@given(st.lists(st.one_of(
    st.builds(TextPart, text=st.text(min_size=1, max_size=50)),
    st.builds(ActionsPart, prompt=st.one_of(st.none(), st.text(max_size=30)),
              actions=st.lists(st.builds(Action, id=st.text(min_size=1, max_size=40), title=st.text(min_size=1, max_size=30),
                                         kind=st.sampled_from(["reply", "postback", "url", "call"]),
                                         value=st.one_of(st.none(), st.text(max_size=20))),
                               min_size=1, max_size=14))), min_size=1, max_size=4))
def test_outbound_builder_respects_the_limits(parts: list[Any]) -> None:
    try:
        rendered = render_parts(parts, WhatsAppAdapter.capabilities).parts
        result: Built = build_messages(rendered, graph="https://graph.facebook.com/v21.0")
    except UnsupportedFeatureError:
        return
    for message in result.messages:
        if message["type"] == "text":
            assert len(message["text"]["body"]) <= 4096
        elif message["type"] == "interactive":
            interactive = message["interactive"]
            assert len(interactive["body"]["text"]) <= 1024
            if interactive["type"] == "button":
                assert 1 <= len(interactive["action"]["buttons"]) <= 3
                assert all(len(b["reply"]["title"]) <= 20 for b in interactive["action"]["buttons"])
            elif interactive["type"] == "list":
                rows = interactive["action"]["sections"][0]["rows"]
                assert 1 <= len(rows) <= 10 and all(len(r["title"]) <= 24 for r in rows)
