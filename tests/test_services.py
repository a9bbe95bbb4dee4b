"""The typed port adapters reach the hub through (``context.services``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from omnichannel_sdk import (
    AdapterServices,
    Address,
    ConfigurationError,
    DetachedServices,
    FollowUp,
    Hub,
    InboundMessage,
    ParseResult,
    ProviderError,
    RejectedError,
    StoreReader,
    TextPart,
    WebhookRequest,
    hookimpl,
)
from omnichannel_sdk.testing import FakeAdapter, fake_signature

pytestmark = pytest.mark.anyio


async def test_adapters_in_a_hub_get_running_services(hub: Hub) -> None:
    services = hub.adapter("fake").context.services
    assert isinstance(services, AdapterServices)
    assert isinstance(services.store, StoreReader)
    assert services.running
    sender = Address(channel="fake", handle="u1")
    stored = await services.ingest([InboundMessage(external_id="e1", sender=sender,
                                                   parts=[TextPart(text="hi")])])
    assert len(stored) == 1 and stored[0].channel_key == "fake"
    assert (await services.store.get_message(stored[0].id)) == stored[0]
    # scoped to the adapter's channel key: a second ingest of the same id is a duplicate
    assert await services.ingest([InboundMessage(external_id="e1", sender=sender,
                                                 parts=[TextPart(text="hi")])]) == []
    conversation = await services.start_conversation("u2")
    assert conversation.channel_key == "fake"


async def test_detached_services_refuse_clearly() -> None:
    services = DetachedServices("k")
    assert not services.running
    with pytest.raises(ConfigurationError, match="ingest needs a running hub"):
        await services.ingest([])
    with pytest.raises(ConfigurationError, match="needs a running hub"):
        await services.store.get_message("m")

    async def work() -> None:
        return None

    with pytest.raises(ConfigurationError, match="spawn needs a running hub"):
        services.spawn(work())


async def test_an_adapter_outside_a_hub_is_detached() -> None:
    import httpx

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import MemoryKV

    async with httpx.AsyncClient() as http:
        context = AdapterContext(key="k", public_url="http://x", http=http, kv=MemoryKV())
        adapter = FakeAdapter(FakeAdapter.Settings(secret="s"), context)
        assert not adapter.context.services.running


class _JobAdapter(FakeAdapter):
    """A fake adapter whose deferred jobs fail as told, to see them retried and dead-lettered."""

    name = "fake-jobs"
    runs: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    failures: ClassVar[list[Exception]] = []

    def parse(self, request: WebhookRequest) -> ParseResult:
        """The fake's parse, plus a follow-up job for a body that asks for one."""
        result = super().parse(request)
        body = request.json()
        if isinstance(body, dict) and body.get("follow_up"):
            result.jobs.append(FollowUp(str(body["follow_up"]), {"from": "parse"}))
        return result

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        type(self).runs.append((task, dict(data)))
        if type(self).failures:
            raise type(self).failures.pop(0)


class _JobPlugin:
    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(_JobAdapter)


async def _settled(hub: Hub, *, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await hub.store.pending_jobs():
        assert asyncio.get_running_loop().time() < deadline, "jobs did not settle"
        await asyncio.sleep(0.02)


def _job_hub(omni_config: dict[str, Any]) -> Hub:
    omni_config["channels"] = {"jobs": {"adapter": "fake-jobs", "secret": "s"}}
    return Hub.from_config(omni_config, plugins=[_JobPlugin()], entry_points=False)


async def test_deferred_jobs_run_retry_and_dead_letter(omni_config: dict[str, Any]) -> None:
    _JobAdapter.runs.clear()
    _JobAdapter.failures[:] = [ProviderError("vendor down", retryable=True)]
    async with _job_hub(omni_config) as hub:
        services = hub.adapter("jobs").context.services
        await services.defer("lookup", {"sid": "CA1"})
        await _settled(hub)
        # a retryable error is retried with the same data
        assert _JobAdapter.runs == [("lookup", {"sid": "CA1"}), ("lookup", {"sid": "CA1"})]
        assert await hub.store.list_dead_letters() == []

        # a parse's follow-up is stored with the request; when it fails for good, the dead
        # letter keeps that request, so a replay parses it (and defers the job) again
        body = b'{"events": [], "follow_up": "fetch"}'
        request = WebhookRequest("POST", hub.request_url("jobs"), {
            "x-fake-signature": fake_signature("s", body), "content-type": "application/json"}, body)
        _JobAdapter.failures[:] = [RejectedError("gone for good")]
        await hub.handle_webhook("jobs", request)
        await _settled(hub)
        assert _JobAdapter.runs[-1] == ("fetch", {"from": "parse"})
        letters = await hub.store.list_dead_letters()
        assert len(letters) == 1 and "RejectedError: gone for good" in letters[0].error
        raw = await hub.store.get_raw(letters[0].raw_id or "")
        assert raw is not None and raw.body == body
        report = await hub.replay()
        await _settled(hub)
        assert len(report.replayed) == 1 and _JobAdapter.runs[-1] == ("fetch", {"from": "parse"})

        _JobAdapter.failures[:] = [RuntimeError("bug")] * 5  # more than max_attempts (3)
        await services.defer("other", {})
        await _settled(hub)
        letters = await hub.store.list_dead_letters()
        # the replayed letter is no longer listed; the crash on every try is
        assert len(letters) == 1 and "RuntimeError: bug" in letters[0].error


async def test_a_deferred_job_survives_the_process(omni_config: dict[str, Any]) -> None:
    """A job stored by one hub that closed before running it runs in the next hub."""
    _JobAdapter.runs.clear()
    _JobAdapter.failures.clear()
    hub = _job_hub(omni_config)
    async with hub:
        await hub.delivery.stop()  # this process will never run it (as if it died)
        await hub.adapter("jobs").context.services.defer("late", {"n": 1}, delay=0)
    assert _JobAdapter.runs == []
    async with _job_hub(omni_config) as again:
        await _settled(again)
    assert _JobAdapter.runs == [("late", {"n": 1})]


async def test_defer_refuses_what_is_not_json(hub: Hub) -> None:
    services = hub.adapter("fake").context.services
    with pytest.raises(ConfigurationError, match="not JSON"):
        await services.defer("x", {"when": object()})
    with pytest.raises(ConfigurationError, match="running hub"):
        await DetachedServices("k").defer("x", {})


async def test_services_run_while_adapters_start(omni_config: dict[str, Any]) -> None:
    seen: list[bool] = []

    class Starting(_JobAdapter):
        async def start(self) -> None:
            seen.append(self.context.services.running)

    class Plugin:
        @hookimpl
        def omni_register_adapters(self, register: Any) -> None:
            register(Starting)

    omni_config["channels"] = {"jobs": {"adapter": "fake-jobs", "secret": "s"}}
    hub = Hub.from_config(omni_config, plugins=[Plugin()], entry_points=False)
    async with hub:
        assert hub.adapter("jobs").context.services.running
    assert seen == [True]
    assert not hub.adapter("jobs").context.services.running
