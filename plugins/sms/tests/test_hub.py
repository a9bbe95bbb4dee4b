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
