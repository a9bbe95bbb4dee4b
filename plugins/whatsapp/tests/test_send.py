"""Outbound: the message objects built from parts, and the adapter's Cloud API calls (respx)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_whatsapp import (
    MEDIA_ID_SCHEME,
    MarketingOptOutError,
    NotOnWhatsAppError,
    ReengagementRequiredError,
    UnsupportedMessageTypeError,
    WhatsAppAdapter,
    build_messages,
    error_for_code,
    graph_error,
    status_error,
    template_object,
)

from omnichannel_sdk import (
    Action,
    ActionsPart,
    AdapterContext,
    Address,
    AuthenticationError,
    EventPart,
    LocationPart,
    MediaPart,
    MemoryBlobStore,
    Message,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    TemplatePart,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
    UnsupportedFeatureError,
    WindowClosedError,
    render_parts,
)
from omnichannel_sdk.testing import PUBLIC_URL, MemoryKV

GRAPH = "https://graph.facebook.com/v21.0"
PNID = "106540352242922"
SEND_URL = f"{GRAPH}/{PNID}/messages"
TOKEN = "EAAG-send-access-token"
SECRET = "send-app-secret"


def built(parts: list[Part], **kwargs: Any) -> list[dict[str, Any]]:
    return build_messages(parts, graph=GRAPH, **kwargs).messages


# -- building --------------------------------------------------------------------------------------


def test_text_with_link_preview_only_when_there_is_a_link() -> None:
    assert built([TextPart(text="See https://shop.example/track/1042")]) == [
        {"type": "text", "text": {"body": "See https://shop.example/track/1042", "preview_url": True}}]
    assert built([TextPart(text="No link here")]) == [{"type": "text", "text": {"body": "No link here"}}]
    assert built([TextPart(text="https://x.example")], link_preview=False) == [
        {"type": "text", "text": {"body": "https://x.example"}}]


def test_media_by_url_by_id_and_for_upload() -> None:
    by_url = MediaPart(kind="image", url="https://cdn.example.com/p.jpg", caption="Your label")
    by_id = MediaPart(kind="file", url=f"{MEDIA_ID_SCHEME}1071794134213637", filename="invoice.pdf",
                      caption="Invoice")
    inbound = MediaPart(kind="video", url=f"{GRAPH}/1684181512497937")  # forwarding a received video
    stored = MediaPart(kind="audio", blob_key="abc", content_type="audio/ogg", caption="voice note")
    out = built([by_url, by_id, inbound, stored])
    assert out[0] == {"type": "image", "image": {"link": "https://cdn.example.com/p.jpg", "caption": "Your label"}}
    assert out[1] == {"type": "document", "document": {"id": "1071794134213637", "caption": "Invoice",
                                                       "filename": "invoice.pdf"}}
    assert out[2] == {"type": "video", "video": {"id": "1684181512497937"}}
    assert out[3]["type"] == "audio" and out[3]["_upload"] is stored
    assert out[4] == {"type": "text", "text": {"body": "voice note"}}  # audio has no caption
    with pytest.raises(UnsupportedFeatureError):
        built([MediaPart(kind="image", url="http://10.0.0.7/private.jpg")])


def test_buttons_list_link_and_numbered_fallback() -> None:
    three = [Action(id="a", title="Yes"), Action(id="b", title="No"), Action(id="c", title="Maybe")]
    result = build_messages([TextPart(text="Shall we ship it?"), ActionsPart(actions=three)], graph=GRAPH)
    [buttons] = result.messages  # the text became the buttons' body
    assert buttons["interactive"]["body"] == {"text": "Shall we ship it?"}
    assert [b["reply"] for b in buttons["interactive"]["action"]["buttons"]] == [
        {"id": "a", "title": "Yes"}, {"id": "b", "title": "No"}, {"id": "c", "title": "Maybe"}]
    assert [a["id"] for a in result.offered] == ["a", "b", "c"] and not result.numbered
    four = [*three, Action(id="d", title="Call me")]
    [listed] = built([ActionsPart(prompt="Choose", actions=four)])
    assert listed["interactive"]["type"] == "list"
    assert [r["id"] for r in listed["interactive"]["action"]["sections"][0]["rows"]] == ["a", "b", "c", "d"]
    [link] = built([ActionsPart(prompt="Track it", actions=[
        Action(id="t", title="Track", kind="url", value="https://track.example/1")])])
    assert link["interactive"]["type"] == "cta_url"
    assert link["interactive"]["action"]["parameters"] == {"display_text": "Track", "url": "https://track.example/1"}
    eleven = [Action(id=str(i), title=f"Option {i}") for i in range(11)]
    result = build_messages([ActionsPart(prompt="Pick", actions=eleven)], graph=GRAPH)
    assert result.messages[0]["type"] == "text" and result.messages[0]["text"]["body"].startswith("Pick\n1. Option 0")
    assert len(result.numbered) == 11 and not result.offered
    mixed = [Action(id="u", title="Site", kind="url", value="https://x.example"), Action(id="r", title="OK")]
    assert built([ActionsPart(actions=mixed)])[0]["type"] == "text"


def test_renderer_keeps_three_buttons_and_ten_rows_native() -> None:
    caps = WhatsAppAdapter.capabilities
    for n in (3, 10):
        part = ActionsPart(actions=[Action(id=str(i), title=f"T{i}") for i in range(n)])
        assert render_parts([part], caps).parts == [part]
    eleven = ActionsPart(actions=[Action(id=str(i), title=f"T{i}") for i in range(11)])
    rendered = render_parts([eleven], caps)
    assert rendered.parts[0].type == "text" and len(rendered.metadata["numbered_actions"]) == 11


def test_templates_with_components_and_parameters() -> None:
    simple = TemplatePart(name="order_update", language="pt_BR", params={
        "header": {"type": "image", "image": {"link": "https://cdn.example.com/banner.png"}},
        "body": ["Sheena", {"type": "currency", "currency": {"fallback_value": "$12.50", "code": "USD",
                                                              "amount_1000": 12500}}],
        "buttons": ["STOP_PROMOS", {"sub_type": "url", "index": "1", "parameters": [
            {"type": "text", "text": "A-1042"}]}]})
    assert template_object(simple, "en_US") == {"name": "order_update", "language": {"code": "pt_BR"}, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example.com/banner.png"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Sheena"}, {"type": "currency", "currency": {
            "fallback_value": "$12.50", "code": "USD", "amount_1000": 12500}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload",
                                                                                     "payload": "STOP_PROMOS"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "A-1042"}]}]}
    named = TemplatePart(name="welcome", params={"body": {"first_name": "Ravi"}})
    assert template_object(named, "en_GB")["components"] == [
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ravi"}]}]
    assert template_object(named, "en_GB")["language"] == {"code": "en_GB"}
    raw = [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}]
    assert template_object(TemplatePart(name="t", params={"components": raw}), "en_US")["components"] == raw
    assert "components" not in template_object(TemplatePart(name="hello_world"), "en_US")
    with pytest.raises(UnsupportedFeatureError):
        template_object(TemplatePart(name="t", params={"bdy": ["typo"]}), "en_US")


def test_location_transcript_and_events() -> None:
    assert built([LocationPart(latitude=51.5, longitude=-0.12, label="Depot", address="1 Road")]) == [
        {"type": "location", "location": {"latitude": 51.5, "longitude": -0.12, "name": "Depot",
                                          "address": "1 Road"}}]
    transcript = TranscriptPart(segments=[TranscriptSegment(speaker="caller", start=0, end=1, text="hi")])
    assert built([transcript])[0]["text"]["body"] == "caller: hi"
    with pytest.raises(UnsupportedFeatureError):
        built([EventPart(name="typing")])


# -- the adapter's calls ---------------------------------------------------------------------------


@pytest.fixture
async def adapter() -> AsyncIterator[WhatsAppAdapter]:
    settings = WhatsAppAdapter.Settings.model_validate({
        "app_secret": SECRET, "verify_token": "v", "access_token": TOKEN, "phone_number_id": PNID})
    async with httpx.AsyncClient() as http:
        yield WhatsAppAdapter(settings, AdapterContext(key="wa", public_url=PUBLIC_URL, http=http,
                                                       kv=MemoryKV(), blobs=MemoryBlobStore()))


def outbound(*parts: Part) -> Message:
    now = datetime.now(UTC)
    return Message(id="msg_01", channel="whatsapp", channel_key="wa", adapter="whatsapp", direction="outbound",
                   conversation_id="conv_01", sender=Address(channel="whatsapp", handle="+15550783881"),
                   recipients=[Address(channel="whatsapp", handle="+16505551234")], parts=list(parts),
                   created_at=now, received_at=now, status="queued")


def accepted(wamid: str, status: str = "accepted") -> httpx.Response:
    return httpx.Response(200, json={"messaging_product": "whatsapp",
                                     "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                                     "messages": [{"id": wamid, "message_status": status}]})


@pytest.mark.anyio
async def test_send_posts_each_message_with_the_envelope(adapter: WhatsAppAdapter) -> None:
    wamids = iter(["wamid.A", "wamid.B"])
    with respx.mock() as router:
        route = router.post(SEND_URL).mock(side_effect=lambda _r: accepted(next(wamids)))
        parts = [TextPart(text="Here is your label"), MediaPart(kind="image", url="https://cdn.example.com/l.png")]
        result = await adapter.send(outbound(*parts), parts)
    assert result.external_ids == ["wamid.A", "wamid.B"] and result.status == "sent"
    assert result.metadata["wa_id"] == "16505551234" and result.metadata["message_status"] == "accepted"
    bodies = [orjson.loads(c.request.content) for c in route.calls]
    assert all(b["messaging_product"] == "whatsapp" and b["recipient_type"] == "individual"
               and b["to"] == "+16505551234" for b in bodies)
    assert route.calls[0].request.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_held_for_quality_assessment_is_still_accepted(adapter: WhatsAppAdapter) -> None:
    with respx.mock() as router:
        router.post(SEND_URL).mock(return_value=accepted("wamid.H", "held_for_quality_assessment"))
        result = await adapter.send(outbound(TextPart(text="x")), [TextPart(text="x")])
    assert result.status == "sent" and result.metadata["message_status"] == "held_for_quality_assessment"


@pytest.mark.anyio
async def test_a_retry_does_not_send_accepted_pieces_again(adapter: WhatsAppAdapter) -> None:
    parts = [TextPart(text="one"), TextPart(text="two")]
    answers = iter([accepted("wamid.1"), httpx.Response(503), accepted("wamid.2")])
    with respx.mock() as router:
        route = router.post(SEND_URL).mock(side_effect=lambda _r: next(answers))
        with pytest.raises(ProviderError) as info:
            await adapter.send(outbound(*parts), parts)
        assert info.value.retryable
        result = await adapter.send(outbound(*parts), parts)
    assert result.external_ids == ["wamid.1", "wamid.2"]
    assert [orjson.loads(c.request.content)["text"]["body"] for c in route.calls] == ["one", "two", "two"]


@pytest.mark.anyio
async def test_stored_media_is_uploaded_once(adapter: WhatsAppAdapter) -> None:
    assert adapter.context.blobs is not None
    info = await adapter.context.blobs.put(b"OggS voice bytes")
    part = MediaPart(kind="audio", blob_key=info.key, sha256=info.sha256, content_type="audio/ogg")
    with respx.mock() as router:
        upload = router.post(f"{GRAPH}/{PNID}/media").mock(return_value=httpx.Response(200, json={"id": "4490709327384033"}))
        send = router.post(SEND_URL).mock(return_value=accepted("wamid.V"))
        await adapter.send(outbound(part), [part])
        again = outbound(part).model_copy(update={"id": "msg_02"})
        await adapter.send(again, [part])
    assert upload.call_count == 1
    form = upload.calls[0].request.content
    assert b'name="messaging_product"' in form and b"whatsapp" in form and b"OggS voice bytes" in form
    assert [orjson.loads(c.request.content)["audio"] for c in send.calls] == [{"id": "4490709327384033"}] * 2


@pytest.mark.anyio
async def test_react_and_mark_read(adapter: WhatsAppAdapter) -> None:
    now = datetime.now(UTC)
    theirs = Message(id="msg_in", channel="whatsapp", channel_key="wa", adapter="whatsapp", direction="inbound",
                     conversation_id="conv_01", external_id="wamid.IN", created_at=now, received_at=now,
                     sender=Address(channel="whatsapp", handle="+16505551234"), status="received")
    with respx.mock() as router:
        route = router.post(SEND_URL).mock(side_effect=lambda r: httpx.Response(200, json={"success": True})
                                           if orjson.loads(r.content).get("status") == "read" else accepted("wamid.R"))
        assert await adapter.react(theirs, "\u2764\ufe0f") == "wamid.R"
        await adapter.mark_read(theirs, typing=True)
        await adapter.mark_read("wamid.OTHER")
    bodies = [orjson.loads(c.request.content) for c in route.calls]
    assert bodies[0] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
                         "type": "reaction", "reaction": {"message_id": "wamid.IN", "emoji": "\u2764\ufe0f"}}
    assert bodies[1] == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN",
                         "typing_indicator": {"type": "text"}}
    assert bodies[2] == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.OTHER"}


# -- errors ----------------------------------------------------------------------------------------


def meta_error(status: int, code: int, message: str, details: str | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return httpx.Response(status, json={"error": error}, headers=headers)


@pytest.mark.parametrize(("response", "kind", "retryable", "retry_after"), [
    (meta_error(401, 190, "Error validating access token"), AuthenticationError, False, None),
    (meta_error(403, 10, "Permission denied"), AuthenticationError, False, None),
    (meta_error(400, 200, "Requires whatsapp_business_messaging permission"), AuthenticationError, False, None),
    (meta_error(400, 130429, "(#130429) Rate limit hit"), RateLimitedError, True, 1.0),
    (meta_error(400, 131056, "(#131056) pair rate limit hit"), RateLimitedError, True, 6.0),
    (meta_error(400, 131056, "(#131056) pair rate limit hit", headers={"Retry-After": "30"}), RateLimitedError, True, 30.0),
    (meta_error(400, 131048, "(#131048) Spam rate limit hit"), RateLimitedError, True, 60.0),
    (meta_error(400, 4, "(#4) Application request limit reached"), RateLimitedError, True, 60.0),
    (meta_error(400, 131047, "Re-engagement message", "more than 24 hours have passed"), ReengagementRequiredError, False, None),
    (meta_error(400, 131026, "Message undeliverable"), NotOnWhatsAppError, False, None),
    (meta_error(400, 131051, "Unsupported message type"), UnsupportedMessageTypeError, False, None),
    (meta_error(400, 131050, "Stopped marketing messages"), MarketingOptOutError, False, None),
    (meta_error(400, 131049, "Meta chose not to deliver"), ProviderError, True, None),
    (meta_error(500, 131000, "Something went wrong"), ProviderError, True, None),
    (meta_error(503, 133004, "Server temporarily unavailable"), ProviderError, True, None),
    (meta_error(400, 100, "Invalid parameter"), RejectedError, False, None),
    (meta_error(400, 132001, "Template name does not exist in the translation"), RejectedError, False, None),
    (httpx.Response(502, content=b"<html>bad gateway</html>"), ProviderError, True, None),
    (httpx.Response(429, headers={"Retry-After": "3"}), RateLimitedError, True, 3.0),
    (httpx.Response(401, content=b""), AuthenticationError, False, None),
])
def test_graph_errors_map_in_one_place(response: httpx.Response, kind: type[Exception], retryable: bool,
                                       retry_after: float | None) -> None:
    error = graph_error("whatsapp", response)
    assert type(error) is kind
    assert error.retryable is retryable
    if isinstance(error, RateLimitedError):
        assert error.retry_after == retry_after


def test_reengagement_is_a_closed_window_and_a_rejection() -> None:
    error = graph_error("whatsapp", meta_error(400, 131047, "Re-engagement message"))
    assert isinstance(error, WindowClosedError) and isinstance(error, RejectedError)
    assert error.vendor_code == "131047" and not error.retryable


def test_secrets_never_reach_the_error_text() -> None:
    response = meta_error(400, 100, f"Invalid token {TOKEN} for app secret {SECRET}")
    error = graph_error("whatsapp", response, secrets=(TOKEN, SECRET))
    assert TOKEN not in str(error) and SECRET not in str(error) and "***" in str(error)


def test_status_errors_use_the_same_table() -> None:
    assert status_error({"code": 131047, "title": "Re-engagement message"}).code == "window_closed"
    assert status_error({"code": 131026, "title": "Message undeliverable"}).code == "undelivered"
    assert status_error({"code": 131051, "title": "Unsupported message type"}).code == "unsupported"
    assert status_error({"code": 130429, "title": "Rate limit hit"}).code == "rate_limited"
    assert status_error({"code": 131000, "title": "Something went wrong"}).code == "undelivered"
    assert status_error({"code": "x"}).vendor_code is None
    assert status_error("garbage").code == "undelivered"
    assert isinstance(error_for_code(None, "x", status=404), RejectedError)


@pytest.mark.anyio
async def test_adapter_send_raises_the_typed_error_without_the_token(adapter: WhatsAppAdapter) -> None:
    with respx.mock() as router:
        router.post(SEND_URL).mock(return_value=meta_error(400, 131026, f"undeliverable {TOKEN}"))
        with pytest.raises(NotOnWhatsAppError) as info:
            await adapter.send(outbound(TextPart(text="x")), [TextPart(text="x")])
    assert TOKEN not in str(info.value)


# -- odd vendor answers ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_odd_answers_are_typed_errors(adapter: WhatsAppAdapter) -> None:
    part = TextPart(text="x")
    with respx.mock() as router:
        route = router.post(SEND_URL)
        route.mock(return_value=httpx.Response(200, content=b"<html>proxy</html>"))
        with pytest.raises(ProviderError) as info:
            await adapter.send(outbound(part), [part])
        assert info.value.retryable
        route.mock(return_value=httpx.Response(200, json=["not", "an", "object"]))
        with pytest.raises(ProviderError):
            await adapter.send(outbound(part), [part])
        route.mock(return_value=httpx.Response(200, json={"messaging_product": "whatsapp", "messages": []}))
        with pytest.raises(ProviderError) as info:
            await adapter.send(outbound(part), [part])
        assert not info.value.retryable  # Meta may have taken it: never sent twice blindly
        route.mock(return_value=httpx.Response(200, json={"success": False}))
        with pytest.raises(ProviderError):
            await adapter.mark_read("wamid.X")
        upload = router.post(f"{GRAPH}/{PNID}/media").mock(return_value=httpx.Response(200, json={}))
        with pytest.raises(ProviderError):
            await adapter.upload_media(b"x", "image/png")
        upload.mock(return_value=httpx.Response(200, json={"id": 1234567}))
        assert await adapter.upload_media(b"x", "image/png") == "1234567"
    with pytest.raises(RejectedError):
        await adapter.send(outbound(part).model_copy(update={"recipients": []}), [part])
    with pytest.raises(RejectedError):
        await adapter.react(outbound(part), "x")  # not sent yet: no wamid
    with pytest.raises(RejectedError):
        await adapter.mark_read(outbound(part))


@pytest.mark.anyio
async def test_media_lookups_that_cannot_be_followed(adapter: WhatsAppAdapter) -> None:
    from omnichannel_sdk import MediaError

    part = MediaPart(kind="image", url=f"{GRAPH}/1003383421387256")
    with respx.mock() as router:
        lookup = router.get(url__startswith=f"{GRAPH}/1003383421387256")
        for answer in ({"id": "1"}, {"url": "http://lookaside.fbsbx.com/plain-http"},
                       {"url": "https://evil.example/x"}):
            lookup.mock(return_value=httpx.Response(200, json=answer))
            with pytest.raises(MediaError):
                await adapter.media_request(part)
        lookup.mock(return_value=meta_error(400, 100, "Unsupported get request"))
        with pytest.raises(RejectedError):
            await adapter.media_request(part)
        lookup.mock(return_value=httpx.Response(200, json={"url": "https://mmg.whatsapp.net/v/t62/abc"}))
        request = await adapter.media_request(part)
    assert request is not None and request.headers["authorization"] == f"Bearer {TOKEN}"
    other = await adapter.media_request(MediaPart(kind="image", url="https://cdn.example.com/x.png"))
    assert other is not None and "authorization" not in other.headers
    with pytest.raises(MediaError):
        await adapter.media_id(MediaPart(kind="image", blob_key="gone"))
    with pytest.raises(UnsupportedFeatureError):
        await adapter.media_id(MediaPart(kind="image", url="https://cdn.example.com/x.png"))
