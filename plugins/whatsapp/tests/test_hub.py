"""The adapter inside a real hub: gateway, duplicates, every message type, media, receipts,
the 24-hour window and vendor errors — the Cloud API faked with plain respx."""

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
from omnichannel_whatsapp import OFFERED_METADATA, sign_body
from omnichannel_whatsapp import _plugin as whatsapp_plugin

from omnichannel_sdk import (
    Action,
    ActionsPart,
    Conversation,
    EventPart,
    Hub,
    MediaPart,
    Message,
    TemplatePart,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
    WindowClosedError,
    hookimpl,
)

SAMPLES = Path(__file__).parent / "samples"
SECRET = "hub-app-secret"
TOKEN = "EAAG-hub-access-token"
PNID = "106540352242922"
CUSTOMER = "16505551234"
GRAPH = "https://graph.facebook.com/v21.0"
SEND_URL = f"{GRAPH}/{PNID}/messages"
CDN = "https://lookaside.fbsbx.com/whatsapp_business/attachments/"
JPEG = b"\xff\xd8\xff\xe0 a small jpeg"


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["channels"]["wa"] = {"adapter": "whatsapp", "app_secret": SECRET, "verify_token": "hub-verify",
                                     "access_token": TOKEN, "phone_number_id": PNID}
    return omni_config


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(whatsapp_plugin)
    return register_plugin


