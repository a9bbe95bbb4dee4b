"""Passive replies: a quick bot answer rides on Twilio's TwiML response."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from omnichannel_sdk import Hub, TextPart, hookimpl


class _Bot:
    @hookimpl
    def omni_inbound_passive_reply(self, hub: Any, adapter: Any, message: Any, conversation: Any) -> Any:
        if "order" in message.text:
            return [TextPart(text="Thanks! We\u2019ll check order #1234 & reply soon.")]
        return None


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_Bot())
    return register_plugin


@pytest.fixture
def sms_channels(sms_channels: dict[str, Any]) -> dict[str, Any]:
    sms_channels["twilio"]["transliterate"] = True
    return sms_channels


@pytest.mark.anyio
async def test_passive_reply_rides_on_twiml(hub: Hub, webhook_client: httpx.AsyncClient,
                                            samples: Any) -> None:
    request = samples.twilio("twilio_inbound_sms")
    response = await webhook_client.post("/webhooks/twilio", content=request.body, headers={
        "content-type": request.headers["content-type"],
        "x-twilio-signature": request.headers["x-twilio-signature"]})
    assert response.status_code == 200
    assert response.text == ('<?xml version="1.0" encoding="UTF-8"?><Response><Message><Body>'
                             "Thanks! We'll check order #1234 &amp; reply soon.</Body></Message></Response>")
    conversation = await conversation_of(hub, "twilio")
    reply = [m for m in await hub.store.list_messages(conversation.id) if m.direction == "outbound"]
    assert len(reply) == 1 and reply[0].metadata["passive_reply"] is True
    assert reply[0].metadata["encoding"] == "GSM-7" and reply[0].metadata["segments"] == 1
    # a message the bot does not answer gets empty TwiML
    other = samples.twilio("twilio_inbound_sms", Body="hello", MessageSid="SMother")
    plain = await webhook_client.post("/webhooks/twilio", content=other.body, headers={
        "content-type": other.headers["content-type"],
        "x-twilio-signature": other.headers["x-twilio-signature"]})
    assert plain.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def conversation_of(hub: Hub, key: str) -> Any:
    (conversation,) = [c for c in await hub.store.list_conversations() if c.channel_key == key]
    return conversation


@pytest.mark.anyio
async def test_no_passive_reply_work_without_a_hook(hub: Hub, webhook_client: httpx.AsyncClient,
                                                    samples: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # with no plugin implementing omni_inbound_passive_reply the hub does not even start the
    # passive-reply step (it used to, and found out inside that nobody answers)
    hub.pm.unregister(next(p for p in hub.pm.get_plugins() if isinstance(p, _Bot)))
    calls: list[object] = []

    async def spy(*args: Any) -> None:
        calls.append(args)

    monkeypatch.setattr(hub.inbound, "_passive_reply", spy)
    request = samples.twilio("twilio_inbound_sms", MessageSid="SMnohook")
    response = await webhook_client.post("/webhooks/twilio", content=request.body, headers={
        "content-type": request.headers["content-type"],
        "x-twilio-signature": request.headers["x-twilio-signature"]})
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert calls == []
    conversation = await conversation_of(hub, "twilio")
    assert [m.direction for m in await hub.store.list_messages(conversation.id)] == ["inbound"]
