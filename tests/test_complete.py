"""``ChannelAdapter.complete``: the async step after ``parse`` (webhooks and replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from omnichannel_sdk import Hub, InboundMessage, ParseResult, TextPart, WebhookRequest, hookimpl
from omnichannel_sdk.testing import FakeAdapter, fake_signature

pytestmark = pytest.mark.anyio
SECRET = "complete-secret"


class CompletingAdapter(FakeAdapter):
    """Upper-cases texts in ``complete`` (with a kv read, which ``parse`` cannot do); fails on
    ``boom`` while the kv flag ``broken`` is set."""

    name: ClassVar[str] = "completing"

    async def complete(self, request: WebhookRequest, result: ParseResult) -> ParseResult:
        broken = await self.context.kv.kv_get("broken")
        items: list[Any] = []
        for item in result.items:
            if isinstance(item, InboundMessage):
                text = item.parts[0].text if isinstance(item.parts[0], TextPart) else ""
                if text == "boom" and broken:
                    raise RuntimeError("lookup failed")
                item = item.model_copy(update={"parts": [TextPart(text=text.upper())]})
            items.append(item)
        result.items = items
        return result


class _Plugin:
    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(CompletingAdapter)


def _request(hub: Hub, event_id: str, text: str) -> WebhookRequest:
    body = orjson.dumps({"events": [{"id": event_id, "from": "u1", "to": "fake-us", "text": text}]})
    return WebhookRequest("POST", hub.request_url("c"), {
        "content-type": "application/json", "x-fake-signature": fake_signature(SECRET, body)}, body)


async def test_complete_runs_before_storing_and_on_replay(tmp_path: Path) -> None:
    hub = Hub.from_config({"omnichannel": {"store": f"sqlite:///{tmp_path / 'c.db'}", "blobs": "memory://"},
                           "channels": {"c": {"adapter": "completing", "secret": SECRET}}},
                          plugins=[_Plugin()])
    async with hub:
        await hub.handle_webhook("c", _request(hub, "e1", "hello"))
        [conversation] = await hub.store.list_conversations()
        [message] = await hub.store.list_messages(conversation.id)
        assert message.parts == [TextPart(text="HELLO")]
        # a failing complete dead-letters the verified request: nothing lost, nothing stored
        await hub.store.kv_set("broken", "1")
        response = await hub.handle_webhook("c", _request(hub, "e2", "boom"))
        assert response.status == 200
        [letter] = await hub.store.list_dead_letters()
        assert "lookup failed" in letter.error
        assert len(await hub.store.list_messages(conversation.id)) == 1
        # replay parses and completes again
        await hub.store.kv_delete("broken")
        report = await hub.replay()
        assert report.replayed == [letter.id] and not report.failed
        texts = [m.parts[0] for m in await hub.store.list_messages(conversation.id)]
        assert texts == [TextPart(text="HELLO"), TextPart(text="BOOM")]


class CountingAdapter(FakeAdapter):
    """Overrides the async inbound steps the hub skips for adapters that keep the base ones."""

    name: ClassVar[str] = "counting"
    calls: ClassVar[list[str]] = []

    async def check_replay(self, request: WebhookRequest) -> None:
        self.calls.append("check_replay")
        if b"replayed" in request.body:
            from omnichannel_sdk import SignatureError

            raise SignatureError("replayed", adapter=self.name)

    async def parse_request(self, request: WebhookRequest) -> ParseResult:
        self.calls.append("parse_request")
        return await super().parse_request(request)


class _Counting:
    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(CountingAdapter)
        register(FakeAdapter)


async def test_overridden_async_steps_run_and_base_ones_are_skipped_alike(tmp_path: Path) -> None:
    from omnichannel_sdk import SignatureError

    hub = Hub.from_config({"omnichannel": {"store": f"sqlite:///{tmp_path / 'c.db'}", "blobs": "memory://"},
                           "channels": {"c": {"adapter": "counting", "secret": SECRET},
                                        "f": {"adapter": "fake", "secret": SECRET}}},
                          plugins=[_Counting()])
    async with hub:
        assert (await hub.handle_webhook("c", _request(hub, "e1", "hello"))).status == 200
        assert CountingAdapter.calls == ["check_replay", "parse_request"]
        with pytest.raises(SignatureError):  # refused before anything is stored
            await hub.handle_webhook("c", _request(hub, "e2", "replayed"))
        assert CountingAdapter.calls == ["check_replay", "parse_request", "check_replay"]
        # an adapter with the base steps parses and stores the same message
        plain = _request(hub, "e1", "hello")
        plain.url = hub.request_url("f")
        assert (await hub.handle_webhook("f", plain)).status == 200
        stored = [m for c in await hub.store.list_conversations()
                  for m in await hub.store.list_messages(c.id)]
        assert sorted((m.channel_key, m.parts[0]) for m in stored) == [
            ("c", TextPart(text="hello")), ("f", TextPart(text="hello"))]
        assert not await hub.store.list_dead_letters()


class PlainAdapter(FakeAdapter):
    """The base class's async steps, patched by the test below (its own class: FakeAdapter
    stays as it is)."""

    name: ClassVar[str] = "plain"


class _Plain:
    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(PlainAdapter)


async def test_steps_set_on_the_instance_or_patched_later_run(tmp_path: Path) -> None:
    """The hub decides per request what the adapter instance resolves each async step to:
    a step set on the instance (or patched on the class after a first request) runs."""
    from omnichannel_sdk import SignatureError

    hub = Hub.from_config({"omnichannel": {"store": f"sqlite:///{tmp_path / 'c.db'}", "blobs": "memory://"},
                           "channels": {"f": {"adapter": "plain", "secret": SECRET}}},
                          plugins=[_Plain()])
    calls: list[str] = []
    async with hub:
        adapter = hub.adapters["f"]

        def request(event_id: str, text: str) -> WebhookRequest:
            plain = _request(hub, event_id, text)
            plain.url = hub.request_url("f")
            return plain

        assert (await hub.handle_webhook("f", request("e1", "plain"))).status == 200
        base_parse = adapter.parse_request

        async def check_replay(req: WebhookRequest) -> None:
            calls.append("check_replay")
            if b"replayed" in req.body:
                raise SignatureError("replayed", adapter=adapter.name)

        async def parse_request(req: WebhookRequest) -> ParseResult:
            calls.append("parse_request")
            return await base_parse(req)

        async def complete(req: WebhookRequest, result: ParseResult) -> ParseResult:
            calls.append("complete")
            result.items = [item.model_copy(update={"parts": [TextPart(text="completed")]})
                            if isinstance(item, InboundMessage) else item for item in result.items]
            return result

        adapter.check_replay = check_replay  # type: ignore[method-assign]
        adapter.parse_request = parse_request  # type: ignore[method-assign]
        adapter.complete = complete  # type: ignore[method-assign]
        assert (await hub.handle_webhook("f", request("e2", "hello"))).status == 200
        assert calls == ["check_replay", "parse_request", "complete"]
        with pytest.raises(SignatureError):
            await hub.handle_webhook("f", request("e3", "replayed"))
        # back to the class's steps: none of them runs
        del adapter.check_replay, adapter.parse_request, adapter.complete
        calls.clear()
        assert (await hub.handle_webhook("f", request("e4", "again"))).status == 200
        assert calls == []
        # the class patched after requests were handled: seen too
        original = type(adapter).complete
        try:
            type(adapter).complete = lambda self, req, result: complete(req, result)  # type: ignore[method-assign]
            assert (await hub.handle_webhook("f", request("e5", "late"))).status == 200
        finally:
            type(adapter).complete = original  # type: ignore[method-assign]
        assert calls == ["complete"]
        [conversation] = await hub.store.list_conversations()
        texts = [m.parts[0] for m in await hub.store.list_messages(conversation.id)]
        assert texts == [TextPart(text="plain"), TextPart(text="completed"),
                         TextPart(text="again"), TextPart(text="completed")]
