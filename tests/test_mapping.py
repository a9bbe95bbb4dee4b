"""The built-in json-mapping adapter: the contract kit, paths, and fuzzing."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from omnichannel_sdk import Address, JsonMappingAdapter, OmnichannelError, WebhookRequest
from omnichannel_sdk._mapping import lookup
from omnichannel_sdk.testing import ChannelContract, SendCase

SECRET = "mapping-secret"
SETTINGS = {"secret": SECRET, "signature_prefix": "sha256=", "items": "events", "sender": "user.id",
            "text": "message.text", "media_url": "message.file", "media_hosts": ["files.partner.test"],
            "send_url": "https://api.partner.test/send", "send_token": "tok-999", "response_id": "data.id"}


def signed(url: str, body: bytes) -> WebhookRequest:
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return WebhookRequest("POST", url, {"content-type": "application/json", "x-signature": sig}, body)


class TestJsonMappingContract(ChannelContract):
    adapter_class = JsonMappingAdapter
    channel_settings = SETTINGS
    signature_headers = ("x-signature",)
    secret_values = (SECRET, "tok-999")

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {
            "text": signed(self.webhook_url, orjson.dumps({"events": [
                {"id": "e1", "user": {"id": "u1"}, "message": {"text": "hello"}}]})),
            "file": signed(self.webhook_url, orjson.dumps({"events": [
                {"id": "e2", "user": {"id": "u1"}, "message": {"file": "https://files.partner.test/a.pdf"}}]})),
        }

    def malformed_request(self) -> WebhookRequest:
        return signed(self.webhook_url, b"\xff\xfe not json")

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.partner.test/send",
                        success=lambda: httpx.Response(200, json={"data": {"id": "s-1"}}),
                        recipient=Address(channel="custom", handle="u1"))


def test_lookup_paths() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert lookup(data, "a.b.1.c") == 2
    assert lookup(data, "a.b.-1.c") == 2
    assert lookup(data, "a.x") is None
    assert lookup(data, "a.b.9.c") is None
    assert lookup(data, "") == data


settings_ = JsonMappingAdapter.Settings.model_validate(SETTINGS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20).map(orjson.dumps))
def test_parser_raises_only_typed_errors(body: bytes) -> None:
    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing._contract import MemoryKV

    adapter = JsonMappingAdapter(settings_, AdapterContext(key="k", public_url="https://x", http=None, kv=MemoryKV()))  # type: ignore[arg-type]
    try:
        adapter.parse(WebhookRequest("POST", "https://x/webhooks/k", {}, body))
    except OmnichannelError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_form_parsing_never_crashes(body: bytes) -> None:
    request = WebhookRequest("POST", "https://x/?a=1&a=2&b", {"Content-Type": "x"}, body)
    try:
        request.form()
    except OmnichannelError:
        pass
    assert request.query == {"a": "1", "b": ""} and request.header("content-type") == "x"


def test_form_bodies_map_by_field_name() -> None:
    from urllib.parse import urlencode

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    settings = JsonMappingAdapter.Settings.model_validate({
        "secret": SECRET, "channel": "sms", "external_id": "MessageSid", "sender": "From",
        "recipient": "To", "text": "Body"})
    adapter = JsonMappingAdapter(settings, AdapterContext(key="k", public_url="https://x", http=None,  # type: ignore[arg-type]
                                                          kv=MemoryKV()))
    body = urlencode({"MessageSid": "SM1", "From": "+14155550100", "To": "+15005550006",
                      "Body": "Hi there"}).encode()
    result = adapter.parse(WebhookRequest("POST", "https://x/webhooks/k",
                                          {"content-type": "application/x-www-form-urlencoded"}, body))
    [message] = result.items
    assert message.external_id == "SM1" and message.sender.handle == "+14155550100"
    assert message.recipients[0].handle == "+15005550006" and message.parts[0].text == "Hi there"


# -- mapping v2: the shipped LINE and Sunshine mappings under hostile input ---------------------

def _example_settings(name: str) -> JsonMappingAdapter.Settings:
    import os
    import re
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "examples" / "mapping" / name).read_text()
    text = re.sub(r"\$\{([A-Z_]+)\}", lambda m: os.environ.get(m.group(1), "x-" + m.group(1).lower()), text)
    [table] = tomllib.loads(text)["channels"].values()
    table.pop("adapter")
    return JsonMappingAdapter.Settings.model_validate(table)


_EXAMPLES = {name: _example_settings(name) for name in ("line.toml", "sunshine.toml")}
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["message", "follow", "user", "image", "line",
                                              "conversation:message", "text"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["events", "type", "message", "source", "userId", "id", "text", "payload",
                         "author", "content", "webhookEventId", "contentProvider", "mediaUrl",
                         "conversation", "timestamp", "createdAt"]) | st.text(max_size=6),
        children, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.sampled_from(sorted(_EXAMPLES)), _json.map(orjson.dumps) | st.binary(max_size=200))
def test_example_mappings_never_crash(name: str, body: bytes) -> None:
    """Every body ends in items, per-event failures or a typed error — never anything else."""
    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    adapter = JsonMappingAdapter(_EXAMPLES[name], AdapterContext(key="k", public_url="https://x", http=None,  # type: ignore[arg-type]
                                                                 kv=MemoryKV()))
    request = WebhookRequest("POST", "https://x/webhooks/k", {"content-type": "application/json",
                                                              "x-line-signature": "AAAA", "x-api-key": "k"}, body)
    for step in (adapter.verify, adapter.parse, adapter.explain):
        try:
            step(request)
        except OmnichannelError:
            pass


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(max_size=30))
def test_path_compilation_fails_only_with_value_errors(expression: str) -> None:
    from omnichannel_sdk._mapping._paths import Template, compile_path

    for build in (compile_path, Template):
        try:
            built = build(expression)
        except ValueError:
            continue
        if isinstance(built, Template):
            built.render({"a": 1})
        else:
            built.search({"a": [1, {"b": None}]})


def test_dotted_paths_of_0_1_0_are_translated() -> None:
    from omnichannel_sdk._mapping._paths import compile_path, migrate_dotted

    assert migrate_dotted("entries.0.text") == "entries[0].text"
    assert migrate_dotted("body-plain") == '"body-plain"'
    assert compile_path("a.b.-1.c").expression == "a.b[-1].c"
    assert compile_path("events[?type == 'message'].id").search(
        {"events": [{"type": "message", "id": 1}, {"type": "x", "id": 2}]}) == [1]
