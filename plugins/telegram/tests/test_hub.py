"""The telegram adapter inside a real hub, vendor faked with plain respx: the secret header,
duplicates, every message type, edits, button presses, media download, opt-out, groups, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_telegram import _plugin
from omnichannel_telegram.testing import EXAMPLE_BOT_TOKEN as BOT_TOKEN
from omnichannel_telegram.testing import api_error as failed
from omnichannel_telegram.testing import api_result as ok
from omnichannel_telegram.testing import sent_message as sent
from omnichannel_telegram.testing import update_request

from omnichannel_sdk import (
    Action,
    ActionsPart,
    EventPart,
    Hub,
    LocationPart,
    MediaPart,
    Message,
    OptedOutError,
    TextPart,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    return update_request(body, f"{PUBLIC_URL}/webhooks/{key}", secret)

KEY = "tg"
METHOD = f"{API}/bot{BOT_TOKEN}/"
CUSTOMER = "111222333"


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["channels"][KEY] = {"adapter": "telegram", **SETTINGS}
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_plugin)
    return register_plugin


@pytest.fixture
def bot_api() -> Iterator[respx.MockRouter]:
    """The Bot API: sends accepted with growing message ids, getFile and the file download."""
    counter = iter(range(9000, 10000))
    with respx.mock(assert_all_called=False) as router:
        router.post(url__regex=rf"^{METHOD}send(Message|Photo|Document|Voice|Audio|Video|Sticker|Location|Venue)$"
                    ).mock(side_effect=lambda r: sent(next(counter)))
        router.post(f"{METHOD}getFile").mock(side_effect=lambda r: ok({
            "file_id": json.loads(r.content)["file_id"], "file_unique_id": "u1", "file_size": 9,
            "file_path": "photos/file_7.jpg"}))
        router.get(f"{API}/file/bot{BOT_TOKEN}/photos/file_7.jpg").mock(
            return_value=httpx.Response(200, content=b"\xff\xd8\xff\xe0jpeg", headers={"content-type": "image/jpeg"}))
        router.post(f"{METHOD}sendChatAction").mock(return_value=ok(True))
        yield router


async def post(client: httpx.AsyncClient, raw: bytes | dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
    request = update(raw, KEY, secret)
    return await client.post(f"/webhooks/{KEY}", content=request.body, headers=request.headers)


async def messages(hub: Hub) -> list[Message]:
    found: list[Message] = []
    for conversation in await hub.store.list_conversations():
        found.extend(await hub.store.list_messages(conversation.id))
    return found


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


def sent_calls(router: respx.MockRouter, method: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in router.calls
            if str(c.request.url).endswith(f"/{method}") and c.request.headers.get(
                "content-type", "").startswith("application/json")]


@pytest.mark.anyio
async def test_secret_header_checked_and_never_stored(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    for secret in (None, "", "wrong-secret", SECRET + "x", SECRET.upper()):
        response = await post(webhook_client, sample("text"), secret)
        assert response.status_code == 403
    assert await messages(hub) == [] and await hub.store.list_dead_letters() == []
    assert (await post(webhook_client, sample("text"))).status_code == 200
    [message] = await messages(hub)
    assert message.parts == [TextPart(text="Hello, my order #1234 has not arrived")]
    # raw payloads are kept for replay (here: a verified one that fails to parse), but the
    # shared secret in their header is not
    assert (await post(webhook_client, b'{"update_id": 7, "message": []}')).status_code == 200
    [letter] = await hub.store.list_dead_letters()
    raw = await hub.store.get_raw(letter.raw_id or "")
    assert raw is not None and raw.headers["x-telegram-bot-api-secret-token"] == "<redacted>"
    assert SECRET not in json.dumps(raw.headers)


@pytest.mark.anyio
async def test_duplicate_updates_store_once_even_concurrently(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    raw = sample("photo")
    answers = await asyncio.gather(*(post(webhook_client, raw) for _ in range(5)))
    assert {a.status_code for a in answers} == {200}
    assert len(await messages(hub)) == 1
    assert (await post(webhook_client, raw)).status_code == 200
    assert len(await messages(hub)) == 1


@pytest.mark.anyio
async def test_every_message_type(hub: Hub, webhook_client: httpx.AsyncClient, bot_api: respx.MockRouter) -> None:
    names = ["text", "photo", "document", "voice", "audio", "video", "sticker", "location", "venue",
             "contact", "reply"]
    for name in names:
        assert (await post(webhook_client, sample(name))).status_code == 200, name
    stored = {m.metadata["message_id"]: m for m in await messages(hub)}
    assert len(stored) == len(names) and not await hub.store.list_dead_letters()
    photo = stored[503].parts
    assert photo[0].type == "media" and photo[0].kind == "image"
    assert photo[0].url == "telegram-file:AgACAgQAAxkBAAIBA2Ys_large"  # the largest size
    assert photo[0].caption == "The box arrived like this"
    doc = stored[504].parts[0]
    assert isinstance(doc, MediaPart) and (doc.kind, doc.filename, doc.content_type) == (
        "file", "invoice-1234.pdf", "application/pdf")
    voice = stored[505].parts[0]
    assert isinstance(voice, MediaPart) and (voice.kind, voice.duration, voice.content_type) == (
        "audio", 7, "audio/ogg")
    audio = stored[506].parts[0]
    assert isinstance(audio, MediaPart) and (audio.kind, audio.filename) == ("audio", "noise.mp3")
    video = stored[507].parts[0]
    assert isinstance(video, MediaPart) and (video.kind, video.caption, video.duration) == (
        "video", "Unboxing", 21)
    sticker = stored[508].parts[0]
    assert isinstance(sticker, MediaPart) and (sticker.kind, sticker.content_type, sticker.caption) == (
        "sticker", "image/webp", "\N{THUMBS UP SIGN}")
    assert stored[509].parts == [LocationPart(latitude=-23.55052, longitude=-46.633309)]
    assert stored[510].parts == [LocationPart(latitude=52.52, longitude=13.405, label="Acme Store Mitte",
                                              address="Alexanderplatz 1, Berlin")]
    contact = stored[511].parts[0]
    assert isinstance(contact, EventPart) and contact.name == "contact"
    assert contact.data["phone_number"] == "+5511987654321"
    # one conversation with the person, the bot as the other participant, vendor time kept
    [conversation] = await hub.store.list_conversations()
    assert {a.handle for a in conversation.participants} == {CUSTOMER, "123456"}
    assert stored[501].created_at.timestamp() == 1764590400 + 501
    assert stored[501].sender.display_name == "Ana Lima"
    person = await hub.store.get_contact(conversation.contact_id)
    assert person is not None and person.profile.get("locale") == "pt-br"


@pytest.mark.anyio
async def test_reply_to_our_message_threads_and_links(hub: Hub, webhook_client: httpx.AsyncClient,
                                                      bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    ours = await hub.send(conversation.id, text="Is it order #1234?", wait=True)
    assert ours.status == "sent" and ours.external_id == f"{CUSTOMER}:9000"
    body = orjson.loads(sample("reply"))
    body["message"]["reply_to_message"]["message_id"] = 9000
    await post(webhook_client, body)
    reply = next(m for m in await messages(hub) if m.metadata.get("message_id") == 502)
    assert reply.reply_to == ours.id


@pytest.mark.anyio
async def test_edited_message_updates_the_stored_message(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, sample("text"))
    updates: list[Any] = []

    async def watch() -> None:
        async for event in hub.events():
            if event.type == "message.updated":
                updates.append(event)
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    assert (await post(webhook_client, sample("edited_message"))).status_code == 200
    [message] = await messages(hub)  # not a second message
    assert message.parts == [TextPart(text="Hello, my order #1234 has not arrived yet")]
    assert message.metadata["edits"] == 1 and message.metadata["edit_date"] == 1764590999
    await asyncio.wait_for(watcher, 5)
    assert updates and updates[0].message.id == message.id
    # a retry of the edit changes nothing; an older edit arriving late is not applied
    await post(webhook_client, sample("edited_message"))
    older = orjson.loads(sample("edited_message"))
    older["update_id"] += 100
    older["edited_message"].update(edit_date=1764590900, text="stale version")
    await post(webhook_client, older)
    [message] = await messages(hub)
    assert message.parts[0] == TextPart(text="Hello, my order #1234 has not arrived yet")
    assert message.metadata["edits"] == 1


@pytest.mark.anyio
async def test_edit_of_an_unknown_message_is_kept(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, sample("edited_message"))
    [message] = await messages(hub)
    assert message.parts == [TextPart(text="Hello, my order #1234 has not arrived yet")]
    await post(webhook_client, sample("text"))  # the original, late: the newer text stays
    [message] = await messages(hub)
    assert message.parts[0] == TextPart(text="Hello, my order #1234 has not arrived yet")


@pytest.mark.anyio
async def test_buttons_and_the_press_maps_back(hub: Hub, webhook_client: httpx.AsyncClient,
                                               bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    long_id = "order:1234:" + "x" * 80  # too long for callback_data (64 bytes)
    actions = [Action(id="track", title="Track my order"),
               Action(id=long_id, title="Refund", kind="postback", value="REFUND_1234"),
               Action(id="site", title="Open the shop", kind="url", value="https://shop.example/o/1234")]
    ours = await hub.send(conversation.id, text="What would you like to do?",
                          parts=[ActionsPart(actions=actions)], wait=True)
    assert ours.status == "sent"
    [call] = sent_calls(bot_api, "sendMessage")
    rows = call["reply_markup"]["inline_keyboard"]
    assert call["text"] == "What would you like to do?" and call["chat_id"] == CUSTOMER
    assert rows[0] == [{"text": "Track my order", "callback_data": "track"}]
    assert rows[2] == [{"text": "Open the shop", "url": "https://shop.example/o/1234"}]
    refund = rows[1][0]["callback_data"]
    assert len(refund.encode()) <= 64 and refund != long_id
    press = orjson.loads(sample("callback_query"))
    press["callback_query"]["data"] = refund
    press["callback_query"]["message"].update(message_id=9000, reply_markup={"inline_keyboard": rows})
    response = await post(webhook_client, press)
    # the spinner is stopped in the webhook answer itself
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json() == {"method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9"}
    pressed = next(m for m in await messages(hub) if m.external_id == "callback:4382bfdwdsb323b2d9")
    assert pressed.parts == [EventPart(name="action", data={
        "id": long_id, "title": "Refund", "kind": "postback", "value": "REFUND_1234", "callback_data": refund})]
    assert pressed.reply_to == ours.id and pressed.conversation_id == conversation.id
    # a retried press stores nothing new and is answered the same way
    again = await post(webhook_client, press)
    assert again.json() == response.json()
    assert len([m for m in await messages(hub) if m.external_id == pressed.external_id]) == 1


@pytest.mark.anyio
async def test_media_download_without_leaking_the_token(hub: Hub, webhook_client: httpx.AsyncClient,
                                                       bot_api: respx.MockRouter,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await post(webhook_client, sample("photo"))

    async def downloaded() -> MediaPart | None:
        [message] = await messages(hub)
        part = message.parts[0]
        return part if isinstance(part, MediaPart) and part.blob_key else None

    part = await eventually(downloaded)
    assert part is not None and await hub.blobs.get(part.blob_key) == b"\xff\xd8\xff\xe0jpeg"
    assert part.url == "telegram-file:AgACAgQAAxkBAAIBA2Ys_large"  # no token in what is stored
    [lookup] = [c for c in bot_api.calls if str(c.request.url).endswith("/getFile")]
    assert json.loads(lookup.request.content) == {"file_id": "AgACAgQAAxkBAAIBA2Ys_large"}
    assert any("/file/bot" in str(c.request.url) for c in bot_api.calls)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request" in text  # httpx did log the calls…
    assert BOT_TOKEN not in text and BOT_TOKEN.split(":")[1] not in text  # …without the token
    dumped = json.dumps([m.model_dump(mode="json") for m in await messages(hub)])
    assert BOT_TOKEN.split(":")[1] not in dumped


@pytest.mark.anyio
async def test_oversized_file_is_dead_lettered_not_retried(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{METHOD}getFile").mock(return_value=failed(400, "Bad Request: file is too big"))
        await post(webhook_client, sample("video"))

        async def lettered() -> list[Any]:
            return [d for d in await hub.store.list_dead_letters() if d.error.startswith("media")]

        [letter] = await eventually(lettered)
        assert "file is too big" in letter.error and BOT_TOKEN not in letter.error
        assert len(router.calls) == 1


@pytest.mark.anyio
async def test_block_opts_out_and_unblock_opts_in(hub: Hub, webhook_client: httpx.AsyncClient,
                                                  bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    await post(webhook_client, sample("blocked"))
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and contact.opted_out == ["telegram"]
    with pytest.raises(OptedOutError):
        await hub.send(conversation.id, text="Are you there?")
    assert sent_calls(bot_api, "sendMessage") == []
    await post(webhook_client, sample("unblocked"))
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and contact.opted_out == []
    assert (await hub.send(conversation.id, text="Welcome back", wait=True)).status == "sent"


@pytest.mark.anyio
async def test_403_blocked_on_send_opts_out(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    with respx.mock() as router:
        router.post(f"{METHOD}sendMessage").mock(return_value=failed(403, "Forbidden: bot was blocked by the user"))
        message = await hub.send(conversation.id, text="Hello?", wait=True)
    assert message.status == "failed" and message.error is not None
    assert message.error.code == "opted_out" or "blocked" in message.error.message
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and "telegram" in contact.opted_out
    with pytest.raises(OptedOutError):
        await hub.send(conversation.id, text="Hello again?")


@pytest.mark.anyio
async def test_429_is_retried_after_the_vendor_delay(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    answers = iter([failed(429, "Too Many Requests: retry after 0", retry_after=0), sent(9300)])
    with respx.mock() as router:
        router.post(f"{METHOD}sendMessage").mock(side_effect=lambda r: next(answers))
        message = await hub.send(conversation.id, text="Hi", wait=True)
        assert message.status == "sent" and message.external_id == f"{CUSTOMER}:9300"
        assert len(router.calls) == 2


@pytest.mark.anyio
async def test_rejected_send_fails_without_retry(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    with respx.mock() as router:
        route = router.post(f"{METHOD}sendMessage").mock(return_value=failed(400, "Bad Request: chat not found"))
        message = await hub.send(conversation.id, text="Hi", wait=True)
    assert message.status == "failed" and message.error is not None
    assert message.error.vendor_code == "400" and "chat not found" in message.error.message
    assert route.call_count == 1 and BOT_TOKEN not in message.error.message


@pytest.mark.anyio
async def test_group_chat_is_one_conversation_answered_in_the_group(
        hub: Hub, webhook_client: httpx.AsyncClient, bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("group_text"))
    [conversation] = await hub.store.list_conversations()
    [message] = await messages(hub)
    assert message.sender.handle == "-1001234567890" and message.sender.display_name == "Acme Partners"
    assert message.metadata["from"] == {"id": 444555666, "name": "Rui", "username": "rui_ops"}
    assert message.metadata["chat_type"] == "supergroup"
    await hub.send(conversation.id, text="Shipment 88 left the warehouse", wait=True)
    [call] = sent_calls(bot_api, "sendMessage")
    assert call["chat_id"] == "-1001234567890"


@pytest.mark.anyio
async def test_markdown_goes_out_as_escaped_html_split_at_4096(
        hub: Hub, webhook_client: httpx.AsyncClient, bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    text = "**Order <1234>** & _soon_: see [the status](https://shop.example/o?a=1&b=2)"
    await hub.send(conversation.id, parts=[TextPart(text=text, format="markdown")], wait=True)
    [call] = sent_calls(bot_api, "sendMessage")
    assert call["parse_mode"] == "HTML"
    assert call["text"] == ('<b>Order &lt;1234&gt;</b> &amp; <i>soon</i>: see '
                            '<a href="https://shop.example/o?a=1&amp;b=2">the status</a>')
    long = ("word " * 2000).strip()
    message = await hub.send(conversation.id, text=long, wait=True)
    calls = sent_calls(bot_api, "sendMessage")[1:]
    assert len(calls) == 3 and all(len(c["text"]) <= 4096 for c in calls) and "parse_mode" not in calls[0]
    assert " ".join(c["text"] for c in calls) == long
    assert len(message.metadata["external_ids"]) == 3


@pytest.mark.anyio
async def test_media_by_url_and_by_upload(hub: Hub, webhook_client: httpx.AsyncClient,
                                         bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    info = await hub.blobs.put(b"%PDF-1.7 label")
    parts = [MediaPart(kind="image", url="https://cdn.example/label.png", caption="Your label"),
             MediaPart(kind="file", blob_key=info.key, filename="label.pdf", content_type="application/pdf"),
             MediaPart(kind="audio", url="https://cdn.example/note.ogg", content_type="audio/ogg")]
    message = await hub.send(conversation.id, parts=parts, wait=True)
    assert message.status == "sent", message.error
    [photo] = sent_calls(bot_api, "sendPhoto")
    assert photo == {"chat_id": CUSTOMER, "photo": "https://cdn.example/label.png", "caption": "Your label"}
    [upload] = [c.request for c in bot_api.calls if str(c.request.url).endswith("/sendDocument")]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert b"%PDF-1.7 label" in upload.content and b'filename="label.pdf"' in upload.content
    [voice] = sent_calls(bot_api, "sendVoice")
    assert voice["voice"] == "https://cdn.example/note.ogg"


@pytest.mark.anyio
async def test_typing(hub: Hub, bot_api: respx.MockRouter) -> None:
    adapter = hub.adapter(KEY)
    await adapter.chat_action(CUSTOMER)  # type: ignore[attr-defined]
    [call] = sent_calls(bot_api, "sendChatAction")
    assert call == {"chat_id": CUSTOMER, "action": "typing"}


@pytest.mark.anyio
async def test_unparseable_update_is_dead_lettered(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    for body in (b"[1, 2]", b'{"update_id": 5, "message": {"message_id": "x", "chat": {"id": 1}}}',
                 b"\xff\xfe not json", b'{"update_id": true}'):
        assert (await post(webhook_client, body)).status_code == 200
    assert len(await hub.store.list_dead_letters()) == 4
    assert await messages(hub) == []


@pytest.mark.anyio
async def test_edited_caption_keeps_the_downloaded_media(hub: Hub, webhook_client: httpx.AsyncClient,
                                                         bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("photo"))

    async def downloaded() -> MediaPart | None:
        [message] = await messages(hub)
        part = message.parts[0]
        return part if isinstance(part, MediaPart) and part.blob_key else None

    before = await eventually(downloaded)
    assert before is not None
    edit = orjson.loads(sample("photo"))
    edit["update_id"] += 1
    edit["edited_message"] = {**edit.pop("message"), "edit_date": 1764599999, "caption": "Box and label"}
    await post(webhook_client, edit)
    [message] = await messages(hub)
    [part] = message.parts
    assert isinstance(part, MediaPart) and part.caption == "Box and label"
    assert part.blob_key == before.blob_key and part.sha256 == before.sha256


@pytest.mark.anyio
async def test_agent_typing_signal_shows_typing(hub: Hub, webhook_client: httpx.AsyncClient,
                                                bot_api: respx.MockRouter) -> None:
    await post(webhook_client, sample("text"))
    [conversation] = await hub.store.list_conversations()
    hub.signal(KEY, conversation.id, "typing", {"from": "visitor", "on": True})  # not ours to relay
    hub.signal(KEY, conversation.id, "typing", {"from": "agent", "on": False})
    hub.signal(KEY, conversation.id, "typing", {"from": "agent", "on": True})
    hub.signal(KEY, conversation.id, "typing", {"from": "agent", "on": True})  # within 4 s: once

    async def shown() -> list[dict[str, Any]]:
        return sent_calls(bot_api, "sendChatAction")

    assert await eventually(shown) == [{"chat_id": CUSTOMER, "action": "typing"}]
    await asyncio.sleep(0.2)
    assert len(sent_calls(bot_api, "sendChatAction")) == 1
