"""Delivery receipts from Mailgun's events webhook, SendGrid's Event Webhook and Postmark's
delivery / bounce / open / spam webhooks: the parsers on samples written from the vendors'
documentation, the signatures, and — through a real hub and its HTTP gateway — a sent message
moving to delivered / failed / read and never backwards."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_email import _plugin, mailgun_signature
from omnichannel_email._receipts import (
    mailgun_receipts,
    postmark_receipts,
    sendgrid_message_ref,
    sendgrid_receipts,
)
from omnichannel_email._sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER

from omnichannel_sdk import (
    EventPart,
    Hub,
    InboundMessage,
    Message,
    OptedOutError,
    StatusUpdate,
    UnparseablePayloadError,
)
from omnichannel_sdk.testing import PUBLIC_URL

EVENTS = Path(__file__).parent / "samples" / "events"
KEY = "mail"
CUSTOMER = "customer@example.org"
COMMON = {"from_address": "support@shop.example", "from_name": "Shop Support"}

MG_KEY = "mg-signing-key-123"
SG_PASSWORD = "sg-basic-password"
PM_PASSWORD = "pm-basic-password"
_SG_EVENT_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SG_EVENT_PUBLIC = base64.b64encode(_SG_EVENT_PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
_OTHER_PRIVATE = ec.generate_private_key(ec.SECP256R1())
OTHER_PUBLIC = base64.b64encode(_OTHER_PRIVATE.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


def ids_of(message: Message) -> list[str]:
    """Every external id the send recorded (ours first)."""
    return list(message.metadata.get("external_ids") or [message.external_id])


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sample(name: str, message_id: str = "msg-1@shop.example", vendor_id: str = "vendor-1") -> Any:
    text = (EVENTS / name).read_text()
    return orjson.loads(text.replace("__MESSAGE_ID__", message_id).replace("__VENDOR_ID__", vendor_id))


def signed_mailgun(body: dict[str, Any], key: str = MG_KEY, timestamp: int | None = None) -> bytes:
    stamp, token = str(timestamp or int(time.time())), secrets.token_hex(25)
    body["signature"] = {"timestamp": stamp, "token": token,
                         "signature": mailgun_signature(key, stamp, token)}
    return orjson.dumps(body)


def signed_sendgrid(body: bytes, private: ec.EllipticCurvePrivateKey = _SG_EVENT_PRIVATE
                    ) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}


# -- the parsers on the samples ----------------------------------------------------------------


def test_mailgun_events_map_to_statuses() -> None:
    [delivered] = mailgun_receipts(sample("mailgun_delivered.json", "<m1@shop.example>")).items
    assert isinstance(delivered, StatusUpdate)
    assert (delivered.external_id, delivered.status) == ("m1@shop.example", "delivered")
    assert delivered.timestamp.year == 2018
    [failed] = mailgun_receipts(sample("mailgun_failed_permanent.json")).items
    assert isinstance(failed, StatusUpdate) and failed.status == "failed" and failed.error
    assert failed.error.message == "The mailbox customer@example.org does not exist"
    assert failed.error.vendor_code == "550"
    [deferred] = mailgun_receipts(sample("mailgun_failed_temporary.json")).items
    assert isinstance(deferred, StatusUpdate) and deferred.status == "sent"
    assert "over quota" in deferred.metadata["deferred"]
    [opened] = mailgun_receipts(sample("mailgun_opened.json")).items
    assert isinstance(opened, StatusUpdate) and opened.status == "read"
    [complaint] = mailgun_receipts(sample("mailgun_complained.json")).items
    assert isinstance(complaint, InboundMessage) and complaint.sender.handle == CUSTOMER
    assert complaint.parts == [EventPart(name="opt_out", data={
        "reason": "complained", "vendor": "mailgun", "message_id": "msg-1@shop.example"})]
    assert complaint.references == ["msg-1@shop.example"]
    accepted = {"event-data": {"event": "accepted", "message": {"headers": {"message-id": "x@y"}}}}
    assert mailgun_receipts(accepted).items == []


def test_sendgrid_events_map_to_statuses() -> None:
    result = sendgrid_receipts(sample("sendgrid_events.json"))
    assert [(i.external_id, i.status) for i in result.items] == [  # type: ignore[union-attr]
        ("msg-1@shop.example", "sent"), ("msg-1@shop.example", "sent"),
        ("msg-1@shop.example", "delivered"), ("msg-1@shop.example", "read")]
    assert result.items[1].metadata["deferred"] == "400 try again later"  # type: ignore[union-attr]
    assert not result.failures
    mixed = sendgrid_receipts(sample("sendgrid_failures.json"))
    bounce, dropped, spam = mixed.items
    assert isinstance(bounce, StatusUpdate) and bounce.status == "failed"
    assert bounce.external_id == "vendor-1"  # no custom arg: the X-Message-Id of sg_message_id
    assert bounce.error is not None and bounce.error.vendor_code == "5.1.1"
    assert "does not exist" in bounce.error.message
    assert isinstance(dropped, StatusUpdate) and dropped.external_id == "14c5d75ce93.dfd.64b469"
    assert dropped.error is not None and dropped.error.message == "Bounced Address"
    assert isinstance(spam, InboundMessage) and spam.parts[0].name == "opt_out"  # type: ignore[union-attr]
    assert len(mixed.failures) == 2  # the event without sg_message_id, the string
    with pytest.raises(UnparseablePayloadError):
        sendgrid_receipts({"event": "delivered"})
    with pytest.raises(UnparseablePayloadError):
        sendgrid_receipts(["junk"])


def test_sendgrid_message_ref_forms() -> None:
    assert sendgrid_message_ref({"sg_message_id": "abc.filter0001.1.2.0"}) == "abc"
    assert sendgrid_message_ref({"sg_message_id": "W86k.recvd-5f54-1-0"}) == "W86k"
    assert sendgrid_message_ref({"sg_message_id": "plain"}) == "plain"
    assert sendgrid_message_ref({"omni_message_id": "<a@b>", "sg_message_id": "x"}) == "a@b"
    assert sendgrid_message_ref({}) is None


def test_postmark_events_map_to_statuses() -> None:
    [delivered] = postmark_receipts(sample("postmark_delivery.json")).items
    assert isinstance(delivered, StatusUpdate)
    assert (delivered.external_id, delivered.status) == ("vendor-1", "delivered")
    [bounce] = postmark_receipts(sample("postmark_bounce.json")).items
    assert isinstance(bounce, StatusUpdate) and bounce.status == "failed" and bounce.error
    assert bounce.error.vendor_code == "1" and "unable to deliver" in bounce.error.message
    [soft] = postmark_receipts(sample("postmark_soft_bounce.json")).items
    assert isinstance(soft, StatusUpdate) and soft.status == "sent" and soft.error is None
    [opened] = postmark_receipts(sample("postmark_open.json")).items
    assert isinstance(opened, StatusUpdate) and opened.status == "read"
    [spam] = postmark_receipts(sample("postmark_spam_complaint.json")).items
    assert isinstance(spam, InboundMessage) and spam.parts[0].name == "opt_out"  # type: ignore[union-attr]
    change = {"RecordType": "SubscriptionChange", "MessageID": "vendor-1", "Recipient": CUSTOMER,
              "ChangedAt": "2024-01-05T17:00:00Z", "SuppressSending": False,
              "SuppressionReason": None}
    [resubscribed] = postmark_receipts(change).items
    assert resubscribed.parts[0].name == "opt_in"  # type: ignore[union-attr]


# -- property tests ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.sampled_from(["delivered", "failed", "opened", "temporary", "Bounce", "Delivery", "Open",
                       "SpamComplaint", "SubscriptionChange", "bounce", "open", "spamreport",
                       "a@b.c", "<x@y>", "2024-01-05T16:33:54.9070259Z", "1521472262.9", "9" * 40]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.sampled_from([
        "event-data", "event", "message", "headers", "message-id", "severity", "delivery-status",
        "code", "description", "recipient", "timestamp", "id", "sg_message_id", "omni_message_id",
        "email", "reason", "status", "type", "RecordType", "MessageID", "TypeCode", "Inactive",
        "Recipient", "Email", "DeliveredAt", "BouncedAt", "ReceivedAt", "SuppressSending",
        "ChangedAt", "ID", "x"]), children, max_size=8),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_receipt_parsers_only_raise_typed_errors(body: Any) -> None:
    for parse in (mailgun_receipts, sendgrid_receipts, postmark_receipts):
        try:
            result = parse(body)
        except UnparseablePayloadError:
            continue
        for item in result.items:
            assert isinstance(item, StatusUpdate | InboundMessage)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["mailgun_delivered.json", "mailgun_failed_permanent.json",
                        "sendgrid_events.json", "sendgrid_failures.json", "postmark_bounce.json",
                        "postmark_open.json", "postmark_spam_complaint.json"]),
       st.text(max_size=30), st.text(max_size=30))
def test_receipt_parsers_survive_odd_ids(name: str, message_id: str, vendor_id: str) -> None:
    text = (EVENTS / name).read_text()
    body = orjson.loads(text.replace('"__MESSAGE_ID__"', orjson.dumps(message_id).decode())
                        .replace('"__VENDOR_ID__', orjson.dumps(vendor_id).decode()[:-1]))
    for parse in (mailgun_receipts, sendgrid_receipts, postmark_receipts):
        try:
            parse(body)
        except UnparseablePayloadError:
            pass


# -- through a real hub --------------------------------------------------------------------------

VENDORS: dict[str, dict[str, Any]] = {
    "mailgun": {"adapter": "mailgun", **COMMON, "signing_key": MG_KEY, "api_key": "key-mg"},
    "sendgrid": {"adapter": "sendgrid", **COMMON, "api_key": "SG.key",
                 "basic_auth_username": "hooks", "basic_auth_password": SG_PASSWORD,
                 "event_public_key": SG_EVENT_PUBLIC},
    "postmark": {"adapter": "postmark", **COMMON, "server_token": "pm-token",
                 "basic_auth_username": "hooks", "basic_auth_password": PM_PASSWORD},
}


class Vendor:
    """Fakes a vendor's send API (respx) and posts its events to our gateway."""

    def __init__(self, name: str, hub: Hub, client: httpx.AsyncClient) -> None:
        self.name, self.hub, self.client = name, hub, client
        self.sent = 0

    def mock_send(self, router: respx.MockRouter) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            self.sent += 1
            if self.name == "mailgun":
                return httpx.Response(200, json={"id": f"<mg-{self.sent}@shop.example>",
                                                 "message": "Queued. Thank you."})
            if self.name == "sendgrid":
                return httpx.Response(202, headers={"x-message-id": f"sgid{self.sent}"})
            return httpx.Response(200, json={"To": CUSTOMER, "ErrorCode": 0, "Message": "OK",
                                             "MessageID": f"pm-uuid-{self.sent}"})

        router.post(url__regex=r"https://api\.(mailgun\.net|sendgrid\.com|postmarkapp\.com)/.*"
                    ).mock(side_effect=answer)

    async def post(self, sample_name: str, message: Message) -> httpx.Response:
        """Post the vendor's event about ``message``, authenticated as the vendor does."""
        return await self.post_ids(sample_name, ids_of(message)[0], ids_of(message)[-1])

    async def post_ids(self, sample_name: str, ours: str, vendor_id: str) -> httpx.Response:
        """Post the vendor's event naming these ids."""
        body = sample(sample_name, ours, vendor_id)
        url = f"/webhooks/{KEY}"
        if self.name == "mailgun":
            return await self.client.post(url, content=signed_mailgun(body),
                                          headers={"content-type": "application/json"})
        if self.name == "sendgrid":
            for event in body:  # the custom arg is ours only if the send set it: check it did
                if isinstance(event, dict) and "omni_message_id" in event:
                    event["omni_message_id"] = ours
            raw = orjson.dumps(body)
            return await self.client.post(url, content=raw, headers={
                "content-type": "application/json", "authorization": basic("hooks", SG_PASSWORD),
                **signed_sendgrid(raw)})
        return await self.client.post(url, content=orjson.dumps(body), headers={
            "content-type": "application/json", "authorization": basic("hooks", PM_PASSWORD)})


