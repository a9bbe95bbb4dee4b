"""The pure parser: envelopes, per-item failures, every field's odd cases (no hub, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from omnichannel_whatsapp import WhatsAppAdapter, sign_body

from omnichannel_sdk import (
    AdapterContext,
    EventPart,
    InboundMessage,
    MediaPart,
    ParseResult,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL

SAMPLES = Path(__file__).parent / "samples"
PNID = "106540352242922"
SECRET = "inbound-app-secret"


def make() -> WhatsAppAdapter:
    settings = WhatsAppAdapter.Settings.model_validate({
        "app_secret": SECRET, "verify_token": "v", "access_token": "t", "phone_number_id": PNID,
        "api_version": "v22.0"})
    return WhatsAppAdapter(settings, AdapterContext(key="wa", public_url=PUBLIC_URL, http=httpx.AsyncClient(),
                                                    kv=None))  # type: ignore[arg-type]


ADAPTER = make()


def request(body: Any) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/wa", {"content-type": "application/json",
                                                                "x-hub-signature-256": sign_body(SECRET, raw)}, raw)


def value(**fields: Any) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
        **fields}}]}]}


def parse(body: Any) -> ParseResult:
    return ADAPTER.parse(request(body))


def one(body: Any) -> InboundMessage:
    result = parse(body)
    assert not result.failures, result.failures
    [item] = result.items
    assert isinstance(item, InboundMessage)
    return item


def message(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {"from": "16505551234", "id": "wamid.X1", "timestamp": "1733004000", "type": kind, kind: content, **extra}


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{\x00}", b"[]", b'{"object": "page", "entry": []}',
                                  b'{"object": "whatsapp_business_account"}',
                                  b'{"object": "whatsapp_business_account", "entry": {}}'])
def test_bad_envelopes_are_unparseable(body: bytes) -> None:
    with pytest.raises(UnparseablePayloadError):
        parse(body)


def test_signature_header_rules() -> None:
    raw = orjson.dumps(value(messages=[message("text", {"body": "hi"})]))
    good = request(raw)
    ADAPTER.verify(good)
    for header in ("", "sha1=" + sign_body(SECRET, raw)[7:], sign_body(SECRET, raw)[:-2], "sha256=zz",
                   sign_body("other", raw)):
        with pytest.raises(SignatureError):
            ADAPTER.verify(WebhookRequest("POST", good.url, {"x-hub-signature-256": header}, raw))
    with pytest.raises(SignatureError):
        ADAPTER.verify(WebhookRequest("POST", good.url, {}, raw))
    with pytest.raises(SignatureError):  # a truncated body no longer matches its signature
        ADAPTER.verify(WebhookRequest("POST", good.url, good.headers, raw[:-10]))


def test_other_fields_are_skipped_and_broken_changes_fail_alone() -> None:
    body = value(messages=[message("text", {"body": "kept"})])
    body["entry"][0]["changes"] += [
        {"field": "message_template_status_update", "value": {"event": "APPROVED", "message_template_id": 1}},
        {"field": "messages", "value": "not an object"},
        {"field": "messages", "value": {"metadata": {"phone_number_id": PNID}}},
    ]
    body["entry"].append({"id": "2"})
    result = parse(body)
    assert [i.external_id for i in result.items] == ["wamid.X1"]
    errors = sorted(f.error for f in result.failures)
    assert errors == ["change without a value object", "entry has no changes list",
                      "value has neither messages nor statuses"]


def test_webhook_level_errors_are_kept_as_failures() -> None:
    result = parse(value(errors=[{"code": 131000, "title": "Something went wrong",
                                  "error_data": {"details": "Failed to process"}}]))
    [failure] = result.failures
    assert "Something went wrong" in failure.error and failure.fragment["code"] == 131000


def test_media_urls_name_the_media_object_of_our_api_version() -> None:
    item = one(value(messages=[message("document", {"id": "1071794134213637", "filename": "a.pdf",
                                                    "mime_type": "application/pdf", "sha256": "abc"})]))
    [part] = item.parts
    assert isinstance(part, MediaPart) and part.url == "https://graph.facebook.com/v22.0/1071794134213637"
    assert part.kind == "file" and part.filename == "a.pdf" and item.metadata["media_sha256"]


@pytest.mark.parametrize("bad", [
    message("image", {"id": "../../me/accounts"}),
    message("image", {"caption": "no id"}),
    message("text", {"body": ""}),
    message("text", "not an object"),
    message("location", {"latitude": 123.0, "longitude": 0}),
    message("location", {"latitude": "north"}),
    message("contacts", []),
    message("reaction", {"emoji": "x"}),
    message("interactive", {"type": "button_reply", "button_reply": {"title": "no id"}}),
    {**message("text", {"body": "x"}), "from": "not-a-number"},
    {**message("text", {"body": "x"}), "from": "12"},
    {**message("text", {"body": "x"}), "timestamp": "yesterday"},
    {**message("text", {"body": "x"}), "timestamp": "99999999999999999999"},
    {**message("text", {"body": "x"}), "id": {"nested": 1}},
    {**message("text", {"body": "x"}), "id": "w" * 300},
    {**message("text", {"body": "x"}), "context": "oops"},
])
def test_a_broken_message_fails_alone(bad: dict[str, Any]) -> None:
    result = parse(value(messages=[bad, {**message("text", {"body": "fine"}), "id": "wamid.OK"}]))
    assert [i.external_id for i in result.items] == ["wamid.OK"]
    assert len(result.failures) == 1 and result.failures[0].fragment == bad


def test_reaction_removed_and_milliseconds() -> None:
    item = one(value(messages=[message("reaction", {"message_id": "wamid.OUT1"}, timestamp=1733004000123)]))
    [event] = item.parts
    assert isinstance(event, EventPart) and event.data == {"message_id": "wamid.OUT1", "emoji": "", "action": "unreact"}
    assert item.references == ["wamid.OUT1"]
    assert item.created_at == datetime(2024, 11, 30, 22, 0, 0, 123000, tzinfo=UTC)


def test_profile_names_are_matched_by_wa_id() -> None:
    body = value(contacts=[{"profile": {"name": "Other"}, "wa_id": "447700900123"},
                           {"profile": {"name": " Sheena "}, "wa_id": "16505551234"}, "junk",
                           {"profile": {"name": 7}, "wa_id": "1"}],
                 messages=[message("text", {"body": "hi"})])
    item = one(body)
    assert item.sender.display_name == "Sheena" and item.profile == {"whatsapp": {"wa_id": "16505551234",
                                                                                  "name": "Sheena"}}
    nameless = one(value(messages=[message("text", {"body": "hi"})]))
    assert nameless.sender.display_name is None and nameless.profile == {}


def test_unknown_types_are_kept_as_events() -> None:
    item = one(value(messages=[message("hologram", {"depth": 3})]))
    [event] = item.parts
    assert isinstance(event, EventPart) and event.name == "hologram" and event.data["hologram"] == {"depth": 3}
    flow = one(value(messages=[message("interactive", {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": "{\"a\": 1}"}})]))
    assert flow.parts[0].type == "event" and flow.parts[0].name == "flow_reply"  # type: ignore[union-attr]
    forwarded = one(value(messages=[message("text", {"body": "fw"}, context={"forwarded": True})]))
    assert forwarded.metadata["forwarded"] is True and forwarded.references == []


def test_statuses() -> None:
    result = parse(value(statuses=[
        {"id": "wamid.S1", "status": "failed", "timestamp": "1733004000", "recipient_id": "16505551234"},
        {"id": "wamid.S2", "status": "deleted", "timestamp": "1733004000"},
        {"id": "wamid.S3", "status": "read"},
        {"status": "sent"},
    ]))
    s1, s3 = result.items
    assert isinstance(s1, StatusUpdate) and s1.status == "failed" and s1.error is not None
    assert s1.error.code == "undelivered" and s1.metadata["recipient_id"] == "16505551234"
    assert isinstance(s3, StatusUpdate) and s3.status == "read" and s3.error is None
    assert sorted(f.error.split(":")[0] for f in result.failures) == ["_Bad", "_Bad"]


def test_every_sample_parses_to_what_it_shows() -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        result = ADAPTER.parse(request(path.read_bytes()))
        assert not result.failures, path.name
        assert result.items, path.name
        for item in result.items:
            if isinstance(item, InboundMessage):
                assert item.parts and item.created_at is not None
                assert item.thread_key == f"{item.sender.handle}|{PNID}"
    batch = ADAPTER.parse(request((SAMPLES / "batch.json").read_bytes()))
    kinds = [type(i).__name__ for i in batch.items]
    assert kinds == ["InboundMessage", "InboundMessage", "InboundMessage", "StatusUpdate", "InboundMessage"]
    text = ADAPTER.parse(request((SAMPLES / "text.json").read_bytes())).items[0]
    assert isinstance(text, InboundMessage) and isinstance(text.parts[0], TextPart)
