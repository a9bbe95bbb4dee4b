"""Arbitrary input never raises anything but our typed errors."""

from __future__ import annotations

import time

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_webchat import SESSION_HEADER, Session, WebchatAdapter, sign_session

from omnichannel_sdk import AdapterContext, PayloadError, WebhookRequest
from omnichannel_sdk.testing import MemoryKV

SECRET = "fuzz-webchat-secret-0000"
ADAPTER = WebchatAdapter(WebchatAdapter.Settings(secret=SECRET),  # type: ignore[arg-type]
                         AdapterContext(key="web", public_url="https://x.test",
                                        http=httpx.AsyncClient(), kv=MemoryKV()))
TOKEN = sign_session(Session(visitor="v_fuzz", channel_key="web", expires=int(time.time()) + 3600,
                             email="a@b.example"), SECRET)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
messages = st.fixed_dictionaries({"messages": st.lists(st.dictionaries(
    st.sampled_from(["id", "text", "x"]), json_values, max_size=3), max_size=4)})


def request(body: bytes, content_type: str, token: str | None = TOKEN) -> WebhookRequest:
    headers = {"content-type": content_type}
    if token is not None:
        headers[SESSION_HEADER] = token
    return WebhookRequest("POST", "https://x.test/webhooks/web", headers, body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), json_values.map(lambda v: __import__("orjson").dumps(v)),
                 messages.map(lambda v: __import__("orjson").dumps(v))),
       st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain"]))
def test_parse_only_raises_payload_errors(body: bytes, content_type: str) -> None:
    try:
        result = ADAPTER.parse(request(body, content_type))
    except PayloadError:
        return
    for item in result.items:
        assert item.sender.handle == "v_fuzz"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=100))
def test_verify_only_raises_signature_errors(token: str, origin: str) -> None:
    req = WebhookRequest("POST", "https://x.test/webhooks/web",
                         {SESSION_HEADER: token, "origin": origin}, b"{}")
    try:
        ADAPTER.verify(req)
    except PayloadError:
        pass
