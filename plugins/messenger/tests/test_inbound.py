"""Signature, handshake and the parser on Meta's documented payload shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from omnichannel_messenger import InstagramAdapter, MessengerAdapter, sign_body, signature_matches

from omnichannel_sdk import (
    AdapterContext,
    EventPart,
    InboundMessage,
    LocationPart,
    MediaPart,
    SignatureError,
    StatusUpdate,
    TextPart,
    UnparseablePayloadError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL

SAMPLES = Path(__file__).parent / "samples"
SECRET = "inbound-secret"
PAGE = "104417652291850"
PSID = "6543210987654321"
URL = f"{PUBLIC_URL}/webhooks/fb"


def adapter(cls: type = MessengerAdapter, **extra: Any) -> MessengerAdapter:
    settings = cls.Settings.model_validate({"app_secret": SECRET, "verify_token": "vt-123",
                                            "page_access_token": "tok", **extra})
    return cls(settings, AdapterContext(key="fb", public_url=PUBLIC_URL, http=httpx.AsyncClient(),
                                        kv=None))  # type: ignore[arg-type]


def request(body: bytes | dict[str, Any], secret: str = SECRET) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return WebhookRequest("POST", URL, {"content-type": "application/json",
                                        "X-Hub-Signature-256": sign_body(secret, raw)}, raw)


def sample(name: str, folder: str = "messenger") -> bytes:
    return (SAMPLES / folder / f"{name}.json").read_bytes()


def parse(name: str, folder: str = "messenger", **extra: Any) -> list[InboundMessage | StatusUpdate]:
    cls = InstagramAdapter if folder == "instagram" else MessengerAdapter
    result = adapter(cls, **extra).parse(request(sample(name, folder)))
    assert result.failures == []
    return result.items


def page_body(*events: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": list(events)}]}


def event(**fields: Any) -> dict[str, Any]:
    return {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1732300000000, **fields}


# -- signature -------------------------------------------------------------------------------------


def test_signature_over_exact_bytes() -> None:
    raw = sample("text")
    a = adapter()
    a.verify(request(raw))
    # the same JSON re-serialised is other bytes: refused
    with pytest.raises(SignatureError):
        a.verify(WebhookRequest("POST", URL, {"x-hub-signature-256": sign_body(SECRET, raw)},
                                orjson.dumps(orjson.loads(raw))))


@pytest.mark.parametrize("header", [None, "", "sha256=", "sha1=abc", "sha256=zz", "deadbeef"])
def test_bad_or_missing_signature(header: str | None) -> None:
    headers = {} if header is None else {"x-hub-signature-256": header}
    with pytest.raises(SignatureError):
        adapter().verify(WebhookRequest("POST", URL, headers, b"{}"))


def test_wrong_secret_refused() -> None:
    with pytest.raises(SignatureError):
        adapter().verify(request(sample("text"), secret="someone-else"))


def test_signature_prefix_case_insensitive() -> None:
    raw = b'{"object":"page","entry":[]}'
    value = sign_body(SECRET, raw).replace("sha256=", "SHA256=")
    assert signature_matches(SECRET, raw, value)
    assert not signature_matches("", raw, value)


# -- handshake -------------------------------------------------------------------------------------


def test_handshake_answers_challenge() -> None:
    response = adapter().handshake(WebhookRequest(
        "GET", f"{URL}?hub.mode=subscribe&hub.verify_token=vt-123&hub.challenge=1158201444"))
    assert response.status == 200 and response.body == b"1158201444"


@pytest.mark.parametrize("query", [
    "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
    "hub.mode=unsubscribe&hub.verify_token=vt-123&hub.challenge=1",
    "hub.verify_token=vt-123&hub.challenge=1",
    "hub.mode=subscribe&hub.challenge=1",
    "",
])
def test_handshake_refused(query: str) -> None:
    with pytest.raises(SignatureError):
        adapter().handshake(WebhookRequest("GET", f"{URL}?{query}"))


def test_handshake_without_challenge_is_400() -> None:
    response = adapter().handshake(WebhookRequest("GET", f"{URL}?hub.mode=subscribe&hub.verify_token=vt-123"))
    assert response.status == 400


# -- envelope --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"{nope", b"[]", b'{"object": "page"}', b'{"object": "instagram", "entry": []}',
    b'{"object": "page", "entry": {}}'])
def test_unparseable_envelopes(body: bytes) -> None:
    with pytest.raises(UnparseablePayloadError):
        adapter().parse(request(body))


def test_instagram_adapter_wants_instagram_objects() -> None:
    with pytest.raises(UnparseablePayloadError):
        adapter(InstagramAdapter).parse(request(sample("text")))


# -- messages --------------------------------------------------------------------------------------


def test_text_message() -> None:
    [msg] = parse("text")
    assert isinstance(msg, InboundMessage)
    assert msg.external_id == "m_AbC1xYz-text-0001"
    assert msg.sender.handle == PSID and msg.sender.channel == "messenger"
    assert [r.handle for r in msg.recipients] == [PAGE]
    assert msg.parts == [TextPart(text="Hello, is anyone there?")]
    assert msg.created_at == datetime.fromtimestamp(1732300000, UTC)
    assert msg.direction == "inbound"
    assert msg.thread_key == f"{PSID}|"
    assert msg.metadata["page_id"] == PAGE


def test_thread_key_uses_configured_page() -> None:
    [msg] = parse("text", page_id=PAGE)
    assert msg.thread_key == f"{PSID}|{PAGE}"
    a = adapter(page_id=PAGE)
    assert a.thread_key_for(msg.sender) == msg.thread_key
    assert a.own_address() is not None and a.own_address().handle == PAGE  # type: ignore[union-attr]


def test_batch_every_event_of_every_entry() -> None:
    items = parse("batch")
    messages = [i for i in items if isinstance(i, InboundMessage)]
    receipts = [i for i in items if isinstance(i, StatusUpdate)]
    assert [m.external_id for m in messages] == ["m_batch-0001", "m_batch-0002", "m_batch-0003"]
    quick = messages[0]
    assert quick.parts[0] == TextPart(text="Track my order")
    assert quick.parts[1] == EventPart(name="postback", data={
        "payload": "TRACK_ORDER", "source": "quick_reply", "title": "Track my order"})
    assert messages[1].references == ["m_batch-0001"]
    assert messages[2].sender.handle == "7777000011112222"
    assert [(r.external_id, r.status) for r in receipts[:2]] == [("m_out-0001", "delivered"),
                                                                ("m_out-0002", "delivered")]
    watermark = receipts[2]
    assert watermark.external_id is None and watermark.status == "delivered"
    assert watermark.watermark == datetime.fromtimestamp(1732300100.6, UTC)
    assert watermark.recipient is not None and watermark.recipient.handle == PSID


def test_one_broken_event_never_drops_the_others() -> None:
    body = page_body(
        event(message={"mid": "m_ok-1", "text": "first"}),
        event(message={"text": "no mid"}),
        "not even an object",
        event(message={"mid": "m_ok-2", "text": "second"}),
        {"recipient": {"id": PAGE}, "timestamp": 1, "message": {"mid": "m_x", "text": "no sender"}},
        event(delivery={"watermark": "soon"}),
    )
    body["entry"].append("broken entry")
    body["entry"].append({"id": PAGE, "time": 1,
                          "messaging": [event(message={"mid": "m_ok-3", "text": "3"})]})
    result = adapter().parse(request(body))
    assert [i.external_id for i in result.items] == ["m_ok-1", "m_ok-2", "m_ok-3"]  # type: ignore[union-attr]
    assert len(result.failures) == 5
    assert result.failures[0].fragment == body["entry"][0]["messaging"][1]
    assert "mid" in result.failures[0].error


def test_attachments() -> None:
    media, location, fallback, sticker = parse("attachments")
    assert isinstance(media, InboundMessage)
    kinds = [(p.kind, p.url.split("/")[2]) for p in media.parts if isinstance(p, MediaPart) and p.url]
    assert kinds == [("image", "scontent.xx.fbcdn.net"), ("audio", "cdn.fbsbx.com"),
                     ("video", "video.xx.fbcdn.net"), ("file", "cdn.fbsbx.com")]
    assert isinstance(location, InboundMessage)
    [point] = location.parts
    assert isinstance(point, LocationPart) and point.latitude == pytest.approx(52.520008)
    assert point.longitude == pytest.approx(13.404954) and point.label == "Pinned Location"
    assert isinstance(fallback, InboundMessage)
    assert fallback.parts[0] == TextPart(text="look at this https://example.com/product/42")
    assert isinstance(fallback.parts[1], TextPart) and "Product 42" in fallback.parts[1].text
    assert isinstance(sticker, InboundMessage)
    assert [p.kind for p in sticker.parts if isinstance(p, MediaPart)] == ["sticker"]  # one, not two
    assert sticker.metadata["sticker_id"] == "369239263222822"


def test_old_style_sticker_is_an_image_with_sticker_id() -> None:
    body = page_body(event(message={"mid": "m_st", "attachments": [
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/s.png", "sticker_id": 1}}]}))
    [msg] = adapter().parse(request(body)).items
    assert isinstance(msg, InboundMessage) and msg.parts[0].kind == "sticker"  # type: ignore[union-attr]


def test_postback() -> None:
    [msg] = parse("postback")
    assert isinstance(msg, InboundMessage)
    assert msg.external_id == "postback:m_postback-0001:1732300300100"
    assert msg.parts[0] == EventPart(name="postback", data={
        "payload": "HUMAN", "title": "Talk to a person", "source": "button"})
    assert msg.parts[1] == EventPart(name="referral", data={
        "ref": "spring-sale", "source": "SHORTLINK", "type": "OPEN_THREAD"})


def test_postback_timestamp_in_seconds_as_string() -> None:
    body = page_body({"sender": {"user_ref": "ref-1"}, "recipient": {"id": PAGE},
                      "timestamp": "1527459824", "postback": {"title": "Get Started", "payload": "GO"}})
    [msg] = adapter().parse(request(body)).items
    assert isinstance(msg, InboundMessage)
    assert msg.created_at == datetime.fromtimestamp(1527459824, UTC)
    assert msg.sender.handle == "user_ref:ref-1" and msg.external_id.startswith("postback:user_ref:ref-1:")


def test_reaction_refers_to_the_message() -> None:
    [msg] = parse("reaction")
    assert isinstance(msg, InboundMessage)
    assert msg.references == ["m_out-0001"]
    assert msg.parts == [EventPart(name="reaction", data={
        "reaction": "love", "emoji": "\u2764\ufe0f", "action": "react", "mid": "m_out-0001"})]
    # a retry of the same event has the same id; another reaction does not
    again = parse("reaction")[0]
    assert again.external_id == msg.external_id  # type: ignore[union-attr]


def test_read_watermark() -> None:
    [receipt] = parse("read")
    assert isinstance(receipt, StatusUpdate) and receipt.status == "read"
    assert receipt.watermark == datetime.fromtimestamp(1732300500.3, UTC)
    assert receipt.recipient is not None and receipt.recipient.handle == PSID


def test_echo_from_page_inbox_is_outbound_by_a_human() -> None:
    [msg] = parse("echo_inbox")
    assert isinstance(msg, InboundMessage)
    assert msg.direction == "outbound" and msg.status == "sent"
    assert msg.sender.handle == PAGE and [r.handle for r in msg.recipients] == [PSID]
    assert msg.thread_key == f"{PSID}|"  # the customer's thread
    assert msg.author is not None and msg.author.kind == "human"
    assert msg.metadata["app_id"] == "263902037430900"


def test_echo_from_another_app_is_a_bot() -> None:
    body = page_body({"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": 1732300000000,
                      "message": {"mid": "m_e", "is_echo": True, "app_id": 1517776481860111,
                                  "metadata": "their-tag", "text": "auto answer"}})
    [msg] = adapter().parse(request(body)).items
    assert isinstance(msg, InboundMessage) and msg.author is not None
    assert msg.author.kind == "bot" and msg.author.id == "1517776481860111"


def test_echo_of_our_own_send_is_skipped() -> None:
    body = page_body({"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": 1732300000000,
                      "message": {"mid": "m_ours", "is_echo": True, "app_id": 1,
                                  "metadata": "omni:msg_123", "text": "our reply"}})
    result = adapter().parse(request(body))
    assert result.items == [] and result.failures == []


def test_referral_and_standby_and_handover() -> None:
    [ref] = parse("referral")
    assert isinstance(ref, InboundMessage) and ref.parts[0].name == "referral"  # type: ignore[union-attr]
    standby, handover = parse("standby_handover")
    assert isinstance(standby, InboundMessage) and isinstance(handover, InboundMessage)
    assert standby.parts == [TextPart(text="Are you still there?"), EventPart(name="standby")]
    assert standby.metadata["standby"] is True
    assert handover.parts[0] == EventPart(name="pass_thread_control", data={
        "previous_owner_app_id": "1517776481860111", "new_owner_app_id": "263902037430900",
        "metadata": "customer asked for a person"})


def test_message_edit_and_unknown_events_kept() -> None:
    body = page_body(
        event(message_edit={"mid": "m_1", "text": "fixed typo", "num_edit": 1}),
        event(optin={"type": "notification_messages", "payload": "x", "notification_messages_token": "t",
                     "notification_messages_status": "STOP_NOTIFICATIONS"}),
        event(some_future_event={"a": 1}),
    )
    edit, optin, future = adapter().parse(request(body)).items
    assert isinstance(edit, InboundMessage) and edit.external_id == "edit:m_1:1"
    assert edit.references == ["m_1"] and edit.parts[0].name == "edit"  # type: ignore[union-attr]
    assert isinstance(optin, InboundMessage) and optin.parts[0].name == "optin"  # type: ignore[union-attr]
    assert isinstance(future, InboundMessage) and future.parts[0].name == "some_future_event"  # type: ignore[union-attr]


def test_dashboard_test_changes_shape() -> None:
    body = {"object": "page", "entry": [{"id": "0", "time": 1, "changes": [
        {"field": "messages", "value": event(message={"mid": "m_test", "text": "test"})}]}]}
    [msg] = adapter().parse(request(body)).items
    assert msg.external_id == "m_test"  # type: ignore[union-attr]


# -- instagram -------------------------------------------------------------------------------------


def test_instagram_text() -> None:
    [msg] = parse("text", "instagram")
    assert isinstance(msg, InboundMessage) and msg.sender.channel == "instagram"
    assert msg.parts == [TextPart(text="Do you ship to Canada?")]


def test_instagram_story_reply_and_mention() -> None:
    reply, mention = parse("story_reply", "instagram")
    assert isinstance(reply, InboundMessage) and isinstance(mention, InboundMessage)
    assert reply.metadata["reply_to_story"]["id"] == "17900000000000000"
    assert reply.references == []
    [media] = mention.parts
    assert isinstance(media, MediaPart) and media.kind == "image" and media.caption == "story mention"
    assert mention.metadata["story_mention"] is True


def test_instagram_seen_by_mid() -> None:
    [receipt] = parse("seen", "instagram")
    assert isinstance(receipt, StatusUpdate)
    assert receipt.status == "read"
    assert receipt.external_id == "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA5"


def test_instagram_unsend_is_an_event() -> None:
    body = {"object": "instagram", "entry": [{"id": "1784", "time": 1, "messaging": [
        {"sender": {"id": "99"}, "recipient": {"id": "1784"}, "timestamp": 1732300000000,
         "message": {"mid": "m_gone", "is_deleted": True}}]}]}
    [msg] = adapter(InstagramAdapter).parse(request(body)).items
    assert isinstance(msg, InboundMessage) and msg.external_id == "deleted:m_gone"
    assert msg.parts == [EventPart(name="deleted", data={"mid": "m_gone"})]
