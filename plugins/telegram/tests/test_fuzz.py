"""Hostile input on the parse path (fixed seed): whatever arrives, parse gives messages, failures
or an UnparseablePayloadError — never another exception, never a half-built message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_telegram import TelegramAdapter
from omnichannel_telegram.testing import EXAMPLE_BOT_TOKEN as BOT_TOKEN
from omnichannel_telegram.testing import update_request

from omnichannel_sdk import AdapterContext, InboundMessage, UnparseablePayloadError, WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL, MemoryKV

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    return update_request(body, f"{PUBLIC_URL}/webhooks/{key}", secret)

_ADAPTER = TelegramAdapter(TelegramAdapter.Settings.model_validate(SETTINGS),
                           AdapterContext(key="fuzz", public_url="https://x.test", http=None,  # type: ignore[arg-type]
                                          kv=MemoryKV()))
_SAMPLES = [orjson.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]
_KEYS = ["update_id", "message", "edited_message", "callback_query", "my_chat_member", "message_id",
         "chat", "id", "type", "from", "date", "text", "photo", "file_id", "file_size", "width", "height",
         "document", "voice", "audio", "video", "sticker", "location", "latitude", "longitude", "venue",
         "contact", "data", "reply_markup", "inline_keyboard", "callback_data", "old_chat_member",
         "new_chat_member", "status", "edit_date", "reply_to_message", "caption", "emoji", "is_video"]
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64 - 1),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["kicked", "member", "private", "supergroup", "\x00", "\ud7ff"]))
_JSON = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6)), max_leaves=25)
_FUZZ = settings(derandomize=True, max_examples=400, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _parse(raw: bytes) -> None:
    try:
        result = _ADAPTER.parse(update(raw, "fuzz"))
    except UnparseablePayloadError:
        return
    for item in result.items:
        assert isinstance(item, InboundMessage) and item.external_id and item.sender.handle
        orjson.dumps(item.model_dump(mode="json"))  # storable as JSON
    for failure in result.failures:
        assert failure.error
    assert not (result.items and result.failures)


def _mutate(value: Any, path: list[int], replacement: Any) -> Any:
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate(value[key], path[1:], replacement)  # type: ignore[index]
    return copy


@_FUZZ
@given(_JSON)
def test_any_json(body: Any) -> None:
    _parse(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS) if _jsonable(body) else b"{}")


@_FUZZ
@given(st.sampled_from(_SAMPLES), st.lists(st.integers(0, 50), min_size=1, max_size=6), _JSON)
def test_documented_updates_with_one_field_broken(sample: Any, path: list[int], replacement: Any) -> None:
    body = _mutate(sample, path, replacement)
    if _jsonable(body):
        _parse(orjson.dumps(body))


@_FUZZ
@given(st.binary(max_size=200))
def test_any_bytes(raw: bytes) -> None:
    _parse(raw)


@_FUZZ
@given(st.sampled_from([p.read_bytes() for p in sorted(SAMPLES.glob("*.json"))]), st.integers(0, 10_000))
def test_truncated_bodies(raw: bytes, cut: int) -> None:
    _parse(raw[: cut % max(1, len(raw))])


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True