class CloudAPI:
    """The respx routes of a fake Cloud API, with what a test wants it to answer."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.counter = iter(range(1, 10_000))
        self.send_answers: list[httpx.Response] = []  # answered first, in order, then success
        self.cdn_url = CDN + "?mid=1&ext=1&hash=abc"
        self.sends = router.post(SEND_URL).mock(side_effect=self._send)
        self.lookups = router.get(url__regex=rf"^{GRAPH}/\d+").mock(side_effect=self._lookup)
        self.downloads = router.get(url__startswith=CDN).mock(
            return_value=httpx.Response(200, content=JPEG, headers={"content-type": "image/jpeg"}))

    def _send(self, request: httpx.Request) -> httpx.Response:
        if self.send_answers:
            return self.send_answers.pop(0)
        body = orjson.loads(request.content)
        if body.get("status") == "read":
            return httpx.Response(200, json={"success": True})
        return httpx.Response(200, json={
            "messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"].lstrip("+")}],
            "messages": [{"id": f"wamid.OUT{next(self.counter)}", "message_status": "accepted"}]})

    def _lookup(self, request: httpx.Request) -> httpx.Response:
        media = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, json={"messaging_product": "whatsapp", "url": self.cdn_url,
                                         "mime_type": "image/jpeg", "sha256": "x", "file_size": "20", "id": media})

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(c.request.content) for c in self.sends.calls]


@pytest.fixture
def cloud() -> Iterator[CloudAPI]:
    with respx.mock(assert_all_called=False) as router:
        yield CloudAPI(router)


def envelope(*, messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None,
             name: str = "Sheena Nelson", wa_id: str = CUSTOMER, pnid: str = PNID) -> bytes:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid}}
    if messages is not None:
        value["contacts"] = [{"profile": {"name": name}, "wa_id": wa_id}]
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]})


def stamp(offset: float = 0.0) -> str:
    return str(int(time.time() + offset))


def text(wamid: str, body: str = "hello", *, offset: float = 0.0, frm: str = CUSTOMER,
         context: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"from": frm, "id": wamid, "timestamp": stamp(offset), "type": "text",
                               "text": {"body": body}}
    if context:
        message["context"] = {"from": "15550783881", "id": context}
    return message


def status(wamid: str, name: str, *, offset: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {"id": wamid, "status": name, "timestamp": stamp(offset), "recipient_id": CUSTOMER, **extra}


async def post(client: httpx.AsyncClient, raw: bytes, secret: str = SECRET) -> httpx.Response:
    return await client.post("/webhooks/wa", content=raw, headers={
        "content-type": "application/json", "x-hub-signature-256": sign_body(secret, raw)})


async def only_conversation(hub: Hub) -> Conversation:
    [conversation] = await hub.store.list_conversations()
    return conversation


async def all_messages(hub: Hub) -> list[Message]:
    out: list[Message] = []
    for conversation in await hub.store.list_conversations():
        out.extend(await hub.store.list_messages(conversation.id))
    return out


async def eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


async def current(hub: Hub, message: Message) -> Message:
    found = await hub.store.get_message(message.id)
    assert found is not None
    return found


# -- gateway ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_handshake(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    ok = await webhook_client.get("/webhooks/wa", params={
        "hub.mode": "subscribe", "hub.verify_token": "hub-verify", "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": "hub-verify", "hub.challenge": "1"},
                   {"hub.challenge": "1"}):
        assert (await webhook_client.get("/webhooks/wa", params=params)).status_code == 403
    missing = await webhook_client.get("/webhooks/wa", params={"hub.mode": "subscribe",
                                                                "hub.verify_token": "hub-verify"})
    assert missing.status_code == 400


@pytest.mark.anyio
async def test_signature_is_over_the_raw_body(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    raw = envelope(messages=[text("wamid.SIG1", "caf\u00e9")])
    assert (await webhook_client.post("/webhooks/wa", content=raw)).status_code == 403
    assert (await post(webhook_client, raw, secret="another-app")).status_code == 403
    # the same JSON, re-encoded (as a proxy that escapes unicode would): the signature no longer fits
    reencoded = orjson.loads(raw)
    import json
    other = json.dumps(reencoded).encode()
    assert other != raw
    response = await webhook_client.post("/webhooks/wa", content=other, headers={
        "content-type": "application/json", "x-hub-signature-256": sign_body(SECRET, raw)})
    assert response.status_code == 403
    upper = await webhook_client.post("/webhooks/wa", content=raw, headers={
        "x-hub-signature-256": sign_body(SECRET, raw).upper().replace("SHA256=", "sha256=")})
    assert upper.status_code == 200  # hex digits in either case are the same signature
    assert len(await all_messages(hub)) == 1


@pytest.mark.anyio
async def test_duplicates_store_once_also_concurrently(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    raw = envelope(messages=[text("wamid.DUP1", "once")])
    answers = await asyncio.gather(*(post(webhook_client, raw) for _ in range(6)))
    assert {a.status_code for a in answers} == {200}
    assert (await post(webhook_client, raw)).status_code == 200
    assert [m.external_id for m in await all_messages(hub)] == ["wamid.DUP1"]


@pytest.mark.anyio
async def test_batch_with_a_broken_item_and_another_number(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    good = orjson.loads(envelope(messages=[text("wamid.B1", "one"), {"from": CUSTOMER, "type": "text"},
                                           text("wamid.B2", "two", frm="447700900123")]))
    foreign = orjson.loads(envelope(messages=[text("wamid.B3", "for another number")], pnid="999"))
    good["entry"].append(foreign["entry"][0])
    assert (await post(webhook_client, orjson.dumps(good))).status_code == 200
    assert sorted(m.external_id or "" for m in await all_messages(hub)) == ["wamid.B1", "wamid.B2"]
    letters = await hub.store.list_dead_letters()
    assert len(letters) == 2 and all(d.raw_id for d in letters)
    assert any("message.id" in d.error for d in letters)
    assert any("'999' is not this channel's" in d.error for d in letters)


# -- every message type ----------------------------------------------------------------------------

KINDS = {
    "text": ["text"], "image": ["media:image"], "audio_voice": ["media:audio"], "video": ["media:video"],
    "document": ["media:file"], "sticker": ["media:sticker"], "location": ["location"],
    "contacts": ["text", "event:contacts"], "interactive_button_reply": ["text", "event:action"],
    "interactive_list_reply": ["text", "event:action"], "button": ["text", "event:postback"],
    "reaction": ["event:reaction"], "reply_context": ["text"], "unsupported": ["event:unsupported"],
    "order": ["event:order"], "system_changed_number": ["event:user_changed_number"],
    "referral_ad": ["text", "event:referral"],
}


def shape(message: Message) -> list[str]:
    out = []
    for part in message.parts:
        if isinstance(part, MediaPart):
            out.append(f"media:{part.kind}")
        elif isinstance(part, EventPart):
            out.append(f"event:{part.name}")
        else:
            out.append(part.type)
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("sample", sorted(KINDS))
async def test_every_message_type_is_stored(hub: Hub, webhook_client: httpx.AsyncClient,
                                            cloud: CloudAPI, sample: str) -> None:
    assert (await post(webhook_client, (SAMPLES / f"{sample}.json").read_bytes())).status_code == 200
    [message] = await all_messages(hub)
    assert shape(message) == KINDS[sample]
    assert message.sender.handle.startswith("+") and message.sender.handle[1:].isdigit()
    assert message.created_at == datetime(2024, 11, 30, 22, 0, tzinfo=UTC)
    assert await hub.store.list_dead_letters() == []


@pytest.mark.anyio
async def test_profile_name_and_e164_into_the_contact(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.P1")], name="Sheena Nelson"))
    conversation = await only_conversation(hub)
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and contact.display_name == "Sheena Nelson"
    assert [(a.channel, a.handle) for a in contact.addresses] == [("whatsapp", "+16505551234")]
    assert contact.profile["whatsapp"] == {"wa_id": CUSTOMER, "name": "Sheena Nelson"}
    assert conversation.thread_key == f"+16505551234|{PNID}"
    started = await hub.start_conversation("wa", "+1 650 555 1234")
    assert started.id == conversation.id


# -- replies, actions ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_context_becomes_reply_to_both_ways(hub: Hub, webhook_client: httpx.AsyncClient,
                                                  cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.IN1", "Where is my parcel?")]))
    conversation = await only_conversation(hub)
    [inbound] = await hub.store.list_messages(conversation.id)
    sent = await hub.send(conversation.id, text="It left the depot", reply_to=inbound.id, wait=True)
    assert cloud.bodies()[-1]["context"] == {"message_id": "wamid.IN1"}
    await post(webhook_client, envelope(messages=[text("wamid.IN2", "thanks!", context=sent.external_id)]))
    last = (await hub.store.list_messages(conversation.id))[-1]
    assert last.external_id == "wamid.IN2" and last.reply_to == sent.id


async def _answered(hub: Hub, webhook_client: httpx.AsyncClient, reply: dict[str, Any]) -> Message:
    conversation = await only_conversation(hub)
    await post(webhook_client, envelope(messages=[reply]))
    last = (await hub.store.list_messages(conversation.id))[-1]

    async def resolved() -> Message | None:
        found = await current(hub, last)
        return found if any(isinstance(p, EventPart) and p.name == "action" and "kind" in p.data
                            for p in found.parts) else None

    return await eventually(resolved)  # type: ignore[no-any-return]


@pytest.mark.anyio
async def test_button_reply_maps_back_to_the_offered_action(hub: Hub, webhook_client: httpx.AsyncClient,
                                                            cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.A0")]))
    conversation = await only_conversation(hub)
    offered = ActionsPart(prompt="How can we help?", actions=[
        Action(id="track", title="Track my order"), Action(id="refund", title="Refund", kind="postback",
                                                            value="REFUND_FLOW_7"),
        Action(id="agent", title="Talk to a person")])
    sent = await hub.send(conversation.id, parts=[offered], wait=True)
    [body] = cloud.bodies()
    assert body["type"] == "interactive" and body["interactive"]["type"] == "button"
    assert [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]] == ["track", "refund", "agent"]
    assert sent.metadata[OFFERED_METADATA][1]["value"] == "REFUND_FLOW_7"
    reply = {"from": CUSTOMER, "id": "wamid.A1", "timestamp": stamp(), "type": "interactive",
             "context": {"from": "15550783881", "id": sent.external_id},
             "interactive": {"type": "button_reply", "button_reply": {"id": "refund", "title": "Refund"}}}
    answered = await _answered(hub, webhook_client, reply)
    assert answered.reply_to == sent.id
    [event] = [p for p in answered.parts if isinstance(p, EventPart)]
    assert event.data["id"] == "refund" and event.data["kind"] == "postback"
    assert event.data["value"] == "REFUND_FLOW_7"


@pytest.mark.anyio
async def test_list_of_up_to_ten_rows_and_the_list_reply(hub: Hub, webhook_client: httpx.AsyncClient,
                                                         cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.L0")]))
    conversation = await only_conversation(hub)
    actions = [Action(id=f"slot-{i}", title=f"Tuesday {8 + i}:00") for i in range(10)]
    sent = await hub.send(conversation.id, text="Pick a delivery slot", parts=[ActionsPart(actions=actions)],
                          wait=True)
    [body] = cloud.bodies()  # the text rides along as the list's body
    assert body["interactive"]["type"] == "list"
    assert body["interactive"]["body"] == {"text": "Pick a delivery slot"}
    assert len(body["interactive"]["action"]["sections"][0]["rows"]) == 10
    reply = {"from": CUSTOMER, "id": "wamid.L1", "timestamp": stamp(), "type": "interactive",
             "context": {"from": "15550783881", "id": sent.external_id},
             "interactive": {"type": "list_reply", "list_reply": {"id": "slot-3", "title": "Tuesday 11:00"}}}
    answered = await _answered(hub, webhook_client, reply)
    [event] = [p for p in answered.parts if isinstance(p, EventPart)]
    assert event.data["id"] == "slot-3" and event.data["kind"] == "reply"


@pytest.mark.anyio
async def test_more_than_ten_choices_become_a_numbered_text(hub: Hub, webhook_client: httpx.AsyncClient,
                                                            cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.N0")]))
    conversation = await only_conversation(hub)
    actions = [Action(id=f"c{i}", title=f"Choice {i}") for i in range(1, 13)]
    await hub.send(conversation.id, parts=[ActionsPart(prompt="Pick one", actions=actions)], wait=True)
    [body] = cloud.bodies()
    assert body["type"] == "text" and "12. Choice 12" in body["text"]["body"]
    await post(webhook_client, envelope(messages=[text("wamid.N1", "2")]))
    last = (await hub.store.list_messages(conversation.id))[-1]
    assert next(p for p in last.parts if isinstance(p, EventPart)).data["id"] == "c2"


# -- media -----------------------------------------------------------------------------------------


async def downloaded(hub: Hub, message: Message) -> Message | None:
    found = await current(hub, message)
    return found if all(p.blob_key for p in found.parts if isinstance(p, MediaPart)) else None


@pytest.mark.anyio
async def test_media_lookup_then_authenticated_download(hub: Hub, webhook_client: httpx.AsyncClient,
                                                        cloud: CloudAPI) -> None:
    await post(webhook_client, (SAMPLES / "image.json").read_bytes())
    [message] = await all_messages(hub)
    fresh = await eventually(lambda: downloaded(hub, message))
    part = fresh.parts[0]
    assert isinstance(part, MediaPart) and part.size == len(JPEG) and part.sha256
    assert part.caption == "The box was open" and part.content_type == "image/jpeg"
    assert await hub.blobs.get(part.blob_key or "") == JPEG
    [lookup] = cloud.lookups.calls
    assert str(lookup.request.url).startswith(f"{GRAPH}/1003383421387256")
    assert lookup.request.headers["authorization"] == f"Bearer {TOKEN}"
    [download] = cloud.downloads.calls
    assert download.request.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_a_lookup_pointing_elsewhere_gets_no_token(hub: Hub, webhook_client: httpx.AsyncClient,
                                                         cloud: CloudAPI) -> None:
    cloud.cdn_url = "https://attacker.example/steal"
    stolen = cloud.router.get(url__startswith="https://attacker.example/").mock(
        return_value=httpx.Response(200, content=b"x"))
    await post(webhook_client, (SAMPLES / "image.json").read_bytes())

    async def dead_lettered() -> bool:
        return any(d.error.startswith("media") for d in await hub.store.list_dead_letters())

    await eventually(dead_lettered)
    assert not stolen.calls


class Engine:
    name = "fake-engine"

    def transcribe(self, audio: bytes, *, content_type: str | None = None,
                   language: str | None = None) -> TranscriptPart:
        return TranscriptPart(segments=[TranscriptSegment(start=0, end=1, text=f"{len(audio)} bytes of {content_type}")])


class EnginePlugin:
    @hookimpl
    def omni_register_transcribers(self, register: Any) -> None:
        register(Engine())


@pytest.mark.anyio
async def test_voice_note_is_downloaded_and_transcribed(omni_config: dict[str, Any], cloud: CloudAPI) -> None:
    hub = Hub.from_config(omni_config, plugins=[whatsapp_plugin, EnginePlugin()])
    async with hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=hub.public_url) as client:
            await post(client, (SAMPLES / "audio_voice.json").read_bytes())
        [message] = await all_messages(hub)
        assert message.metadata["voice"] is True

        async def transcribed() -> Message | None:
            found = await current(hub, message)
            return found if any(isinstance(p, TranscriptPart) for p in found.parts) else None

        fresh = await eventually(transcribed)
        [transcript] = [p for p in fresh.parts if isinstance(p, TranscriptPart)]
        assert transcript.segments[0].text == f"{len(JPEG)} bytes of audio/ogg"


# -- receipts --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_receipts_only_move_forward(hub: Hub, webhook_client: httpx.AsyncClient, cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.R0")]))
    conversation = await only_conversation(hub)
    sent = await hub.send(conversation.id, text="Your refund is on its way", wait=True)
    assert sent.status == "sent" and sent.external_id == "wamid.OUT1"
    pricing = {"billable": False, "pricing_model": "PMP", "category": "service", "type": "free_customer_service"}
    conv = {"id": "f5fdae3920125a39a1e6a23e5f877c16", "origin": {"type": "service"}}
    await post(webhook_client, envelope(statuses=[status("wamid.OUT1", "delivered", pricing=pricing,
                                                         conversation=conv)]))
    delivered = await current(hub, sent)
    assert delivered.status == "delivered" and delivered.metadata["pricing"] == pricing
    assert delivered.metadata["conversation"]["id"] == conv["id"]
    await post(webhook_client, envelope(statuses=[status("wamid.OUT1", "read", offset=5)]))
    # late and out-of-order receipts never move it back
    await post(webhook_client, envelope(statuses=[status("wamid.OUT1", "sent", offset=-5)]))
    await post(webhook_client, envelope(statuses=[status("wamid.OUT1", "delivered", offset=-3)]))
    await post(webhook_client, envelope(statuses=[status("wamid.OUT1", "failed", offset=9, errors=[
        {"code": 131026, "title": "Message undeliverable"}])]))
    final = await current(hub, sent)
    assert final.status == "read" and final.error is None


@pytest.mark.anyio
async def test_failed_receipt_carries_code_and_title(hub: Hub, webhook_client: httpx.AsyncClient,
                                                     cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.F0")]))
    conversation = await only_conversation(hub)
    sent = await hub.send(conversation.id, text="Are you still there?", wait=True)
    await post(webhook_client, envelope(statuses=[status(sent.external_id or "", "failed", errors=[{
        "code": 131026, "title": "Message undeliverable",
        "error_data": {"details": "The recipient is not a valid WhatsApp user."}}])]))
    failed = await current(hub, sent)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.vendor_code == "131026" and failed.error.code == "undelivered"
    assert "Message undeliverable" in failed.error.message and "not a valid WhatsApp user" in failed.error.message


# -- the 24-hour window ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_window_runs_from_the_vendor_timestamp(hub: Hub, webhook_client: httpx.AsyncClient,
                                                     cloud: CloudAPI) -> None:
    # written 23 hours ago, delivered to us only now: one hour of window is left
    await post(webhook_client, envelope(messages=[text("wamid.W0", offset=-23 * 3600)]))
    conversation = await only_conversation(hub)
    assert conversation.window_expires_at is not None
    left = conversation.window_expires_at - datetime.now(UTC)
    assert timedelta(minutes=55) < left < timedelta(minutes=61)
    assert (await hub.send(conversation.id, text="Still on time", wait=True)).status == "sent"


@pytest.mark.anyio
async def test_outside_the_window_only_templates(hub: Hub, webhook_client: httpx.AsyncClient,
                                                 cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.W1", offset=-25 * 3600)]))
    conversation = await only_conversation(hub)
    for parts in ([TextPart(text="Hi again")],
                  [TemplatePart(name="order_update", language="en_US"), TextPart(text="and this")]):
        with pytest.raises(WindowClosedError):
            await hub.send(conversation.id, parts=parts)
    assert not cloud.sends.calls
    sent = await hub.send(conversation.id, parts=[TemplatePart(
        name="order_update", language="en_US", params={"body": ["Sheena", "A-1042"]})], wait=True)
    assert sent.status == "sent"
    [body] = cloud.bodies()
    assert body["type"] == "template" and body["template"]["name"] == "order_update"
    assert body["template"]["components"] == [{"type": "body", "parameters": [
        {"type": "text", "text": "Sheena"}, {"type": "text", "text": "A-1042"}]}]


@pytest.mark.anyio
async def test_window_closing_while_queued_is_refused_before_the_vendor(
        hub: Hub, webhook_client: httpx.AsyncClient, cloud: CloudAPI) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.W2")]))
    conversation = await only_conversation(hub)
    [inbound] = await hub.store.list_messages(conversation.id)
    then = datetime.now(UTC) - timedelta(hours=30)
    await hub.store.update_conversation(conversation.model_copy(update={
        "last_inbound_at": then, "window_expires_at": then + timedelta(hours=24)}))
    adapter = hub.adapters["wa"]
    outbound = inbound.model_copy(update={"id": "msg_late", "direction": "outbound", "status": "queued",
                                          "recipients": [inbound.sender], "parts": [TextPart(text="late")]})
    with pytest.raises(WindowClosedError):
        await adapter.send(outbound, outbound.parts)
    assert not cloud.sends.calls


# -- vendor errors through the outbox --------------------------------------------------------------


def graph_error(status: int, code: int, title: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"error": {
        "message": f"(#{code}) {title}", "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": title}, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})


@pytest.mark.anyio
@pytest.mark.parametrize(("answer", "code", "calls"), [
    (graph_error(400, 131047, "Re-engagement message"), "window_closed", 1),
    (graph_error(401, 190, "Error validating access token"), "auth", 1),
    (graph_error(400, 131026, "Message undeliverable"), "provider", 1),
    (graph_error(400, 131051, "Unsupported message type"), "provider", 1),
])
async def test_errors_that_are_not_retried(hub: Hub, webhook_client: httpx.AsyncClient, cloud: CloudAPI,
                                           answer: httpx.Response, code: str, calls: int) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.E0")]))
    conversation = await only_conversation(hub)
    cloud.send_answers = [answer] * 3
    failed = await hub.send(conversation.id, text="hello?", wait=True)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == code and failed.error.vendor_code == str(orjson.loads(answer.content)["error"]["code"])
    assert len(cloud.sends.calls) == calls
    assert TOKEN not in failed.error.message


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [
    graph_error(400, 130429, "Rate limit hit", headers={"Retry-After": "0"}),
    graph_error(400, 131056, "(Business Account, Consumer Account) pair rate limit hit", headers={"Retry-After": "0"}),
    graph_error(500, 131000, "Something went wrong"),
])
async def test_throttling_and_hiccups_are_retried(hub: Hub, webhook_client: httpx.AsyncClient, cloud: CloudAPI,
                                                  answer: httpx.Response) -> None:
    await post(webhook_client, envelope(messages=[text("wamid.T0")]))
    conversation = await only_conversation(hub)
    cloud.send_answers = [answer]
    sent = await hub.send(conversation.id, text="hello", wait=True)
    assert sent.status == "sent" and len(cloud.sends.calls) == 2
