"""What a helpdesk expects beyond the basics: contact names from the profile APIs, stored media
sent through the Attachment Upload API, message tags for updates, and chat plugin visitors
(``user_ref``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_messenger import InstagramAdapter, MessengerAdapter, _plugin, sign_body
from omnichannel_messenger._outbound import public_url
from omnichannel_messenger._profile import apply_profile, normalize_profile, recipient_object

from omnichannel_sdk import (
    AdapterContext,
    Address,
    Author,
    ConfigurationError,
    Contact,
    ContactUpdated,
    Conversation,
    Hub,
    MediaPart,
    Message,
    TextPart,
    UnsupportedFeatureError,
    WindowClosedError,
)
from omnichannel_sdk._blobs import MemoryBlobStore
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._contract import MemoryKV

SECRET = "hub-app-secret"
PAGE = "104417652291850"
IG = "17841400000000000"
PSID = "6543210987654321"
IGSID = "1790000000000042"
GRAPH = "https://graph.facebook.com/v21.0"
SEND_URL = f"{GRAPH}/me/messages"
UPLOAD_URL = f"{GRAPH}/me/message_attachments"
PETER = {"first_name": "Peter", "last_name": "Chang", "locale": "en_US", "timezone": -7,
         "profile_pic": "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=1&eai=x",
         "id": PSID}


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    common = {"app_secret": SECRET, "verify_token": "hub-verify", "page_access_token": "tok"}
    omni_config["channels"]["fb"] = {"adapter": "messenger", "page_id": PAGE, "human_agent_tag": True,
                                     "message_tags": ["POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"], **common}
    omni_config["channels"]["plain"] = {"adapter": "messenger", "page_id": "222", "fetch_profiles": False,
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
        router.post(url__startswith=UPLOAD_URL).mock(side_effect=lambda r: httpx.Response(
            200, json={"attachment_id": f"55{next(counter)}"}))
        router.get(url__startswith=f"{GRAPH}/{PSID}").mock(return_value=httpx.Response(200, json=PETER))
        router.get(url__startswith=f"{GRAPH}/{IGSID}").mock(return_value=httpx.Response(200, json={
            "name": "Ana Souza", "username": "ana.souza", "id": IGSID}))
        yield router


def now_ms() -> int:
    return int(time.time() * 1000)


def body(*events: dict[str, Any], obj: str = "page", page: str = PAGE) -> bytes:
    return orjson.dumps({"object": obj, "entry": [{"id": page, "time": 1, "messaging": list(events)}]})


def text_event(mid: str, sender: dict[str, str], page: str = PAGE) -> dict[str, Any]:
    return {"sender": sender, "recipient": {"id": page}, "timestamp": now_ms(),
            "message": {"mid": mid, "text": "hello"}}


async def post(client: httpx.AsyncClient, key: str, raw: bytes) -> None:
    response = await client.post(f"/webhooks/{key}", content=raw, headers={
        "content-type": "application/json", "x-hub-signature-256": sign_body(SECRET, raw)})
    assert response.status_code == 200


async def conversation_on(hub: Hub, key: str) -> Conversation:
    [found] = [c for c in await hub.store.list_conversations() if c.channel_key == key]
    return found


async def contact_of(hub: Hub, conversation: Conversation) -> Contact:
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None
    return contact


async def settle(hub: Hub) -> None:
    """Let the event pump and the background work the observers spawned finish."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        pending = [t for t in hub.publisher.tasks if not t.done()]
        if not pending and hub.publisher.outgoing is not None and hub.publisher.outgoing.empty():
            await asyncio.sleep(0.02)
            if not [t for t in hub.publisher.tasks if not t.done()]:
                return
        if pending:
            await asyncio.wait(pending, timeout=2)


async def age(hub: Hub, conversation: Conversation, days: float) -> Conversation:
    then = datetime.now(UTC) - timedelta(days=days)
    aged = conversation.model_copy(update={"last_inbound_at": then,
                                           "window_expires_at": then + timedelta(hours=24)})
    await hub.store.update_conversation(aged)
    return aged


def profile_gets(router: respx.MockRouter) -> list[httpx.Request]:
    return [c.request for c in router.calls
            if c.request.method == "GET" and "/me/" not in c.request.url.path]


def sends(router: respx.MockRouter) -> list[dict[str, Any]]:
    return [json.loads(c.request.content) for c in router.calls if str(c.request.url).startswith(SEND_URL)]


