"""hub.send: rendering, windows, opt-outs, the durable outbox, receipts, media downloads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest
import respx

from omnichannel_sdk import (
    Action,
    ActionsPart,
    Author,
    EventPart,
    Hub,
    MediaPart,
    OptedOutError,
    StatusUpdate,
    TemplatePart,
    TextPart,
    WindowClosedError,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]
SEND = "https://api.fake.test/messages"


async def inbound(client: httpx.AsyncClient, ext: str, text: str = "hi", **extra: Any) -> None:
    body, headers = signed([{"id": ext, "from": "alice", "text": text, **extra}])
    response = await client.post("/webhooks/fake", content=body, headers=headers)
    assert response.status_code == 200


async def conversation_id(hub: Hub) -> str:
    [conversation] = await hub.store.list_conversations()
    return conversation.id


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_send_delivers_and_receipts_move_status(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    cid = await conversation_id(hub)
    with respx.mock(assert_all_called=True) as vendor:
        route = vendor.post(SEND).respond(200, json={"id": "v1"})
        message = await hub.send(cid, text="Hello Alice", author=Author(kind="human", name="Bo"), wait=True)
    assert message.status == "sent" and message.external_id == "v1"
    request = route.calls.last.request
    assert request.headers["idempotency-key"] == message.id
    assert orjson.loads(request.content) == {"to": "alice", "texts": ["Hello Alice"]}
    body, headers = signed([{"status": "delivered", "for": "v1"}])
    await webhook_client.post("/webhooks/fake", content=body, headers=headers)
    stored = await hub.store.get_message(message.id)
    assert stored and stored.status == "delivered" and stored.author and stored.author.name == "Bo"
    assert stored.direction == "outbound" and stored.recipients[0].handle == "alice"


async def test_receipt_before_the_vendor_answer_is_kept(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    await hub.apply_status("fake", StatusUpdate(external_id="v9", status="delivered"))
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v9"})
        message = await hub.send(await conversation_id(hub), text="x", wait=True)

    async def delivered() -> bool:
        stored = await hub.store.get_message(message.id)
        return bool(stored and stored.status == "delivered")

    await wait_until(delivered)


async def test_actions_become_a_numbered_list_and_an_answer_maps_back(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    cid = await conversation_id(hub)
    actions = [Action(id=f"a{i}", title=f"Option {i}") for i in range(1, 5)]  # fake shows 3 buttons
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(200, json={"id": "v2"})
        await hub.send(cid, parts=[ActionsPart(prompt="Pick one", actions=actions)], wait=True)
    sent = orjson.loads(route.calls.last.request.content)
    assert sent["texts"] == ["Pick one\n1. Option 1\n2. Option 2\n3. Option 3\n4. Option 4"]
    await inbound(webhook_client, "in2", text="2")
    last = (await hub.store.list_messages(cid))[-1]
    assert EventPart(name="action", data=actions[1].model_dump()) in last.parts


async def test_long_text_is_split_and_unsupported_media_becomes_a_link(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(200, json={"id": "v3"})
        await hub.send(await conversation_id(hub), text="word " * 50,
                       parts=[MediaPart(kind="video", url="https://cdn.example/v.mp4", caption="Demo")],
                       wait=True)
    sent = orjson.loads(route.calls.last.request.content)
    assert all(len(t) <= 160 for t in sent["texts"]) and len(sent["texts"]) == 3
    assert sent["texts"][-1] == "Demo: https://cdn.example/v.mp4"


async def test_window_closed_refuses_text_but_allows_templates(hub: Hub) -> None:
    conversation = await hub.start_conversation("fake", "carol")
    with pytest.raises(WindowClosedError):
        await hub.send(conversation.id, text="hello?")
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v4"})
        message = await hub.send(conversation.id, parts=[TemplatePart(name="welcome")], wait=True)
    assert message.status == "sent" and message.metadata["window"] == "template"


async def test_opted_out_contact_is_refused_without_calling_the_vendor(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1", text="STOP", event="opt_out")
    with respx.mock(assert_all_called=False) as vendor:
        route = vendor.post(SEND).respond(200, json={"id": "v5"})
        with pytest.raises(OptedOutError):
            await hub.send(await conversation_id(hub), text="Deal of the day")
    assert not route.called


async def test_retry_after_is_honoured(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    calls: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "1"})
        return httpx.Response(200, json={"id": "v6"})

    with respx.mock() as vendor:
        vendor.post(SEND).mock(side_effect=answer)
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "sent" and len(calls) == 2
    assert calls[1] - calls[0] >= 0.95


async def test_last_try_dead_letters_then_replay_sends(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(503)
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "failed" and route.call_count == 3  # max_attempts in the kit config
    assert message.error and message.error.code == "provider" and message.error.message  # a 5xx, not a refusal
    [letter] = await hub.store.list_dead_letters()
    assert letter.kind == "outbound" and letter.message_id == message.id
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v7"})
        report = await hub.replay()
        assert report.replayed == [letter.id]

        async def sent() -> bool:
            stored = await hub.store.get_message(message.id)
            return bool(stored and stored.status == "sent")

        await wait_until(sent)


async def test_rejection_fails_at_once(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(400, json={"error": "bad number"})
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "failed" and route.call_count == 1


async def test_idempotency_key_sends_once(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    cid = await conversation_id(hub)
    with respx.mock() as vendor:
        route = vendor.post(SEND).respond(200, json={"id": "v8"})
        first = await hub.send(cid, text="once", idempotency_key="ticket-42-reply-1", wait=True)
        second = await hub.send(cid, text="once", idempotency_key="ticket-42-reply-1")
    assert first.id == second.id and route.call_count == 1


async def test_a_send_left_by_a_crashed_process_is_resumed(
        omni_config: dict, register_plugin: list) -> None:
    omni_config["omnichannel"]["delivery"]["lease"] = 0.2
    first = Hub.from_config(omni_config, plugins=register_plugin)
    async with first:
        transport = httpx.ASGITransport(app=first.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "in1")
        first.delivery.submit = lambda job, message=None: None  # the process dies before sending
        await first.delivery.stop()
        message = await first.send(await conversation_id(first), text="survives")
        assert message.status == "queued"
    second = Hub.from_config(omni_config, plugins=register_plugin)
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v10"})
        async with second:
            async def sent() -> bool:
                stored = await second.store.get_message(message.id)
                return bool(stored and stored.status == "sent")

            await wait_until(sent)


async def test_inbound_media_is_downloaded_into_the_blob_store(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    with respx.mock() as vendor:
        vendor.get("https://media.fake.test/cat.png").respond(
            200, content=b"\x89PNG-cat", headers={"content-type": "image/png"})
        await inbound(webhook_client, "in1", media_url="https://media.fake.test/cat.png")
        cid = await conversation_id(hub)

        async def downloaded() -> bool:
            [message] = await hub.store.list_messages(cid)
            return any(getattr(p, "blob_key", None) for p in message.parts)

        await wait_until(downloaded)
    [message] = await hub.store.list_messages(cid)
    part = next(p for p in message.parts if isinstance(p, MediaPart))
    assert part.size == 8 and part.content_type == "image/png" and part.sha256 == part.blob_key
    assert await hub.blobs.get(part.blob_key or "") == b"\x89PNG-cat"


async def test_media_from_undeclared_hosts_is_never_fetched(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as vendor:
        route = vendor.get(url__regex=".*").respond(200, content=b"x")
        await inbound(webhook_client, "in1", media_url="http://169.254.169.254/latest/meta-data")

        async def letter() -> bool:
            return bool(await hub.store.list_dead_letters())

        await wait_until(letter)
    assert not route.called
    [dead] = await hub.store.list_dead_letters()
    assert "not declared" in dead.error


async def test_media_redirect_to_another_host_is_refused(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    with respx.mock(assert_all_called=False) as vendor:
        vendor.get("https://media.fake.test/r").respond(302, headers={"location": "https://evil.test/x"})
        evil = vendor.get("https://evil.test/x").respond(200, content=b"x")
        await inbound(webhook_client, "in1", media_url="https://media.fake.test/r")

        async def letter() -> bool:
            return bool(await hub.store.list_dead_letters())

        await wait_until(letter)
    assert not evil.called


async def test_media_over_the_size_cap_is_refused(omni_config: dict, register_plugin: list) -> None:
    omni_config["channels"]["fake"]["media_max_bytes"] = 10
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            with respx.mock() as vendor:
                vendor.get("https://media.fake.test/big").respond(200, content=b"x" * 1000)
                await inbound(client, "in1", media_url="https://media.fake.test/big")

                async def letter() -> bool:
                    return bool(await hub.store.list_dead_letters())

                await wait_until(letter)
        [dead] = await hub.store.list_dead_letters()
        assert "exceeds" in dead.error or "larger" in dead.error


class Observer:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.statuses: list[tuple[str, str]] = []

    @hookimpl
    async def omni_inbound_received(self, message) -> None:
        self.received.append(message.text)

    @hookimpl
    def omni_status_changed(self, message, previous) -> None:
        self.statuses.append((previous, message.status))

    @hookimpl
    def omni_inbound_thread_key(self, message) -> str:
        return "everyone"

    @hookimpl
    def omni_outbound_render(self, parts):
        return [p for p in parts]


async def test_hooks_observe_thread_and_render(omni_config: dict, register_plugin: list) -> None:
    observer = Observer()
    register_plugin.append(observer)
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "a", text="one")
            body, headers = signed([{"id": "b", "from": "bob", "text": "two"}])
            await client.post("/webhooks/fake", content=body, headers=headers)
        [conversation] = await hub.store.list_conversations()  # the thread-key hook joined them
        assert conversation.thread_key == "everyone"
        with respx.mock() as vendor:
            vendor.post(SEND).respond(200, json={"id": "v11"})
            await hub.send(conversation.id, text="x" * 300, wait=True)  # render hook: no split
        await wait_until(lambda: _true(observer.received == ["one", "two"] and bool(observer.statuses)))
        assert ("queued", "sent") in observer.statuses


async def _true(value: bool) -> bool:
    return value


async def test_per_channel_rate_limit(omni_config: dict, register_plugin: list) -> None:
    omni_config["channels"]["fake"]["rate_limit"] = 10  # sends per second
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "in1")
        cid = await conversation_id(hub)
        times: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            times.append(time.monotonic())
            return httpx.Response(200, json={"id": f"r{len(times)}"})

        with respx.mock() as vendor:
            vendor.post(SEND).mock(side_effect=answer)
            await asyncio.gather(*[hub.send(cid, text=f"m{i}", wait=True) for i in range(25)])
    # a burst of 10, then 10 per second: 25 sends take at least 1.5 s
    assert len(times) == 25 and times[-1] - times[0] >= 1.3


async def test_modify_message_is_atomic_and_publishes(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1", text="first")
    cid = await conversation_id(hub)
    [message] = await hub.store.list_messages(cid)

    def tag(n: int):
        def change(current):
            return current.model_copy(update={"metadata": {**current.metadata, f"k{n}": n}})
        return change

    await asyncio.gather(*[hub.modify_message(message.id, tag(n)) for n in range(20)])
    stored = await hub.store.get_message(message.id)
    assert stored and {f"k{n}" for n in range(20)} <= set(stored.metadata)
    assert await hub.modify_message("msg_missing", tag(0)) is None


async def test_spawned_work_is_tracked_and_errors_logged(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("background failure")

    done = hub.spawn(boom())
    assert await done is None
    assert "background work failed" in caplog.text


async def test_thread_with_joins_another_channels_conversation(omni_config: dict, register_plugin: list) -> None:
    from omnichannel_sdk.testing import fake_signature

    omni_config["channels"]["calls"] = {"adapter": "fake", "secret": "s2", "thread_with": "fake"}
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "sms-1", text="texted")
            body = orjson.dumps({"events": [{"id": "call-1", "from": "alice", "text": "voicemail"}]})
            response = await client.post("/webhooks/calls", content=body, headers={
                "x-fake-signature": fake_signature("s2", body)})
            assert response.status_code == 200
        [conversation] = await hub.store.list_conversations()
        messages = await hub.store.list_messages(conversation.id)
        assert [(m.channel_key, m.text) for m in messages] == [("fake", "texted"), ("calls", "voicemail")]
        assert conversation.channel_key == "fake"


def test_thread_with_must_name_another_channel(omni_config: dict, register_plugin: list) -> None:
    from omnichannel_sdk import ConfigurationError

    omni_config["channels"]["fake"]["thread_with"] = "nowhere"
    with pytest.raises(ConfigurationError, match=r"channels\.fake\.thread_with"):
        Hub.from_config(omni_config, plugins=register_plugin)


async def test_early_receipts_keep_the_most_advanced(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    await inbound(webhook_client, "in1")
    await hub.apply_status("fake", StatusUpdate(external_id="v20", status="read"))
    await hub.apply_status("fake", StatusUpdate(external_id="v20", status="delivered"))  # late, lower
    with respx.mock() as vendor:
        vendor.post(SEND).respond(200, json={"id": "v20"})
        message = await hub.send(await conversation_id(hub), text="x", wait=True)
    stored = await hub.store.get_message(message.id)
    assert stored and stored.status == "read"


async def test_window_closed_at_the_vendor_fails_at_once(hub: Hub, webhook_client: httpx.AsyncClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    await inbound(webhook_client, "in1")
    adapter = hub.adapter("fake")
    calls = 0

    async def closed(message, parts):
        nonlocal calls
        calls += 1
        raise WindowClosedError("the vendor says the window closed")

    monkeypatch.setattr(adapter, "send", closed)
    message = await hub.send(await conversation_id(hub), text="x", wait=True)
    assert message.status == "failed" and message.error and message.error.code == "window_closed"
    assert calls == 1


async def test_last_messages_only(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    for n in range(5):
        await inbound(webhook_client, f"m{n}", text=f"t{n}")
    last = await hub.store.list_messages(await conversation_id(hub), last=2)
    assert [m.text for m in last] == ["t3", "t4"]


async def test_modify_contact_by_address_publishes(hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    from omnichannel_sdk import Address, ContactUpdated

    await inbound(webhook_client, "in1")
    events = hub.events()
    waiter = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0)

    def named(contact):
        return contact.model_copy(update={"display_name": "Alice A.", "profile": {"locale": "en_GB"}})

    updated = await hub.modify_contact(Address(channel="fake", handle="alice"), named, reason="profile")
    assert updated and updated.display_name == "Alice A." and updated.profile == {"locale": "en_GB"}
    event = await asyncio.wait_for(waiter, 2)
    assert isinstance(event, ContactUpdated) and event.change == "profile"
    await events.aclose()
    assert await hub.modify_contact("ct_missing", named) is None
    with pytest.raises(ValueError):
        await hub.modify_contact(updated.id, lambda c: c.model_copy(update={"addresses": []}))


class _OwnRender:
    """Renders actions its own way, as a plugin might (one line per action)."""

    @hookimpl
    def omni_outbound_render(self, parts):  # type: ignore[no-untyped-def]
        out = []
        for part in parts:
            if isinstance(part, ActionsPart):
                out.append(TextPart(text=" / ".join(f"{i}={a.title}" for i, a in
                                                    enumerate(part.actions, start=1))))
            else:
                out.append(part)
        return out


async def test_a_custom_render_keeps_the_numbered_actions(omni_config: dict,
                                                          register_plugin: list) -> None:
    """A render hook that returns only parts keeps the render metadata of the same input,
    so the customer's "2" still maps back to the second action."""
    register_plugin.append(_OwnRender())
    actions = ActionsPart(prompt="Pick", actions=[
        Action(id=f"a{i}", title=f"Choice {i}") for i in range(1, 6)])  # more than fit as buttons
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "r1")
        with respx.mock() as vendor:
            route = vendor.post(SEND).respond(200, json={"id": "v21"})
            sent = await hub.send(await conversation_id(hub), parts=[actions], wait=True)
        assert "1=Choice 1 / 2=Choice 2" in route.calls.last.request.content.decode()
        assert [a["id"] for a in sent.metadata["numbered_actions"]] == ["a1", "a2", "a3", "a4", "a5"]


async def test_send_events_are_built_only_when_someone_gets_them(
        omni_config: dict, register_plugin: list, monkeypatch: pytest.MonkeyPatch) -> None:
    from omnichannel_sdk import _delivery, _outbound

    built: list[str] = []
    for module, name in ((_delivery, "MessageSent"), (_delivery, "StatusChanged"),
                         (_outbound, "MessageQueued")):
        real = getattr(module, name)

        def counting(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            event = _real(*args, **kwargs)
            built.append(event.type)
            return event

        monkeypatch.setattr(module, name, counting)
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await inbound(client, "in1")
        cid = await conversation_id(hub)
        with respx.mock() as vendor:
            vendor.post(SEND).respond(200, json={"id": "v1"})
            sent = await hub.send(cid, text="nobody listens", wait=True)
            assert sent.status == "sent" and built == []  # no subscriber, no hook, no feed
            events = hub.events()
            got = asyncio.ensure_future(anext(aiter(events)))
            await asyncio.sleep(0)  # subscribed
            vendor.post(SEND).respond(200, json={"id": "v2"})
            await hub.send(cid, text="now someone does", wait=True)
            assert built == ["message.queued", "message.sent", "message.status"]
            assert (await got).type == "message.queued"  # the subscriber gets the first one