@pytest.fixture(params=sorted(VENDORS))
async def vendor(request: pytest.FixtureRequest, omni_config: dict[str, Any]
                 ) -> AsyncIterator[tuple[Vendor, respx.MockRouter]]:
    omni_config["channels"][KEY] = VENDORS[request.param]
    hub = Hub.from_config(omni_config, plugins=[_plugin])
    async with hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            with respx.mock(assert_all_called=False) as router:
                fake = Vendor(request.param, hub, client)
                fake.mock_send(router)
                yield fake, router


async def send_one(hub: Hub, text: str = "Your parcel left today.") -> Message:
    conversation = await hub.start_conversation(KEY, CUSTOMER, subject="Your order")
    message = await hub.send(conversation.id, text, wait=True)
    stored = await hub.store.get_message(message.id)
    assert stored is not None and stored.status in ("queued", "sent", "delivered", "read"), stored
    assert stored.external_id, stored
    return stored


SAMPLES_OF = {
    "mailgun": {"delivered": "mailgun_delivered.json", "failed": "mailgun_failed_permanent.json",
                "read": "mailgun_opened.json", "deferred": "mailgun_failed_temporary.json",
                "opt_out": "mailgun_complained.json"},
    "sendgrid": {"delivered": "sendgrid_events.json", "failed": "sendgrid_failures.json",
                 "read": "sendgrid_events.json", "opt_out": "sendgrid_failures.json"},
    "postmark": {"delivered": "postmark_delivery.json", "failed": "postmark_bounce.json",
                 "read": "postmark_open.json", "deferred": "postmark_soft_bounce.json",
                 "opt_out": "postmark_spam_complaint.json"},
}


