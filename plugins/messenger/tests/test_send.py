"""The Send API: payloads, the window policy, sender actions and Graph error mapping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from omnichannel_messenger import (
    InstagramAdapter,
    MessengerAdapter,
    OutsideWindowError,
    UserUnavailableError,
    appsecret_proof,
)

from omnichannel_sdk import (
    Action,
    ActionsPart,
    AdapterContext,
    Address,
    AuthenticationError,
    Author,
    Conversation,
    LocationPart,
    MediaPart,
    Message,
    Part,
    ProviderError,
    RateLimitedError,
    RejectedError,
    TemplatePart,
    TextPart,
    UnsupportedFeatureError,
    render_parts,
)
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

SEND_URL = "https://graph.facebook.com/v21.0/me/messages"
TOKEN = "EAAB-page-token-secret"
SECRET = "app-secret-xyz"
PSID = "6543210987654321"


def make(cls: type = MessengerAdapter, http: httpx.AsyncClient | None = None,
         **extra: Any) -> MessengerAdapter:
    settings = cls.Settings.model_validate({"app_secret": SECRET, "verify_token": "vt",
                                            "page_access_token": TOKEN, **extra})
    return cls(settings, AdapterContext(key="fb", public_url=PUBLIC_URL,
                                        http=http or httpx.AsyncClient(), kv=MemoryKV()))


def message(parts: list[Part] | None = None, author: Author | None = None, **metadata: Any) -> Message:
    now = datetime.now(UTC)
    return Message(id="msg_01TEST", channel="messenger", channel_key="fb", adapter="messenger",
                   direction="outbound", conversation_id="conv_1",
                   sender=Address(channel="messenger", handle="104417652291850"),
                   recipients=[Address(channel="messenger", handle=PSID)],
                   parts=parts or [TextPart(text="hi")], created_at=now, received_at=now,
                   status="queued", author=author, metadata=metadata)


@pytest.fixture
async def graph() -> AsyncIterator[respx.MockRouter]:
    counter = iter(range(1, 1000))
    with respx.mock(assert_all_called=False) as router:
        router.post(url__startswith=SEND_URL).mock(side_effect=lambda r: httpx.Response(
            200, json={"recipient_id": PSID, "message_id": f"m_sent-{next(counter)}"}))
        yield router


def bodies(router: respx.MockRouter) -> list[dict[str, Any]]:
    return [json.loads(call.request.content) for call in router.calls]


async def send(parts: list[Part], adapter: MessengerAdapter | None = None, **kw: Any) -> Any:
    adapter = adapter or make()
    rendered = render_parts(parts, adapter.capabilities, adapter=adapter.name).parts
    return await adapter.send(message(parts, **kw), rendered)


# -- payloads --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_text(graph: respx.MockRouter) -> None:
    result = await send([TextPart(text="Hello there")])
    assert result.external_ids == ["m_sent-1"] and result.status == "sent"
    assert result.metadata == {"messaging_type": "RESPONSE"}
    [body] = bodies(graph)
    assert body == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
                    "message": {"text": "Hello there", "metadata": "omni:msg_01TEST"}}
    request = graph.calls[0].request
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.url.params["appsecret_proof"] == appsecret_proof(SECRET, TOKEN)
    assert TOKEN not in str(request.url)  # the token never rides in the URL (logs, proxies)


@pytest.mark.anyio
async def test_long_text_is_split_at_2000(graph: respx.MockRouter) -> None:
    text = ("word " * 900).strip()  # 4,499 characters
    result = await send([TextPart(text=text)])
    sent = [b["message"]["text"] for b in bodies(graph)]
    assert len(sent) == 3 and all(len(s) <= 2000 for s in sent)
    assert " ".join(sent) == text
    assert result.external_ids == ["m_sent-1", "m_sent-2", "m_sent-3"]


@pytest.mark.anyio
async def test_instagram_limit_is_1000(graph: respx.MockRouter) -> None:
    await send([TextPart(text="x" * 1500)], adapter=make(InstagramAdapter))
    assert [len(b["message"]["text"]) for b in bodies(graph)] == [1000, 500]


@pytest.mark.anyio
async def test_quick_replies_ride_on_the_text(graph: respx.MockRouter) -> None:
    actions = [Action(id=f"size-{n}", title=f"Size {n}") for n in range(1, 6)]
    await send([TextPart(text="Which size?"), ActionsPart(actions=actions)])
    [body] = bodies(graph)
    assert body["message"]["text"] == "Which size?"
    assert body["message"]["quick_replies"] == [
        {"content_type": "text", "title": f"Size {n}", "payload": f"size-{n}"} for n in range(1, 6)]


@pytest.mark.anyio
async def test_quick_replies_with_prompt_and_postback_values(graph: respx.MockRouter) -> None:
    actions = [Action(id="a", title="Yes", kind="postback", value="CONFIRM"),
               Action(id="b", title="No", kind="postback")] + [
        Action(id=f"x{n}", title=f"More {n}") for n in range(3)]
    await send([ActionsPart(prompt="Confirm?", actions=actions)])
    [body] = bodies(graph)
    assert body["message"]["text"] == "Confirm?"
    assert [q["payload"] for q in body["message"]["quick_replies"]] == ["CONFIRM", "b", "x0", "x1", "x2"]


@pytest.mark.anyio
async def test_thirteen_quick_replies_at_most(graph: respx.MockRouter) -> None:
    actions = [Action(id=f"n{n}", title=f"Option {n}") for n in range(14)]
    await send([ActionsPart(prompt="Pick", actions=actions)])
    [body] = bodies(graph)
    assert "quick_replies" not in body["message"]
    assert body["message"]["text"].startswith("Pick\n1. Option 0\n2. Option 1")


@pytest.mark.anyio
async def test_button_template(graph: respx.MockRouter) -> None:
    actions = [Action(id="web", title="Open order", kind="url", value="https://shop.example/o/1"),
               Action(id="pb", title="Cancel it", kind="postback", value="CANCEL_1"),
               Action(id="tel", title="Call us", kind="call", value="+15005550006")]
    await send([TextPart(text="Your order shipped."), ActionsPart(actions=actions)])
    [body] = bodies(graph)
    assert body["message"]["attachment"] == {"type": "template", "payload": {
        "template_type": "button", "text": "Your order shipped.", "buttons": [
            {"type": "web_url", "url": "https://shop.example/o/1", "title": "Open order"},
            {"type": "postback", "title": "Cancel it", "payload": "CANCEL_1"},
            {"type": "phone_number", "title": "Call us", "payload": "+15005550006"}]}}


@pytest.mark.anyio
async def test_more_than_three_buttons_become_a_numbered_list(graph: respx.MockRouter) -> None:
    actions = [Action(id=f"u{n}", title=f"Link {n}", kind="url", value=f"https://e.x/{n}") for n in range(4)]
    await send([ActionsPart(prompt="Links", actions=actions)])
    [body] = bodies(graph)
    assert body["message"]["text"] == "Links\n" + "\n".join(
        f"{n + 1}. Link {n}: https://e.x/{n}" for n in range(4))


@pytest.mark.anyio
async def test_long_button_titles_become_a_numbered_list(graph: respx.MockRouter) -> None:
    actions = [Action(id="a", title="A title longer than twenty", kind="url", value="https://e.x")]
    await send([ActionsPart(prompt="See", actions=actions)])
    assert "attachment" not in bodies(graph)[0]["message"]


@pytest.mark.anyio
async def test_attachments_by_url_with_caption(graph: respx.MockRouter) -> None:
    parts: list[Part] = [
        MediaPart(kind="image", url="https://cdn.example/p.jpg", caption="Your receipt"),
        MediaPart(kind="file", url="https://cdn.example/i.pdf"),
        MediaPart(kind="sticker", url="https://cdn.example/s.png"),
    ]
    await send(parts)
    sent = [b["message"] for b in bodies(graph)]
    assert sent[0]["attachment"] == {"type": "image", "payload": {"url": "https://cdn.example/p.jpg",
                                                                 "is_reusable": True}}
    assert sent[1]["text"] == "Your receipt"
    assert sent[2]["attachment"]["type"] == "file"
    assert sent[3]["attachment"]["type"] == "image"


@pytest.mark.anyio
async def test_location_becomes_a_link(graph: respx.MockRouter) -> None:
    await send([LocationPart(latitude=52.52, longitude=13.40, label="Store")])
    assert bodies(graph)[0]["message"]["text"] == (
        "Store\nhttps://www.openstreetmap.org/?mlat=52.52&mlon=13.4")


@pytest.mark.anyio
async def test_media_without_a_url_and_templates_refused() -> None:
    adapter = make()
    with pytest.raises(UnsupportedFeatureError):
        await adapter.send(message(), [MediaPart(kind="image", blob_key="b1")])
    with pytest.raises(UnsupportedFeatureError):
        render_parts([TemplatePart(name="x")], adapter.capabilities)


@pytest.mark.anyio
async def test_pieces_already_sent_are_not_sent_again(graph: respx.MockRouter) -> None:
    adapter = make()
    parts: list[Part] = [TextPart(text="one"), TextPart(text="two")]
    graph.routes.clear()
    answers = iter([httpx.Response(200, json={"message_id": "m_1"}),
                    httpx.Response(503, json={"error": {"code": 2, "message": "try later"}}),
                    httpx.Response(200, json={"message_id": "m_2"})])
    graph.post(url__startswith=SEND_URL).mock(side_effect=lambda r: next(answers))
    with pytest.raises(ProviderError) as info:
        await adapter.send(message(parts), parts)
    assert info.value.retryable
    result = await adapter.send(message(parts), parts)
    assert result.external_ids == ["m_1", "m_2"]
    assert [b["message"]["text"] for b in bodies(graph)] == ["one", "two", "two"]


@pytest.mark.anyio
async def test_answer_without_message_id() -> None:
    async with httpx.AsyncClient() as http:
        with respx.mock() as router:
            router.post(url__startswith=SEND_URL).mock(return_value=httpx.Response(200, json={}))
            with pytest.raises(ProviderError):
                await make(http=http).send(message(), [TextPart(text="x")])


# -- window and tags -------------------------------------------------------------------------------


def conversation(last_inbound: timedelta | None) -> Conversation:
    now = datetime.now(UTC)
    return Conversation(id="c", channel="messenger", channel_key="fb", contact_id="k",
                        thread_key="t", created_at=now,
                        last_inbound_at=None if last_inbound is None else now - last_inbound)


@pytest.mark.parametrize(("enabled", "author", "ago", "allowed"), [
    (True, Author(kind="human", id="agent-7"), timedelta(days=2), True),
    (True, Author(kind="human"), timedelta(days=6, hours=23), True),
    (True, Author(kind="human"), timedelta(days=7, minutes=1), False),
    (True, Author(kind="bot"), timedelta(days=2), False),
    (True, Author(kind="system"), timedelta(days=2), False),
    (True, None, timedelta(days=2), False),
    (False, Author(kind="human"), timedelta(days=2), False),
    (True, Author(kind="human"), None, False),
])
def test_outside_window_policy(enabled: bool, author: Author | None, ago: timedelta | None,
                               allowed: bool) -> None:
    got = make(human_agent_tag=enabled).outside_window([TextPart(text="x")], author, conversation(ago))
    assert got == ({"tag": "HUMAN_AGENT"} if allowed else None)


@pytest.mark.anyio
@pytest.mark.parametrize(("enabled", "author", "tagged"), [
    (True, Author(kind="human"), True),
    (True, Author(kind="bot"), False),
    (True, None, False),
    (False, Author(kind="human"), False),
])
async def test_tag_only_on_a_humans_message(graph: respx.MockRouter, enabled: bool,
                                            author: Author | None, tagged: bool) -> None:
    adapter = make(human_agent_tag=enabled)
    result = await adapter.send(message(author=author, tag="HUMAN_AGENT"), [TextPart(text="x")])
    [body] = bodies(graph)
    if tagged:
        assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
        assert result.metadata["tag"] == "HUMAN_AGENT"
    else:
        assert body["messaging_type"] == "RESPONSE" and "tag" not in body


# -- sender actions --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sender_actions(graph: respx.MockRouter) -> None:
    adapter = make(appsecret_proof=False)
    await adapter.sender_action(Address(channel="messenger", handle=PSID), "typing_on")
    await adapter.sender_action(PSID, "mark_seen")
    assert bodies(graph) == [{"recipient": {"id": PSID}, "sender_action": "typing_on"},
                             {"recipient": {"id": PSID}, "sender_action": "mark_seen"}]
    assert "appsecret_proof" not in graph.calls[0].request.url.params
    with pytest.raises(UnsupportedFeatureError):
        await adapter.sender_action(PSID, "dance")  # type: ignore[arg-type]


# -- errors ----------------------------------------------------------------------------------------


def graph_answer(status: int, code: int | None, subcode: int | None = None,
                 message: str = "failure", headers: dict[str, str] | None = None) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "fbtrace_id": "X"}
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(("answer", "kind", "retryable", "vendor_code"), [
    (graph_answer(400, 190, 463), AuthenticationError, False, "190/463"),
    (graph_answer(403, 230), AuthenticationError, False, "230"),
    (graph_answer(400, 10, 2018278), OutsideWindowError, False, "10/2018278"),
    (graph_answer(400, 10, 2018108), OutsideWindowError, False, "10/2018108"),
    (graph_answer(400, 10), OutsideWindowError, False, "10"),
    (graph_answer(400, 613), RateLimitedError, True, "613"),
    (graph_answer(400, 4), RateLimitedError, True, "4"),
    (graph_answer(400, 32), RateLimitedError, True, "32"),
    (graph_answer(400, 551, 1545041), UserUnavailableError, False, "551/1545041"),
    (graph_answer(400, 100, 2018001), RejectedError, False, "100/2018001"),
    (graph_answer(500, 1200), ProviderError, True, "1200"),
    (graph_answer(400, 2), ProviderError, True, "2"),
    (httpx.Response(502, text="<html>bad gateway</html>"), ProviderError, True, None),
    (httpx.Response(503), ProviderError, True, None),
    (graph_answer(400, 9999), RejectedError, False, "9999"),
])
async def test_graph_errors(answer: httpx.Response, kind: type, retryable: bool,
                            vendor_code: str | None) -> None:
    async with httpx.AsyncClient() as http:
        with respx.mock() as router:
            router.post(url__startswith=SEND_URL).mock(return_value=answer)
            with pytest.raises(kind) as info:
                await make(http=http).send(message(), [TextPart(text="x")])
    assert type(info.value) is kind
    assert info.value.retryable is retryable
    assert info.value.vendor_code == vendor_code


@pytest.mark.anyio
async def test_rate_limit_wait_from_usage_header() -> None:
    usage = json.dumps({"104417652291850": [{"type": "messenger", "call_count": 100,
                                             "estimated_time_to_regain_access": 5}]})
    async with httpx.AsyncClient() as http:
        with respx.mock() as router:
            router.post(url__startswith=SEND_URL).mock(return_value=graph_answer(
                400, 613, headers={"x-business-use-case-usage": usage}))
            with pytest.raises(RateLimitedError) as info:
                await make(http=http).send(message(), [TextPart(text="x")])
    assert info.value.retry_after == 300


@pytest.mark.anyio
async def test_no_secret_in_error_messages() -> None:
    async with httpx.AsyncClient() as http:
        with respx.mock() as router:
            router.post(url__startswith=SEND_URL).mock(return_value=graph_answer(
                400, 190, message=f"token {TOKEN} is invalid (secret {SECRET})"))
            with pytest.raises(AuthenticationError) as info:
                await make(http=http).send(message(), [TextPart(text="x")])
    assert TOKEN not in str(info.value) and SECRET not in str(info.value)


@pytest.mark.anyio
async def test_api_base_and_version(graph: respx.MockRouter) -> None:
    with respx.mock() as router:
        route = router.post(url__startswith="https://stub.test/v19.0/me/messages").mock(
            return_value=httpx.Response(200, json={"message_id": "m"}))
        async with httpx.AsyncClient() as http:
            await make(http=http, api_base="https://stub.test/", api_version="v19.0").send(
                message(), [TextPart(text="x")])
    assert route.called


def test_bad_api_version_refused() -> None:
    with pytest.raises(ValueError):
        make(api_version="latest")
