"""Operations: /metrics after traffic, /healthz, redacted logs, where the data lands."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx

from omnichannel_sdk import ConfigurationError, Hub
from omnichannel_sdk._blobs import FileBlobStore, MemoryBlobStore
from omnichannel_sdk._logging import (
    JsonFormatter,
    RedactingFilter,
    forget_secrets,
    redact,
    redact_url,
    remember_secrets,
)

SECRET = "metrics-webhook-secret"
TOKEN = "tok-metrics-send-1234"


def config(tmp_path: Path, **hub: Any) -> dict[str, Any]:
    return {
        "omnichannel": {"store": f"sqlite:///{tmp_path}/ops.db", "public_url": "https://ops.test",
                        "delivery": {"base_delay": 0.05, "max_delay": 0.1, "poll_interval": 0.05,
                                     "max_attempts": 2}, **hub},
        "channels": {"partner": {"adapter": "json-mapping", "secret": SECRET,
                                 "send_url": f"https://api.partner.test/send?access_token={TOKEN}",
                                 "send_token": TOKEN}},
    }


def signed(items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"events": items} if len(items) > 1 else items[0])
    return body, {"x-signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def sample(text: str) -> dict[str, float]:
    """Series of a Prometheus text exposition as {'name{labels}': value}."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


@pytest.mark.anyio
async def test_metrics_after_traffic(tmp_path: Path) -> None:
    hub = Hub.from_config(config(tmp_path))
    async with hub:
        app = hub.asgi(lifespan=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://ops.test") as client:
            body, headers = signed([{"id": "e1", "from": "+14155550100", "text": "hi"}])
            assert (await client.post("/webhooks/partner", content=body, headers=headers)).status_code == 200
            assert (await client.post("/webhooks/partner", content=body, headers=headers)).status_code == 200
            assert (await client.post("/webhooks/partner", content=body)).status_code == 403
            assert (await client.post("/webhooks/nope", content=body)).status_code == 404
            broken = b'{"id": "e2"'
            sig = hmac.new(SECRET.encode(), broken, hashlib.sha256).hexdigest()
            assert (await client.post("/webhooks/partner", content=broken,
                                      headers={"x-signature": sig})).status_code == 200
            conversation = (await hub.store.list_conversations())[0]
            with respx.mock() as router:
                router.post(url__startswith="https://api.partner.test/send").mock(side_effect=[
                    httpx.Response(200, json={"id": "v1"}),
                    httpx.Response(429, headers={"retry-after": "0"}),
                    httpx.Response(401, json={"error": "bad token"})])
                ok = await asyncio.wait_for(hub.send(conversation.id, text="one", wait=True), 10)
                bad = await asyncio.wait_for(hub.send(conversation.id, text="two", wait=True), 10)
            assert ok.status == "sent" and bad.status == "failed"
            response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = sample(response.text)
    assert got['omnichannel_webhooks_total{channel_key="partner",outcome="accepted"}'] == 3
    assert got['omnichannel_webhooks_total{channel_key="partner",outcome="refused"}'] == 1
    assert got['omnichannel_webhooks_total{channel_key="",outcome="unknown_channel"}'] == 1
    assert got['omnichannel_duplicates_total{channel_key="partner"}'] == 1
    assert got['omnichannel_dead_letters_total{channel_key="partner",direction="inbound"}'] == 1
    assert got['omnichannel_dead_letters_total{channel_key="partner",direction="outbound"}'] == 1
    assert got['omnichannel_sends_total{channel_key="partner",outcome="accepted"}'] == 1
    assert got['omnichannel_sends_total{channel_key="partner",outcome="retry"}'] == 1
    assert got['omnichannel_sends_total{channel_key="partner",outcome="failed"}'] == 1
    assert got['omnichannel_vendor_errors_total{channel_key="partner",code="rate_limited",vendor_code=""}'] == 1
    assert got['omnichannel_vendor_errors_total{channel_key="partner",code="auth",vendor_code=""}'] == 1
    assert got['omnichannel_send_duration_seconds_count{channel_key="partner"}'] == 3
    assert not any(k.startswith("omnichannel_feed_lag") for k in got)  # no feed, no made-up lag
    assert not any(k.startswith("python_gc") for k in got)  # its own registry, not the global one


@pytest.mark.anyio
async def test_outbox_depth_and_age_and_the_feed_lag_hook(tmp_path: Path) -> None:
    hub = Hub.from_config(config(tmp_path, delivery={"poll_interval": 60}))
    async with hub:
        conversation = await hub.start_conversation("partner", "+14155550100")
        with respx.mock() as router:
            gate = asyncio.Event()

            async def slow(_: httpx.Request) -> httpx.Response:
                await gate.wait()
                return httpx.Response(200, json={"id": "v"})

            router.post(url__startswith="https://api.partner.test/").mock(side_effect=slow)
            for text in ("a", "b"):
                await hub.send(conversation.id, text=text)
            await asyncio.sleep(0.3)
            got = sample((await hub.metrics.exposition(hub.store)).decode())
            assert got['omnichannel_outbox_jobs{channel_key="partner",kind="send"}'] == 2
            assert 0.2 <= got['omnichannel_outbox_oldest_age_seconds{channel_key="partner",kind="send"}'] < 30

            async def lag() -> dict[str, tuple[int, float | None]]:
                return {"helpdesk": (5, 12.5)}

            hub.metrics.track_feed(lag)
            got = sample((await hub.metrics.exposition(hub.store)).decode())
            assert got['omnichannel_feed_lag_events{consumer="helpdesk"}'] == 5
            assert got['omnichannel_feed_lag_seconds{consumer="helpdesk"}'] == 12.5
            gate.set()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if await hub.store.pending_jobs() == 0:
                    break
        got = sample((await hub.metrics.exposition(hub.store)).decode())
        assert not any(k.startswith("omnichannel_outbox_jobs{") for k in got)


@pytest.mark.anyio
async def test_healthz_checks_the_store_and_the_bus(tmp_path: Path) -> None:
    hub = Hub.from_config(config(tmp_path))
    app = hub.asgi(lifespan=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://ops.test") as client:
        async with hub:
            response = await client.get("/healthz")
            assert response.status_code == 200
            assert response.json() == {"ok": True, "store": "ok", "bus": "ok"}
            await hub.bus.close()  # the bus goes away under a running hub
            response = await client.get("/healthz")
            assert response.status_code == 503
            assert response.json()["bus"] == "closed" and response.json()["ok"] is False
        response = await client.get("/healthz")  # closed hub: the store is closed too
        assert response.status_code == 503 and response.json()["ok"] is False


def test_redact_url() -> None:
    assert redact_url("https://api.telegram.org/bot123456:AAE-x_y/sendMessage") == \
        "https://api.telegram.org/bot<redacted>/sendMessage"
    assert redact_url("https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=ACCESS") == \
        "https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=<redacted>"
    assert redact_url("postgresql://app:hunter22@db.internal:5432/helpdesk") == \
        "postgresql://<redacted>@db.internal:5432/helpdesk"
    assert redact("GET /webhooks/wx?signature=abc&echostr=1 done") == \
        "GET /webhooks/wx?signature=<redacted>&echostr=<redacted> done"
    assert redact("plain words stay") == "plain words stay"


def test_filter_redacts_messages_tracebacks_and_registered_secrets() -> None:
    remember_secrets(["sk-live-abcdef123"])
    try:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
                                   ("POST", "https://api.test/bot1:AA/x?key=sk-live-abcdef123", "200"), None)
        try:
            raise RuntimeError("failed with sk-live-abcdef123")
        except RuntimeError:
            import sys

            record.exc_info = sys.exc_info()
        assert RedactingFilter().filter(record)
        text = logging.Formatter().format(record)
        assert "sk-live-abcdef123" not in text and "bot1:AA" not in text
        assert "<redacted>" in text and "RuntimeError" in text
    finally:
        forget_secrets(["sk-live-abcdef123"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sk-live-abcdef123", None, None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "sk-live-abcdef123"  # forgotten once the hub closed


def test_uvicorn_access_lines_keep_their_shape() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/webhooks/wx?signature=s1&nonce=n", "1.1", 200), None)
    RedactingFilter().filter(record)
    assert isinstance(record.args, tuple) and len(record.args) == 5  # uvicorn's formatter unpacks them
    assert record.getMessage() == '127.0.0.1:5 - "GET /webhooks/wx?signature=<redacted>&nonce=<redacted> HTTP/1.1" 200'


def test_json_log_lines() -> None:
    record = logging.LogRecord("omnichannel_sdk.hub", logging.WARNING, __file__, 1, "dead-lettered %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["logger"] == "omnichannel_sdk.hub"
    assert line["message"] == "dead-lettered x" and line["time"].endswith("+00:00")


@pytest.mark.anyio
async def test_httpx_request_lines_of_a_send_carry_no_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with Hub.from_config(config(tmp_path)) as hub:
        conversation = await hub.start_conversation("partner", "+14155550100")
        with respx.mock() as router:
            router.post(url__startswith="https://api.partner.test/").mock(
                return_value=httpx.Response(200, json={"id": "v"}))
            await asyncio.wait_for(hub.send(conversation.id, text="hi", wait=True), 10)
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("api.partner.test/send?access_token=<redacted>" in line for line in lines), lines
    assert TOKEN not in caplog.text


def test_blobs_sit_beside_the_sqlite_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "data" / "helpdesk.db"
    hub = Hub.from_config({"omnichannel": {"store": f"sqlite:///{elsewhere}"}})
    assert isinstance(hub.blobs, FileBlobStore)
    assert hub.blobs.root.resolve() == (tmp_path / "data" / "helpdesk-blobs").resolve()
    assert isinstance(Hub.from_config({"omnichannel": {"store": "sqlite:///:memory:"}}).blobs, MemoryBlobStore)
    explicit = Hub.from_config({"omnichannel": {"store": f"sqlite:///{elsewhere}",
                                                "blobs": f"file://{tmp_path}/media"}})
    assert isinstance(explicit.blobs, FileBlobStore) and explicit.blobs.root == tmp_path / "media"

    caplog.set_level(logging.INFO, logger="omnichannel_sdk.hub")

    async def start() -> None:
        async with hub:
            pass

    asyncio.run(start())
    said = [r.getMessage() for r in caplog.records if r.name == "omnichannel_sdk.hub"]
    assert any(str(elsewhere) in s and str(tmp_path / "data" / "helpdesk-blobs") in s for s in said), said


def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("asyncpg", "nats") else real(name, *a))
    with pytest.raises(ConfigurationError, match=r"pip install 'omnichannel-sdk\[postgres\]'"):
        Hub.from_config({"omnichannel": {"store": "postgresql://localhost/x"}})
    with pytest.raises(ConfigurationError, match=r"omnichannel-sdk\[nats\]"):
        Hub.from_config({"omnichannel": {"bus": "nats://127.0.0.1:4222"}})