# -- contact names ---------------------------------------------------------------------------------


def test_normalize_profile() -> None:
    assert normalize_profile("messenger", PETER) == {
        "first_name": "Peter", "last_name": "Chang", "locale": "en_US", "timezone": -7,
        "profile_pic": PETER["profile_pic"], "name": "Peter Chang"}
    assert normalize_profile("instagram", {"username": "ana.souza"}) == {
        "username": "ana.souza", "name": "ana.souza"}
    assert normalize_profile("messenger", {}) == {}
    assert normalize_profile("messenger", ["x"]) == {}
    odd = normalize_profile("messenger", {"first_name": 7, "timezone": True, "locale": " ",
                                          "profile_pic": "javascript:alert(1)", "last_name": "x" * 999})
    assert odd == {"last_name": "x" * 256, "name": "x" * 256}
    assert "timezone" not in normalize_profile("messenger", {"timezone": float("nan")})


def test_apply_profile_keeps_a_name_typed_in_the_helpdesk() -> None:
    address = Address(channel="messenger", handle=PSID)
    fresh = Contact(id="ct_1", addresses=[address])
    profile = normalize_profile("messenger", PETER)
    named = apply_profile(fresh, "messenger", PSID, profile)
    assert named is not None and named.display_name == "Peter Chang"
    assert named.profile["locale"] == "en_US" and named.profile["timezone"] == -7
    assert named.profile["messenger"]["id"] == PSID
    assert apply_profile(named, "messenger", PSID, profile) is None  # nothing new
    renamed = apply_profile(named, "messenger", PSID, {**profile, "name": "Pete Chang"})
    assert renamed is not None and renamed.display_name == "Pete Chang"  # ours before: follow it
    typed = named.model_copy(update={"display_name": "Peter C. (VIP)",
                                     "profile": {**named.profile, "locale": "de_DE"}})
    kept = apply_profile(typed, "messenger", PSID, {**profile, "name": "Pete Chang", "locale": "en_GB"})
    assert kept is not None and kept.display_name == "Peter C. (VIP)" and kept.profile["locale"] == "de_DE"


@pytest.mark.anyio
async def test_new_conversation_fetches_the_name_once(hub: Hub, webhook_client: httpx.AsyncClient,
                                                      graph: respx.MockRouter) -> None:
    updates: list[ContactUpdated] = []

    async def watch() -> None:
        async for event in hub.events():
            if isinstance(event, ContactUpdated):
                updates.append(event)
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    await settle(hub)
    await asyncio.wait_for(watcher, timeout=3)
    conversation = await conversation_on(hub, "fb")
    contact = await contact_of(hub, conversation)
    assert contact.display_name == "Peter Chang"
    assert updates[0].change == "profile" and updates[0].contact == contact
    assert contact.profile["locale"] == "en_US" and contact.profile["timezone"] == -7
    assert contact.profile["messenger"]["first_name"] == "Peter"
    [request] = profile_gets(graph)
    assert request.url.params["fields"] == "first_name,last_name,profile_pic,locale,timezone"
    assert request.headers["authorization"] == "Bearer tok" and "tok" not in str(request.url)
    # a later conversation with the same person uses the cached profile
    await hub.close_conversation(conversation.id)
    await post(webhook_client, "fb", body(text_event("m_2", {"id": PSID})))
    await settle(hub)
    assert len(await hub.store.list_conversations()) == 2
    assert len(profile_gets(graph)) == 1


