"""``observes``: an observer that declared the adapters or part types it acts on is not called
for other events, and an event nothing hears is not built; one it watches reaches it as before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from omnichannel_sdk import ChannelAdapter, Hub, hookimpl, observes
from omnichannel_sdk import _inbound as inbound_module
from omnichannel_sdk.testing import PUBLIC_URL
from omnichannel_sdk.testing._fake import FakeAdapter

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


class _OtherAdapter(ChannelAdapter):  # type: ignore[type-arg]
    """An adapter no channel is configured with."""


class _Watcher:
    def __init__(self, adapters: list[type], part_types: list[str] | None = None) -> None:
        self.received: list[str] = []
        self.opened: list[str] = []

        @hookimpl
        @observes(adapters=adapters, part_types=part_types)
        def omni_inbound_received(message: Any) -> None:
            self.received.append(message.text)

        @hookimpl
        @observes(adapters=adapters)
        def omni_conversation_opened(conversation: Any) -> None:
            self.opened.append(conversation.channel_key)

        self.omni_inbound_received = omni_inbound_received
        self.omni_conversation_opened = omni_conversation_opened


async def _receive(omni_config: dict[str, Any], plugins: list[object],
                   monkeypatch: pytest.MonkeyPatch) -> int:
    """Two inbound texts through the fake channel; how many ``message.received`` were built."""
    built = 0
    general = inbound_module.message_received

    def counting(*args: Any) -> Any:
        nonlocal built
        built += 1
        return general(*args)

    monkeypatch.setattr(inbound_module, "message_received", counting)
    async with Hub.from_config(omni_config, plugins=plugins, entry_points=False) as hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            for ext, text in (("a", "one"), ("b", "two")):
                body, headers = signed([{"id": ext, "from": "alice", "text": text}])
                assert (await client.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
    return built


async def test_an_observer_of_other_adapters_is_not_called_and_no_event_is_built(
        omni_config: dict[str, Any], register_plugin: list[object],
        monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = _Watcher([_OtherAdapter])
    assert await _receive(omni_config, [*register_plugin, watcher], monkeypatch) == 0
    assert watcher.received == watcher.opened == []


async def test_an_observer_of_other_parts_is_not_called(
        omni_config: dict[str, Any], register_plugin: list[object],
        monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = _Watcher([FakeAdapter], ["media"])
    assert await _receive(omni_config, [*register_plugin, watcher], monkeypatch) == 0
    assert watcher.received == [] and watcher.opened == ["fake"]


async def test_an_observer_of_its_adapter_gets_every_event(
        omni_config: dict[str, Any], register_plugin: list[object],
        monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = _Watcher([FakeAdapter], ["text"])
    assert await _receive(omni_config, [*register_plugin, watcher], monkeypatch) == 2
    assert watcher.received == ["one", "two"] and watcher.opened == ["fake"]


async def test_heard_about_answers_from_the_plan_without_pluggys_copy(
        omni_config: dict[str, Any], register_plugin: list[object],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for every stored message: answered from what the direct calls know (no copy of
    the implementations by pluggy's ``get_hookimpls``), with the same answers."""
    from omnichannel_sdk import TextPart
    from omnichannel_sdk._models import MediaPart

    watcher = _Watcher([FakeAdapter], part_types=["media"])
    async with Hub.from_config(omni_config, plugins=[*register_plugin, watcher],
                               entry_points=False) as hub:
        publisher = hub.publisher
        text, media = [TextPart(text="hi")], [MediaPart(kind="image", url="https://x/y")]
        assert publisher.heard_about("message.received", "fake", media)  # the plan is made
        copies = 0
        caller = hub.pm.hook.omni_inbound_received
        real = type(caller).get_hookimpls

        def counting(self: Any) -> Any:
            nonlocal copies
            copies += self is caller
            return real(self)

        monkeypatch.setattr(type(caller), "get_hookimpls", counting)
        assert publisher.heard_about("message.received", "fake", media)
        assert not publisher.heard_about("message.received", "fake", text)
        assert publisher.heard_about("conversation.opened", "fake", None)
        assert not publisher.heard_about("message.received", "nowhere", text)
        assert copies == 0
        # a hook nobody implements: not heard, and skipped from then on
        assert not publisher.heard_about("message.updated", "fake", text)
        assert "message.updated" in publisher._unobserved