async def status_of(hub: Hub, message: Message) -> Message:
    found = await hub.store.get_message(message.id)
    assert found is not None
    return found


@pytest.mark.anyio
async def test_receipts_move_forward_only(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    fake, _ = vendor
    hub = fake.hub
    message = await send_one(hub)
    assert message.status in ("queued", "sent")
    samples = SAMPLES_OF[fake.name]
    if "deferred" in samples:
        assert (await fake.post(samples["deferred"], message)).status_code == 200
        assert (await status_of(hub, message)).status == "sent"
    assert (await fake.post(samples["delivered"], message)).status_code == 200
    if fake.name == "sendgrid":  # the batch carries processed, deferred, delivered and open
        assert (await status_of(hub, message)).status == "read"
    else:
        assert (await status_of(hub, message)).status == "delivered"
        assert (await fake.post(samples["read"], message)).status_code == 200
        assert (await status_of(hub, message)).status == "read"
    # late and replayed receipts never move it back
    for late in ("delivered", "failed"):
        assert (await fake.post(samples[late], message)).status_code == 200
        after = await status_of(hub, message)
        assert after.status == "read" and after.error is None, late
    assert not await hub.store.list_dead_letters() or fake.name == "sendgrid"


@pytest.mark.anyio
async def test_receipt_before_the_send_answer(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    """A receipt quicker than the vendor's answer to our send waits, and applies once the
    send recorded the vendor's id."""
    fake, _ = vendor
    hub = fake.hub
    first_id = {"mailgun": "mg-1@shop.example", "sendgrid": "sgid1", "postmark": "pm-uuid-1"}
    answer = await fake.post_ids(SAMPLES_OF[fake.name]["delivered"], first_id[fake.name],
                                 first_id[fake.name])
    assert answer.status_code == 200
    message = await send_one(hub)
    expected = "read" if fake.name == "sendgrid" else "delivered"
    for _ in range(50):
        if (await status_of(hub, message)).status == expected:
            break
        await asyncio.sleep(0.02)
    assert (await status_of(hub, message)).status == expected


@pytest.mark.anyio
async def test_bounce_receipt_fails_the_message(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    fake, _ = vendor
    hub = fake.hub
    message = await send_one(hub)
    assert (await fake.post(SAMPLES_OF[fake.name]["failed"], message)).status_code == 200
    failed = await status_of(hub, message)
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "undelivered"
    assert "does not exist" in failed.error.message or "unable to deliver" in failed.error.message
    # an open or delivery reported after the bounce does not resurrect it
    assert (await fake.post(SAMPLES_OF[fake.name]["read"], message)).status_code == 200
    assert (await status_of(hub, message)).status == "failed"


@pytest.mark.anyio
async def test_complaint_opts_the_contact_out(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    fake, _ = vendor
    hub = fake.hub
    message = await send_one(hub)
    assert (await fake.post(SAMPLES_OF[fake.name]["opt_out"], message)).status_code == 200
    conversation = await hub.store.get_conversation(message.conversation_id)
    assert conversation is not None
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and "email" in contact.opted_out
    events = [m for m in await hub.store.list_messages(message.conversation_id)
              if m.direction == "inbound"]
    assert [p.name for m in events for p in m.parts if isinstance(p, EventPart)] == ["opt_out"]
    sent_before = fake.sent
    with pytest.raises(OptedOutError):
        await hub.send(message.conversation_id, "One more thing", wait=True)
    assert fake.sent == sent_before


@pytest.mark.anyio
async def test_sends_record_the_ids_receipts_name(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    """Our Message-ID goes out with every send (SendGrid also gets it as a custom arg, which
    its events echo); the vendor's own id is recorded beside it."""
    fake, router = vendor
    message = await send_one(fake.hub)
    ours = ids_of(message)[0]
    assert ours == f"{message.id}@shop.example"
    sent = router.calls.last.request.content
    assert f"<{ours}>".encode() in sent
    if fake.name == "sendgrid":
        assert orjson.loads(sent)["custom_args"] == {"omni_message_id": ours}
        assert ids_of(message) == [ours, "sgid1"]
    elif fake.name == "postmark":
        assert ids_of(message) == [ours, "pm-uuid-1"]
    else:  # Mailgun answers with its own <id>, kept as a second external id
        assert ids_of(message) == [ours, "mg-1@shop.example"]


@pytest.mark.anyio
async def test_forged_receipts_refused(vendor: tuple[Vendor, respx.MockRouter]) -> None:
    fake, _ = vendor
    hub = fake.hub
    message = await send_one(hub)
    url = f"/webhooks/{KEY}"
    body = sample(SAMPLES_OF[fake.name]["failed"], ids_of(message)[0], ids_of(message)[-1])
    if fake.name == "mailgun":
        raw = signed_mailgun(body, key="not-the-key")
        forged = [{"content-type": "application/json"}]
        stale = signed_mailgun(body, timestamp=int(time.time()) - 3600)
        answers = [await fake.client.post(url, content=raw, headers=forged[0]),
                   await fake.client.post(url, content=stale, headers=forged[0]),
                   await fake.client.post(url, content=orjson.dumps({"event-data": body["event-data"]}),
                                          headers=forged[0])]
    elif fake.name == "sendgrid":
        raw = orjson.dumps(body)
        auth = {"content-type": "application/json", "authorization": basic("hooks", SG_PASSWORD)}
        answers = [
            await fake.client.post(url, content=raw, headers={**auth, **signed_sendgrid(
                raw, _OTHER_PRIVATE)}),
            await fake.client.post(url, content=raw, headers=auth),
            await fake.client.post(url, content=raw + b" ", headers={**auth, **signed_sendgrid(raw)}),
            await fake.client.post(url, content=raw, headers={
                **auth, "authorization": basic("hooks", "wrong"), **signed_sendgrid(raw)})]
    else:
        answers = [await fake.client.post(url, content=orjson.dumps(body), headers={
            "content-type": "application/json", "authorization": basic("hooks", "wrong")}),
            await fake.client.post(url, content=orjson.dumps(body),
                                   headers={"content-type": "application/json"})]
    assert [a.status_code for a in answers] == [403] * len(answers)
    assert (await status_of(hub, message)).status in ("queued", "sent")


def test_sendgrid_event_auth_choices() -> None:
    """Events verify with event_public_key alone, or basic auth alone; with only the Inbound
    Parse key they are refused (that key does not sign events)."""
    from omnichannel_email import SendGridAdapter

    from omnichannel_sdk import AdapterContext, SignatureError, WebhookRequest
    from omnichannel_sdk.testing import MemoryKV

    context = AdapterContext(key="sg", public_url="https://x.test", http=httpx.AsyncClient(),
                             kv=MemoryKV())
    raw = orjson.dumps(sample("sendgrid_events.json"))

    def adapter(**extra: Any) -> SendGridAdapter:
        return SendGridAdapter(SendGridAdapter.Settings.model_validate(
            {**COMMON, "api_key": "SG.key", **extra}), context)

    signed = WebhookRequest("POST", "https://x.test/webhooks/sg", {
        "content-type": "application/json", **signed_sendgrid(raw)}, raw)
    adapter(event_public_key=SG_EVENT_PUBLIC, verification_key=OTHER_PUBLIC).verify(signed)
    with pytest.raises(SignatureError):
        adapter(verification_key=SG_EVENT_PUBLIC).verify(signed)
    with pytest.raises(SignatureError):
        adapter(event_public_key=OTHER_PUBLIC, verification_key=OTHER_PUBLIC).verify(signed)
    with pytest.raises(ValueError, match="event_public_key"):
        adapter(verification_key=OTHER_PUBLIC, event_public_key="bm90IGEga2V5")


@functools.cache
def _json_adapters() -> tuple[Any, ...]:
    from omnichannel_email import MailgunAdapter, PostmarkAdapter, SendGridAdapter

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    context = AdapterContext(key="k", public_url="https://x.test", http=None,  # type: ignore[arg-type]
                             kv=MemoryKV())
    return tuple(cls(cls.Settings.model_validate({k: v for k, v in VENDORS[cls.name].items()
                                                  if k != "adapter"}), context)
                 for cls in (MailgunAdapter, SendGridAdapter, PostmarkAdapter))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())))
def test_adapters_on_arbitrary_json_posts(body: bytes) -> None:
    """verify and parse of a JSON post raise nothing but our typed errors."""
    from omnichannel_sdk import SignatureError, WebhookRequest

    request = WebhookRequest("POST", "https://x.test/webhooks/k", {
        "content-type": "application/json", "authorization": basic("hooks", "x"),
        SIGNATURE_HEADER: "bm9wZQ==", TIMESTAMP_HEADER: "nan"}, body)
    for adapter in _json_adapters():
        try:
            adapter.verify(request)
        except SignatureError:
            pass
        try:
            adapter.parse(request)
        except UnparseablePayloadError:
            pass
