"""The sans-IO parse of Telegram updates, and the adapter's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from omnichannel_telegram import TelegramAdapter, parse_update
from omnichannel_telegram.testing import EXAMPLE_BOT_TOKEN as BOT_TOKEN
from omnichannel_telegram.testing import update_request
from pydantic import ValidationError

from omnichannel_sdk import (
    AdapterContext,
    Address,
    ConfigurationError,
    EventPart,
    Hub,
    InboundMessage,
    MediaPart,
    SignatureError,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL, MemoryKV

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    return update_request(body, f"{PUBLIC_URL}/webhooks/{key}", secret)

BOT = Address(channel="telegram", handle="123456")


def adapter(**settings: str) -> TelegramAdapter:
    values = TelegramAdapter.Settings.model_validate({**SETTINGS, **settings})
    return TelegramAdapter(values, AdapterContext(key="tg", public_url="https://x.test", http=None,  # type: ignore[arg-type]
                                                  kv=MemoryKV()))


def one(name: str) -> InboundMessage:
    result = parse_update(orjson.loads(sample(name)), adapter="telegram", channel="telegram", own=BOT)
    assert not result.failures
    [item] = result.items
    assert isinstance(item, InboundMessage)
    return item


def test_text_message() -> None:
    item = one("text")
    assert item.external_id == "111222333:501"
    assert item.sender == Address(channel="telegram", handle="111222333", display_name="Ana Lima")
    assert item.recipients == [BOT]
    assert item.metadata == {"chat_type": "private", "update_id": 804001001, "message_id": 501,
                             "entities": [{"offset": 15, "length": 5, "type": "hashtag"}]}
    assert item.profile == {"locale": "pt-br"}
    assert item.created_at is not None and item.created_at.timestamp() == 1764590901


def test_photo_takes_the_largest_size() -> None:
    [part] = one("photo").parts
    assert isinstance(part, MediaPart)
    assert (part.url, part.size, part.kind) == ("telegram-file:AgACAgQAAxkBAAIBA2Ys_large", 87564, "image")


def test_photo_largest_by_pixels_when_sizes_are_unknown() -> None:
    body = orjson.loads(sample("photo"))
    for size in body["message"]["photo"]:
        del size["file_size"]
    body["message"]["photo"].reverse()
    [item] = parse_update(body, adapter="telegram", channel="telegram").items
    assert isinstance(item, InboundMessage) and isinstance(item.parts[0], MediaPart)
    assert item.parts[0].url is not None and item.parts[0].url.endswith("_large")


def test_reply_references_the_answered_message() -> None:
    assert one("reply").references == ["111222333:77"]


def test_edit_is_marked_and_keyed_like_the_original() -> None:
    item = one("edited_message")
    assert item.external_id == one("text").external_id
    assert item.metadata["edited"] is True and item.metadata["edit_date"] == 1764590999


def test_callback_query_answer_and_action() -> None:
    result = parse_update(orjson.loads(sample("callback_query")), adapter="telegram", channel="telegram")
    [item] = result.items
    assert isinstance(item, InboundMessage)
    assert item.parts == [EventPart(name="action", data={"id": "track", "title": "Track my order",
                                                         "kind": "reply", "value": None,
                                                         "callback_data": "track"})]
    assert item.references == ["111222333:78"]
    assert result.response is not None and orjson.loads(result.response.body) == {
        "method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9"}


def test_block_and_unblock() -> None:
    assert one("blocked").parts == [EventPart(name="opt_out", data={"old": "member", "new": "kicked"})]
    assert one("unblocked").parts == [EventPart(name="opt_in", data={"old": "kicked", "new": "member"})]


def test_group_message_belongs_to_the_group() -> None:
    item = one("group_text")
    assert item.sender.handle == "-1001234567890" and item.profile == {}
    assert item.metadata["from"]["username"] == "rui_ops"


def test_unknown_content_and_update_kinds_are_kept() -> None:
    dice = {"update_id": 9, "message": {"message_id": 3, "chat": {"id": 5, "type": "private"},
                                        "date": 1, "dice": {"emoji": "🎲", "value": 4}}}
    [item] = parse_update(dice, adapter="telegram", channel="telegram").items
    assert isinstance(item, InboundMessage) and item.parts == [
        EventPart(name="dice", data={"emoji": "🎲", "value": 4})]
    bare = {"update_id": 9, "message": {"message_id": 3, "chat": {"id": 5, "type": "private"}, "date": 1,
                                        "some_future_field": {"x": 1}}}
    [item] = parse_update(bare, adapter="telegram", channel="telegram").items
    assert isinstance(item, InboundMessage) and item.parts[0].type == "event"
    # an update kind that is no conversation: acknowledged, nothing threaded (the raw is kept)
    result = parse_update({"update_id": 10, "inline_query": {"id": "1"}}, adapter="telegram", channel="telegram")
    assert result.items == [] and result.failures == []


@pytest.mark.parametrize("body", [
    {"update_id": 1, "message": {"message_id": 1, "chat": "x"}},
    {"update_id": 1, "message": {"message_id": "1", "chat": {"id": 1}}},
    {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "photo": [{"width": 1}]}},
    {"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "location": {"latitude": 91, "longitude": 0}}},
    {"update_id": 1, "callback_query": {"from": {"id": 1}}},
    {"update_id": 1, "my_chat_member": {"chat": {"id": 1}, "old_chat_member": None}},
])
def test_broken_content_is_a_failure(body: dict[str, object]) -> None:
    result = parse_update(body, adapter="telegram", channel="telegram")
    assert result.items == [] and len(result.failures) == 1 and result.response is None


@pytest.mark.parametrize("body", [[], "x", {"message": {}}, {"update_id": "1"}, {"update_id": True}])
def test_not_an_update(body: object) -> None:
    with pytest.raises(UnparseablePayloadError):
        parse_update(body, adapter="telegram", channel="telegram")


def test_verify_constant_time_header() -> None:
    bot = adapter()
    bot.verify(update(sample("text")))
    for secret in (None, "", SECRET[:-1], SECRET + " ", "x" * 300):
        with pytest.raises(SignatureError):
            bot.verify(update(sample("text"), secret=secret))


def test_settings_refuse_bad_values_without_echoing_them() -> None:
    for field, value in (("bot_token", "not-a-token"), ("secret_token", "has spaces"),
                         ("secret_token", "x" * 257), ("secret_token", "")):
        with pytest.raises(ValidationError) as info:
            TelegramAdapter.Settings.model_validate({**SETTINGS, field: value})
        assert field in str(info.value)
    settings = TelegramAdapter.Settings.model_validate(SETTINGS)
    assert BOT_TOKEN not in repr(settings) and SECRET not in repr(settings)


def test_own_address_is_the_bot_id() -> None:
    assert adapter().own_address() == BOT


def test_config_error_names_the_field_not_the_value() -> None:
    with pytest.raises(ConfigurationError) as info:
        Hub.from_config({"channels": {"tg": {"adapter": "telegram", "bot_token": "oops-secret-value",
                                             "secret_token": SECRET}}})
    assert "tg" in str(info.value) and "bot_token" in str(info.value)
    assert "oops-secret-value" not in str(info.value)


def test_omnichannel_normalize_needs_no_secrets() -> None:
    import json

    from typer.testing import CliRunner

    from omnichannel_sdk._cli import app

    result = CliRunner().invoke(app, ["normalize", "--adapter", "telegram", str(SAMPLES / "photo.json")])
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.output)["items"]
    assert item["external_id"] == "111222333:503" and item["parts"][0]["url"].endswith("_large")


def test_httpx_lines_of_a_bare_adapter_hide_the_token(caplog: pytest.LogCaptureFixture) -> None:
    # the core's redaction, installed by the adapter itself (no hub around it)
    import logging

    import omnichannel_telegram

    import omnichannel_sdk

    adapter()
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info("HTTP Request: POST %s \"HTTP/1.1 200 OK\"",
                                        f"https://api.telegram.org/bot{BOT_TOKEN}/sendMessage")
    assert BOT_TOKEN.split(":")[1] not in caplog.text
    assert "/bot<redacted>/sendMessage" in caplog.text
    assert omnichannel_telegram.redact is omnichannel_sdk.redact