@pytest.mark.anyio
async def test_profile_falls_back_to_basic_fields(hub: Hub, webhook_client: httpx.AsyncClient,
                                                  graph: respx.MockRouter) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "locale" in request.url.params["fields"]:
            return httpx.Response(400, json={"error": {
                "message": "(#100) Tried accessing nonexisting field (locale)", "code": 100}})
        return httpx.Response(200, json={"first_name": "Peter", "last_name": "Chang"})

    graph.get(url__startswith=f"{GRAPH}/{PSID}").mock(side_effect=answer)
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    await settle(hub)
    contact = await contact_of(hub, await conversation_on(hub, "fb"))
    assert contact.display_name == "Peter Chang" and "locale" not in contact.profile
    assert [r.url.params["fields"] for r in profile_gets(graph)] == [
        "first_name,last_name,profile_pic,locale,timezone", "first_name,last_name,profile_pic"]


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [
    httpx.Response(400, json={"error": {"message": "No profile available for this user.",
                                        "code": 100, "error_subcode": 2018218}}),
    httpx.Response(500, text="oops"),
    httpx.Response(200, json={}),
])
async def test_profile_failure_is_logged_and_blocks_nothing(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter, answer: httpx.Response,
        caplog: pytest.LogCaptureFixture) -> None:
    graph.get(url__startswith=f"{GRAPH}/{PSID}").mock(return_value=answer)
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    await settle(hub)
    conversation = await conversation_on(hub, "fb")
    assert (await contact_of(hub, conversation)).display_name is None
    assert [m.external_id for m in await hub.store.list_messages(conversation.id)] == ["m_1"]
    assert await hub.store.list_dead_letters() == []
    if answer.status_code != 200:
        assert any("no profile" in r.getMessage() for r in caplog.records)
    assert all("tok" not in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_instagram_profile_and_no_fetch_when_disabled(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter) -> None:
    await post(webhook_client, "ig", body(text_event("ig_1", {"id": IGSID}, page=IG),
                                          obj="instagram", page=IG))
    await post(webhook_client, "plain", body(text_event("m_p", {"id": "999"}, page="222"), page="222"))
    await settle(hub)
    contact = await contact_of(hub, await conversation_on(hub, "ig"))
    assert contact.display_name == "Ana Souza"
    assert contact.profile["instagram"] == {"id": IGSID, "name": "Ana Souza", "username": "ana.souza"}
    [request] = profile_gets(graph)
    assert request.url.params["fields"] == "name,username,profile_pic"
    assert (await contact_of(hub, await conversation_on(hub, "plain"))).display_name is None


# -- media from the blob store ---------------------------------------------------------------------


def adapter(cls: type = MessengerAdapter, **extra: Any) -> MessengerAdapter:
    settings = cls.Settings.model_validate({"app_secret": "s", "verify_token": "v",
                                            "page_access_token": "EAAB-token", **extra})
    return cls(settings, AdapterContext(key="fb", public_url=PUBLIC_URL, http=httpx.AsyncClient(),
                                        kv=MemoryKV(), blobs=MemoryBlobStore()))


def outbound(*parts: Any, handle: str = PSID, **metadata: Any) -> Message:
    now = datetime.now(UTC)
    return Message(id="msg_01UP", channel="messenger", channel_key="fb", adapter="messenger",
                   direction="outbound", conversation_id="conv_1",
                   sender=Address(channel="messenger", handle=PAGE),
                   recipients=[Address(channel="messenger", handle=handle)], parts=list(parts),
                   created_at=now, received_at=now, status="queued", metadata=metadata)


def test_public_url() -> None:
    assert public_url("https://cdn.example/p.jpg")
    assert not public_url(None) and not public_url("blob:abc") and not public_url("ftp://x.example/a")
    for private in ("http://localhost:8000/m.jpg", "http://127.0.0.1/m.jpg", "http://10.1.2.3/a",
                    "https://files.internal/a", "http://[::1]/a", "https://printer.local/a"):
        assert not public_url(private), private
    hosts = frozenset({"fbcdn.net"})
    assert not public_url("https://scontent.xx.fbcdn.net/v/x.jpg", hosts)
    assert public_url("https://notfbcdn.net/x.jpg", hosts)


@pytest.mark.anyio
async def test_stored_media_is_uploaded_once_and_sent_by_attachment_id(graph: respx.MockRouter) -> None:
    meta = adapter()
    data = b"%PDF-1.7 invoice bytes"
    info = await meta.context.blobs.put(data)
    part = MediaPart(kind="file", blob_key=info.key, sha256=info.sha256, filename="invoice.pdf",
                     content_type="application/pdf")
    first = await meta.send(outbound(part), [part])
    second = await meta.send(outbound(part).model_copy(update={"id": "msg_02UP"}), [part])
    assert first.external_ids and second.external_ids
    [upload] = [c.request for c in graph.calls if str(c.request.url).startswith(UPLOAD_URL)]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert upload.headers["authorization"] == "Bearer EAAB-token" and "appsecret_proof" in upload.url.params
    content = upload.content
    assert b'name="filedata"; filename="invoice.pdf"' in content and data in content
    assert b"Content-Type: application/pdf" in content
    assert b'{"attachment":{"type":"file","payload":{"is_reusable":true}}}' in content
    attachment_id = sends(graph)[0]["message"]["attachment"]
    assert attachment_id["type"] == "file" and set(attachment_id["payload"]) == {"attachment_id"}
    assert sends(graph)[1]["message"]["attachment"] == attachment_id  # cached by sha256


@pytest.mark.anyio
async def test_expiring_vendor_url_with_stored_bytes_is_uploaded(graph: respx.MockRouter) -> None:
    meta = adapter()
    info = await meta.context.blobs.put(b"\xff\xd8 photo")
    expiring = MediaPart(kind="image", blob_key=info.key,
                         url="https://scontent.xx.fbcdn.net/v/t1/photo.jpg?oe=1")  # no sha256 given
    by_url = MediaPart(kind="image", blob_key=info.key, url="https://cdn.shop.example/photo.jpg")
    await meta.send(outbound(expiring, by_url), [expiring, by_url])
    [first, second] = [b["message"]["attachment"] for b in sends(graph)]
    assert "attachment_id" in first["payload"]
    assert second["payload"] == {"url": "https://cdn.shop.example/photo.jpg", "is_reusable": True}
    digest = hashlib.sha256(b"\xff\xd8 photo").hexdigest()
    assert await meta.context.kv.kv_get(f"messenger:attachment:fb:image:{digest}") == \
        first["payload"]["attachment_id"]


@pytest.mark.anyio
async def test_uploads_refused_where_they_cannot_work(graph: respx.MockRouter) -> None:
    ig = adapter(InstagramAdapter)
    info = await ig.context.blobs.put(b"img")
    stored = MediaPart(kind="image", blob_key=info.key)
    with pytest.raises(UnsupportedFeatureError):
        await ig.send(outbound(stored), [stored])
    with pytest.raises(UnsupportedFeatureError):  # neither bytes nor a URL Meta can fetch
        await adapter().send(outbound(), [MediaPart(kind="image", url="http://localhost/x.jpg")])
    assert not graph.calls


@pytest.mark.anyio
async def test_hub_send_of_stored_media(hub: Hub, webhook_client: httpx.AsyncClient,
                                        graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    conversation = await conversation_on(hub, "fb")
    info = await hub.blobs.put(b"\x89PNG label")
    sent = await hub.send(conversation.id, parts=[MediaPart(kind="image", blob_key=info.key,
                                                            sha256=info.sha256, caption="Your label")],
                          wait=True)
    assert sent.status == "sent"
    bodies = sends(graph)
    assert "attachment_id" in bodies[0]["message"]["attachment"]["payload"]
    assert bodies[1]["message"]["text"] == "Your label"


# -- message tags ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tagged_update_outside_the_window_for_any_author(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    conversation = await age(hub, await conversation_on(hub, "fb"), days=30)
    sent = await hub.send(conversation.id, text="Your parcel was delivered.", author=Author(kind="bot"),
                          metadata={"messenger_tag": "POST_PURCHASE_UPDATE"}, wait=True)
    assert sent.status == "sent" and sent.metadata["tag"] == "POST_PURCHASE_UPDATE"
    [call] = sends(graph)
    assert call["messaging_type"] == "MESSAGE_TAG" and call["tag"] == "POST_PURCHASE_UPDATE"
    # an explicit tag wins over HUMAN_AGENT for a person's message too
    human = await hub.send(conversation.id, text="Your account was verified.", author=Author(kind="human"),
                           metadata={"messenger_tag": "ACCOUNT_UPDATE"}, wait=True)
    assert human.status == "sent" and sends(graph)[1]["tag"] == "ACCOUNT_UPDATE"


@pytest.mark.anyio
@pytest.mark.parametrize("metadata", [None, {"messenger_tag": "CONFIRMED_EVENT_UPDATE"},
                                      {"messenger_tag": "PROMOTION"}])
async def test_untagged_or_unallowed_update_outside_the_window_is_not_sent(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter,
        metadata: dict[str, str] | None) -> None:
    await post(webhook_client, "fb", body(text_event("m_1", {"id": PSID})))
    conversation = await age(hub, await conversation_on(hub, "fb"), days=3)
    with pytest.raises(WindowClosedError):  # refused by hub.send itself: nothing is queued
        await hub.send(conversation.id, text="Big sale!", author=Author(kind="bot"), metadata=metadata)
    assert sends(graph) == []
    assert not [m for m in await hub.store.list_messages(conversation.id) if m.direction == "outbound"]


@pytest.mark.anyio
async def test_without_message_tags_hub_send_refuses_at_once(
        hub: Hub, webhook_client: httpx.AsyncClient, graph: respx.MockRouter) -> None:
    await post(webhook_client, "plain", body(text_event("m_p", {"id": PSID}, page="222"), page="222"))
    conversation = await age(hub, await conversation_on(hub, "plain"), days=3)
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="x", author=Author(kind="bot"),
                       metadata={"messenger_tag": "POST_PURCHASE_UPDATE"})
    assert sends(graph) == []


@pytest.mark.anyio
async def test_inside_the_window_a_tag_rides_along(graph: respx.MockRouter) -> None:
    meta = adapter(message_tags=["ACCOUNT_UPDATE"])
    await meta.send(outbound(TextPart(text="a"), messenger_tag="ACCOUNT_UPDATE"), [TextPart(text="a")])
    second_message = outbound(TextPart(text="b"), messenger_tag="POST_PURCHASE_UPDATE")
    await meta.send(second_message.model_copy(update={"id": "msg_02UP"}), [TextPart(text="b")])
    first, second = sends(graph)
    assert first["messaging_type"] == "MESSAGE_TAG" and first["tag"] == "ACCOUNT_UPDATE"
    assert second["messaging_type"] == "RESPONSE" and "tag" not in second


def test_outside_window_with_the_messages_metadata() -> None:
    """What the policy answers once the core passes the message's metadata."""
    meta = adapter(message_tags=["POST_PURCHASE_UPDATE"], human_agent_tag=True)
    now = datetime.now(UTC)
    old = Conversation(id="c", channel="messenger", channel_key="fb", contact_id="k", thread_key="t",
                       created_at=now, last_inbound_at=now - timedelta(days=30))
    bot, human = Author(kind="bot"), Author(kind="human")
    parts = [TextPart(text="x")]
    assert meta.outside_window(parts, bot, old, {"messenger_tag": "POST_PURCHASE_UPDATE"}) == {
        "tag": "POST_PURCHASE_UPDATE"}
    assert meta.outside_window(parts, bot, old, {"messenger_tag": "ACCOUNT_UPDATE"}) is None
    assert meta.outside_window(parts, bot, old, {}) is None
    assert meta.outside_window(parts, human, old, {}) is None  # 30 days: past HUMAN_AGENT's 7
    assert meta.outside_window(parts, bot, old) == {"messenger_window": "tag_required"}
    assert adapter().outside_window(parts, bot, old) is None


def test_instagram_has_no_update_tags() -> None:
    with pytest.raises(ValueError, match="HUMAN_AGENT"):
        adapter(InstagramAdapter, message_tags=["ACCOUNT_UPDATE"])
    with pytest.raises(ValueError):
        adapter(message_tags=["NON_PROMOTIONAL_SUBSCRIPTION"])


def test_instagram_tags_refused_in_config(omni_config: dict[str, Any]) -> None:
    omni_config["channels"]["ig"]["message_tags"] = ["POST_PURCHASE_UPDATE"]
    with pytest.raises(ConfigurationError):
        Hub.from_config(omni_config, plugins=[_plugin])


# -- chat plugin visitors (user_ref) ---------------------------------------------------------------


def test_recipient_object() -> None:
    assert recipient_object(PSID) == {"id": PSID}
    assert recipient_object("user_ref:abc-123") == {"user_ref": "abc-123"}


@pytest.mark.anyio
async def test_user_ref_visitor_is_answered_by_user_ref(hub: Hub, webhook_client: httpx.AsyncClient,
                                                         graph: respx.MockRouter) -> None:
    await post(webhook_client, "fb", body(text_event("m_v", {"user_ref": "visitor-77"})))
    await settle(hub)
    conversation = await conversation_on(hub, "fb")
    assert conversation.thread_key == f"user_ref:visitor-77|{PAGE}"
    sent = await hub.send(conversation.id, text="Hi visitor!", wait=True)
    assert sent.status == "sent"
    [call] = sends(graph)
    assert call["recipient"] == {"user_ref": "visitor-77"}
    assert profile_gets(graph) == []  # no profile for a user_ref
    started = await hub.start_conversation("fb", "user_ref:visitor-77")
    assert started.id == conversation.id
    await hub.adapter("fb").sender_action("user_ref:visitor-77", "typing_on")  # type: ignore[attr-defined]
    assert sends(graph)[-1] == {"recipient": {"user_ref": "visitor-77"}, "sender_action": "typing_on"}
