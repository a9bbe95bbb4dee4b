"""End to end through a hub: opt-out compliance, threading, receipts, metadata, TwiML replies."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from omnichannel_sdk import Hub, OptedOutError

SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TOKEN = "twilio-test-auth-token-0123456789"
TWILIO_API = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
VONAGE_API = "https://rest.nexmo.com/sms/json"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def conversation_of(hub: Hub, key: str) -> Any:
    (conversation,) = [c for c in await hub.store.list_conversations() if c.channel_key == key]
    return conversation


@pytest.mark.anyio
async def test_stop_opts_out_and_start_opts_back_in(hub: Hub, samples: Any) -> None:
    await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
    conversation = await conversation_of(hub, "twilio")
    assert conversation.thread_key == "+14155550100|+15005550006"
    await hub.handle_webhook("twilio", samples.twilio("twilio_stop"))
    contact = await hub.store.get_contact(conversation.contact_id)
    assert contact is not None and "sms" in contact.opted_out
    with respx.mock(assert_all_called=False) as router:
        route = router.post(TWILIO_API).mock(return_value=httpx.Response(201, json={"sid": "SMx"}))
        with pytest.raises(OptedOutError):
            await hub.send(conversation.id, text="Are you still there?")
        assert not route.called
    await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms", Body="START",
                                                      MessageSid="SMstart1"))
    contact = await hub.store.get_contact(conversation.contact_id)
    assert "sms" not in contact.opted_out
    # the same person is the same thread: one conversation for all three messages
    assert len(await hub.store.list_messages(conversation.id)) == 3


@pytest.mark.anyio
async def test_vendor_21610_marks_the_contact(hub: Hub, samples: Any) -> None:
    await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
    conversation = await conversation_of(hub, "twilio")
    with respx.mock(assert_all_called=False) as router:
        refused = httpx.Response(400, json=samples.json("twilio_error_21610"))
        router.post(TWILIO_API).mock(return_value=refused)
        sent = await hub.send(conversation.id, text="Hello", wait=True)
    assert sent.status == "failed" and sent.error is not None and sent.error.code == "opted_out"
    contact = await hub.store.get_contact(conversation.contact_id)
    assert "sms" in contact.opted_out


@pytest.mark.anyio
async def test_send_records_encoding_and_receipts_go_forward_only(hub: Hub, samples: Any) -> None:
    await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
    conversation = await conversation_of(hub, "twilio")
    created = samples.json("twilio_send_created")
    with respx.mock(assert_all_called=False) as router:
        router.post(TWILIO_API).mock(return_value=httpx.Response(201, json=created))
        sent = await hub.send(conversation.id, text="Привет, ваш заказ отправлен", wait=True)
    assert sent.status == "sent" and sent.external_id == created["sid"]
    assert sent.metadata["encoding"] == "UCS-2" and sent.metadata["segments"] == 1
    for status in ("delivered", "sent"):  # a late "sent" never moves "delivered" back
        await hub.handle_webhook("twilio", samples.twilio(
            "twilio_status_delivered", MessageSid=created["sid"], SmsSid=created["sid"],
            MessageStatus=status))
    stored = await hub.store.get_message(sent.id)
    assert stored.status == "delivered"


@pytest.mark.anyio
async def test_buttons_become_a_numbered_list(hub: Hub, samples: Any) -> None:
    from omnichannel_sdk import Action, ActionsPart

    await hub.handle_webhook("vonage", samples.vonage(samples.json("vonage_inbound")))
    conversation = await conversation_of(hub, "vonage")
    assert conversation.thread_key == "+447700900001|+447700900000"
    with respx.mock(assert_all_called=False) as router:
        route = router.post(VONAGE_API).mock(return_value=httpx.Response(200, json=samples.json(
            "vonage_send_ok")))
        sent = await hub.send(conversation.id, parts=[ActionsPart(prompt="Pick one", actions=[
            Action(id="a", title="Track order"), Action(id="b", title="Talk to a person")])], wait=True)
    from urllib.parse import parse_qsl

    text = dict(parse_qsl(route.calls.last.request.content.decode()))["text"]
    assert text == "Pick one\n1. Track order\n2. Talk to a person"
    assert sent.metadata["encoding"] == "GSM-7" and sent.metadata["segments"] == 1
    # a Vonage receipt for that message is applied
    await hub.handle_webhook("vonage", samples.vonage({**samples.json("vonage_dlr_delivered"),
                                                       "messageId": sent.external_id}))
    assert (await hub.store.get_message(sent.id)).status == "delivered"


@pytest.mark.anyio
async def test_mms_media_downloaded_with_basic_auth(hub: Hub, samples: Any) -> None:
    with respx.mock(assert_all_called=False) as router:
        route = router.get(url__regex=r"^https://api\.twilio\.com/.*/Media/ME").mock(
            return_value=httpx.Response(200, content=b"\xff\xd8\xffjpeg",
                                        headers={"content-type": "image/jpeg"}))
        await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_mms"))
        conversation = await conversation_of(hub, "twilio")

        async def downloaded() -> bool:
            (msg,) = await hub.store.list_messages(conversation.id)
            return route.call_count == 2 and all(p.blob_key for p in msg.parts if p.type == "media")

        await eventually(downloaded)
    expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert route.call_count == 2
    assert all(c.request.headers["authorization"] == expected for c in route.calls)


@pytest.mark.anyio
@pytest.mark.parametrize(("key", "text", "encoding", "segments"), [
    ("twilio", "Привет, ваш заказ отправлен", "UCS-2", 1),
    ("twilio", "Your order shipped. " * 9, "GSM-7", 2),
    ("vonage", "Your order shipped", "GSM-7", 1),
    ("vonage", "谢谢您的耐心等待" * 9, "UCS-2", 2),
], ids=["twilio-ucs2", "twilio-gsm7-2", "vonage-gsm7", "vonage-ucs2-2"])
async def test_the_queued_message_hub_send_returns_carries_encoding_and_segments(
        hub: Hub, samples: Any, key: str, text: str, encoding: str, segments: int) -> None:
    """SPEC §10: known at render time, so on the message before the vendor sees it."""
    if key == "twilio":
        await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
    else:
        await hub.handle_webhook("vonage", samples.vonage(samples.json("vonage_inbound")))
    conversation = await conversation_of(hub, key)
    hub.delivery.submit = lambda job, message=None: None  # type: ignore[method-assign]  # stays ours
    queued = await hub.send(conversation.id, text=text)
    assert queued.status == "queued"
    assert (queued.metadata["encoding"], queued.metadata["segments"]) == (encoding, segments)
    stored = await hub.store.get_message(queued.id)
    assert stored is not None and stored.status == "queued"
    assert (stored.metadata["encoding"], stored.metadata["segments"]) == (encoding, segments)


@pytest.mark.anyio
async def test_a_text_past_max_segments_is_refused_before_it_is_queued(
        omni_config: dict[str, Any], register_plugin: list[object], samples: Any) -> None:
    from omnichannel_sdk import RejectedError

    omni_config["channels"]["twilio"].update(max_segments=2, max_segments_action="refuse")
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        await hub.handle_webhook("twilio", samples.twilio("twilio_inbound_sms"))
        conversation = await conversation_of(hub, "twilio")
        with pytest.raises(RejectedError, match="max_segments"):
            await hub.send(conversation.id, text="Lorem ipsum dolor sit amet. " * 20)
        assert len(await hub.store.list_messages(conversation.id)) == 1  # the inbound one only
