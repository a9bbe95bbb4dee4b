"""The adapters inside a real hub: gateway, threading, echoes, window policy, receipts, media."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_messenger import _plugin, sign_body

from omnichannel_sdk import Author, Conversation, Hub, MediaPart, Message, WindowClosedError

SAMPLES = Path(__file__).parent / "samples"
SECRET = "hub-app-secret"
PAGE = "104417652291850"
IG = "17841400000000000"
PSID = "6543210987654321"
SEND_URL = "https://graph.facebook.com/v21.0/me/messages"


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    common = {"app_secret": SECRET, "verify_token": "hub-verify", "page_access_token": "tok",
              "fetch_profiles": False}  # profiles are tested in test_helpdesk.py
    omni_config["channels"]["fb"] = {"adapter": "messenger", "page_id": PAGE, "human_agent_tag": True,
                                     **common}
    omni_config["channels"]["ig"] = {"adapter": "instagram", "page_id": IG, **common}
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_plugin)
    return register_plugin


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    counter = iter(range(1, 1000))
    with respx.mock(assert_all_called=False) as router:
        router.post(url__startswith=SEND_URL).mock(side_effect=lambda r: httpx.Response(
            200, json={"recipient_id": PSID, "message_id": f"m_reply-{next(counter)}"}))
        router.get(url__regex=r"https://[a-z.]*(fbcdn\.net|fbsbx\.com)/").mock(
            return_value=httpx.Response(200, content=b"\xff\xd8\xff\xe0 jpeg bytes",
                                        headers={"content-type": "image/jpeg"}))
        yield router


def events_body(*events: dict[str, Any], obj: str = "page", page: str = PAGE) -> bytes:
    return orjson.dumps({"object": obj, "entry": [{"id": page, "time": 1, "messaging": list(events)}]})


async def post(client: httpx.AsyncClient, key: str, raw: bytes, secret: str = SECRET) -> httpx.Response:
    return await client.post(f"/webhooks/{key}", content=raw, headers={
        "content-type": "application/json", "x-hub-signature-256": sign_body(secret, raw)})


def now_ms(offset: float = 0.0) -> int:
    return int((time.time() + offset) * 1000)


def inbound(mid: str, text: str = "hello", psid: str = PSID, page: str = PAGE) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": now_ms(),
            "message": {"mid": mid, "text": text}}


async def only_conversation(hub: Hub) -> Conversation:
    [conversation] = await hub.store.list_conversations()
    return conversation


async def messages(hub: Hub) -> list[Message]:
    out: list[Message] = []
    for conversation in await hub.store.list_conversations():
        out.extend(await hub.store.list_messages(conversation.id))
    return out


async def age(hub: Hub, conversation: Conversation, days: float) -> Conversation:
    """Pretend the customer last wrote ``days`` ago."""
    then = datetime.now(UTC) - timedelta(days=days)
    aged = conversation.model_copy(update={"last_inbound_at": then,
                                           "window_expires_at": then + timedelta(hours=24)})
    await hub.store.update_conversation(aged)
    return aged


async def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- gateway ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_handshake_through_the_gateway(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    ok = await webhook_client.get("/webhooks/fb", params={
        "hub.mode": "subscribe", "hub.verify_token": "hub-verify", "hub.challenge": "8675309"})
    assert ok.status_code == 200 and ok.text == "8675309"
    bad = await webhook_client.get("/webhooks/fb", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert bad.status_code == 403


@pytest.mark.anyio
async def test_unsigned_and_wrongly_signed_are_403(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    raw = events_body(inbound("m_x"))
    assert (await webhook_client.post("/webhooks/fb", content=raw)).status_code == 403
    assert (await post(webhook_client, "fb", raw, secret="nope")).status_code == 403
    assert await messages(hub) == []


@pytest.mark.anyio
async def test_batch_with_a_broken_event(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    raw = events_body(inbound("m_a", "one"), {"sender": {"id": PSID}, "message": {"text": "no mid"}},
                      inbound("m_b", "two", psid="1112223334445556"))
    response = await post(webhook_client, "fb", raw)
    assert response.status_code == 200
    assert sorted(m.external_id or "" for m in await messages(hub)) == ["m_a", "m_b"]
    [letter] = await hub.store.list_dead_letters()
    assert letter.raw_id and "mid" in letter.error
    assert len(await hub.store.list_conversations()) == 2


@pytest.mark.anyio
async def test_inbound_threads_with_messages_we_start(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_1")))
    conversation = await only_conversation(hub)
    assert conversation.thread_key == f"{PSID}|{PAGE}"
    assert conversation.window_expires_at is not None
    started = await hub.start_conversation("fb", PSID)
    assert started.id == conversation.id


# -- echoes ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_echo_of_our_send_is_not_stored_twice(hub: Hub, webhook_client: httpx.AsyncClient,
                                                    graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    conversation = await only_conversation(hub)
    sent = await hub.send(conversation.id, text="Happy to help", author=Author(kind="bot"), wait=True)
    assert sent.status == "sent" and sent.external_id == "m_reply-1"
    echo = {"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": now_ms(),
            "message": {"mid": "m_reply-1", "is_echo": True, "app_id": 1517776481860111,
                        "metadata": f"omni:{sent.id}", "text": "Happy to help"}}
    assert (await post(webhook_client, "fb", events_body(echo))).status_code == 200
    # the same echo without our metadata: the core has claimed the mid already
    del echo["message"]["metadata"]
    assert (await post(webhook_client, "fb", events_body(echo))).status_code == 200
    stored = await hub.store.list_messages(conversation.id)
    assert [(m.direction, m.external_id) for m in stored] == [("inbound", "m_in"), ("outbound", "m_reply-1")]
    assert await hub.store.list_dead_letters() == []


@pytest.mark.anyio
async def test_echo_before_the_send_answer_is_skipped(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    echo = {"sender": {"id": PAGE}, "recipient": {"id": PSID}, "timestamp": now_ms(),
            "message": {"mid": "m_not_yet_recorded", "is_echo": True, "metadata": "omni:msg_123",
                        "text": "our reply"}}
    assert (await post(webhook_client, "fb", events_body(echo))).status_code == 200
    assert await messages(hub) == []


@pytest.mark.anyio
async def test_human_reply_from_page_inbox_is_stored_outbound(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    await post(webhook_client, "fb", (SAMPLES / "messenger" / "echo_inbox.json").read_bytes()
               .replace(b'"id": "104417652291850"', f'"id": "{PAGE}"'.encode()))
    conversation = await only_conversation(hub)
    stored = await hub.store.list_messages(conversation.id)
    assert [(m.direction, m.status) for m in stored] == [("inbound", "received"), ("outbound", "sent")]
    echo = stored[1]
    assert echo.author is not None and echo.author.kind == "human"
    assert echo.recipients[0].handle == PSID and echo.sender.handle == PAGE


# -- window policy ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_outside_24h_a_bot_is_refused_and_a_human_is_tagged(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    conversation = await age(hub, await only_conversation(hub), days=3)
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="bot follow-up", author=Author(kind="bot"))
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="nobody wrote this")
    assert not graph.calls
    sent = await hub.send(conversation.id, text="Sorry for the wait - Dana here",
                          author=Author(kind="human", id="agent-1", name="Dana"), wait=True)
    assert sent.status == "sent" and sent.metadata["tag"] == "HUMAN_AGENT"
    [call] = [c for c in graph.calls if c.request.method == "POST"]
    body = orjson.loads(call.request.content)
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"


@pytest.mark.anyio
async def test_after_7_days_even_a_human_is_refused(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    conversation = await age(hub, await only_conversation(hub), days=8)
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="late", author=Author(kind="human"))


@pytest.mark.anyio
async def test_without_the_tag_setting_a_human_is_refused(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, "ig", events_body(inbound("ig_1", page=IG), obj="instagram", page=IG))
    conversation = await age(hub, await only_conversation(hub), days=2)
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="late", author=Author(kind="human"))


@pytest.mark.anyio
async def test_inside_24h_a_bot_answers_as_response(hub: Hub, webhook_client: httpx.AsyncClient,
                                                   graph: respx.MockRouter) -> None:
    await post(webhook_client, "ig", events_body(inbound("ig_1", page=IG), obj="instagram", page=IG))
    conversation = await only_conversation(hub)
    sent = await hub.send(conversation.id, text="x" * 1200, author=Author(kind="bot"), wait=True)
    assert sent.status == "sent" and sent.metadata["external_ids"] == ["m_reply-1", "m_reply-2"]
    assert [orjson.loads(c.request.content)["messaging_type"] for c in graph.calls] == ["RESPONSE"] * 2


# -- receipts --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_delivery_mids_then_read_watermark(hub: Hub, webhook_client: httpx.AsyncClient,
                                                graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    conversation = await only_conversation(hub)
    first = await hub.send(conversation.id, text="one", wait=True)
    second = await hub.send(conversation.id, text="two", wait=True)
    delivery = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(),
                "delivery": {"mids": [first.external_id], "watermark": now_ms(-3600)}}
    await post(webhook_client, "fb", events_body(delivery))
    assert (await hub.store.get_message(first.id)).status == "delivered"  # type: ignore[union-attr]
    assert (await hub.store.get_message(second.id)).status == "sent"  # type: ignore[union-attr]
    read = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(1),
            "read": {"watermark": now_ms(1)}}
    await post(webhook_client, "fb", events_body(read))
    assert (await hub.store.get_message(first.id)).status == "read"  # type: ignore[union-attr]
    assert (await hub.store.get_message(second.id)).status == "read"  # type: ignore[union-attr]
    inbound_message = [m for m in await hub.store.list_messages(conversation.id) if m.direction == "inbound"]
    assert inbound_message[0].status == "received"


@pytest.mark.anyio
async def test_reaction_threads_into_the_reacted_message(hub: Hub, webhook_client: httpx.AsyncClient,
                                                        graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", events_body(inbound("m_in")))
    conversation = await only_conversation(hub)
    sent = await hub.send(conversation.id, text="Your order shipped", wait=True)
    reaction = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(),
                "reaction": {"reaction": "like", "emoji": "\U0001f44d", "action": "react",
                             "mid": sent.external_id}}
    await post(webhook_client, "fb", events_body(reaction))
    last = (await hub.store.list_messages(conversation.id))[-1]
    assert last.reply_to == sent.id and last.parts[0].type == "event"


# -- media -----------------------------------------------------------------------------------------


def attachment_event(mid: str, *urls: str) -> dict[str, Any]:
    return {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": now_ms(),
            "message": {"mid": mid, "attachments": [{"type": "image", "payload": {"url": u}} for u in urls]}}


async def all_downloaded(hub: Hub, message_id: str) -> bool:
    fresh = await hub.store.get_message(message_id)
    return fresh is not None and all(p.blob_key for p in fresh.parts if isinstance(p, MediaPart))


@pytest.mark.anyio
async def test_media_is_downloaded_into_the_blob_store(hub: Hub, webhook_client: httpx.AsyncClient,
                                                      graph: respx.MockRouter) -> None:
    url = "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo_n.jpg?_nc_cat=1&oh=abc&oe=674A"
    assert (await post(webhook_client, "fb", events_body(attachment_event("m_img", url)))).status_code == 200
    [media] = await messages(hub)
    await eventually(lambda: all_downloaded(hub, media.id))
    fresh = await hub.store.get_message(media.id)
    assert fresh is not None
    part = fresh.parts[0]
    assert isinstance(part, MediaPart) and part.sha256 and part.size == len(b"\xff\xd8\xff\xe0 jpeg bytes")
    assert part.content_type == "image/jpeg"
    assert await hub.blobs.get(part.blob_key) == b"\xff\xd8\xff\xe0 jpeg bytes"  # type: ignore[arg-type]
    downloads = [c.request for c in graph.calls if c.request.method == "GET"]
    assert [str(r.url) for r in downloads] == [url]
    assert all("authorization" not in r.headers for r in downloads)  # the page token stays home


@pytest.mark.anyio
async def test_undeclared_media_host_is_not_fetched(hub: Hub, webhook_client: httpx.AsyncClient,
                                                   graph: respx.MockRouter) -> None:
    raw = events_body(attachment_event("m_evil", "https://attacker.example/x.jpg"))
    assert (await post(webhook_client, "fb", raw)).status_code == 200

    async def dead_lettered() -> bool:
        return any(d.error.startswith("media") for d in await hub.store.list_dead_letters())

    await eventually(dead_lettered)
    assert not [c for c in graph.calls if c.request.method == "GET"]


@pytest.mark.anyio
async def test_every_attachment_of_one_message_is_downloaded(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter) -> None:
    raw = (SAMPLES / "messenger" / "attachments.json").read_bytes()
    assert (await post(webhook_client, "fb", raw)).status_code == 200
    media = next(m for m in await messages(hub) if m.external_id == "m_attach-0001")
    await eventually(lambda: all_downloaded(hub, media.id), timeout=3)
