"""`omnichannel serve` for real: uvicorn processes, signed webhooks over HTTP."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import importlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from omnichannel_sdk import Hub
from omnichannel_sdk.testing import free_port

from .conftest import PG_DSN, need_service

SECRET = "serve-secret"


def write_config(path: Path, store: str) -> Path:
    config = path / "omnichannel.toml"
    config.write_text(f'''
[omnichannel]
store = "{store}"
blobs = "file://{path}/blobs"
public_url = "https://support.example.test/hooks"

[channels.partner]
adapter = "json-mapping"
secret = "{SECRET}"
''')
    return config


def start(config: Path, port: int, *extra: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    stderr: Any = open(log, "wb") if log is not None else subprocess.PIPE  # the server writes to it
    try:
        process = subprocess.Popen([sys.executable, "-m", "omnichannel_sdk._cli", "serve", "--config",
                                    str(config), "--port", str(port), *extra],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    finally:
        if log is not None:
            stderr.close()  # the child has its own copy of the descriptor
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).json()["ok"] is True:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    process.wait(10)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    raise AssertionError(f"server did not start: {error}")


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        process.terminate()
        process.wait(10)
        if process.stderr:  # the pipe is ours to close (ResourceWarning otherwise)
            process.stderr.close()


def signed(event_id: str) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"id": event_id, "from": "u-1", "text": "hello over HTTP"})
    return body, {"x-signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def test_serve_answers_vendors_over_http(tmp_path: Path, servers: list) -> None:
    port = free_port()
    servers.append(start(write_config(tmp_path, f"sqlite:///{tmp_path}/s.db"), port))
    body, headers = signed("e-1")
    assert httpx.post(f"http://127.0.0.1:{port}/webhooks/partner", content=body, headers=headers).status_code == 200
    assert httpx.post(f"http://127.0.0.1:{port}/webhooks/partner", content=body).status_code == 403
    assert httpx.post(f"http://127.0.0.1:{port}/webhooks/other", content=body).status_code == 404


def test_access_log_is_off_by_default_and_redacted_when_on(tmp_path: Path, servers: list) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/s.db")
    quiet, loud = tmp_path / "quiet.log", tmp_path / "loud.log"
    ports = [free_port(), free_port()]
    servers.append(start(config, ports[0], log=quiet))
    servers.append(start(config, ports[1], "--access-log", "--log-format", "json", log=loud))
    body, headers = signed("e-log")
    for port in ports:
        url = f"http://127.0.0.1:{port}/webhooks/partner?signature=s3cr3t-query-value&x=1"
        assert httpx.post(url, content=body, headers=headers).status_code in (200, 403)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'omnichannel_webhooks_total{channel_key="partner"' in metrics
    for process in servers:
        process.terminate()
        process.wait(10)
    servers.clear()
    assert "/webhooks/partner" not in quiet.read_text()  # no access line by default
    lines = [orjson.loads(line) for line in loud.read_text().splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "uvicorn.access" and "/webhooks/partner" in e["message"]]
    assert access, loud.read_text()
    assert "signature=<redacted>" in access[0]["message"]
    assert "s3cr3t-query-value" not in loud.read_text()
    assert any(e["logger"] == "omnichannel_sdk.hub" and "media:" in e["message"] for e in lines)


def test_the_served_app_freezes_what_start_up_left(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNICHANNEL_CONFIG", str(write_config(tmp_path, f"sqlite:///{tmp_path}/s.db")))
    monkeypatch.delitem(sys.modules, "omnichannel_sdk._serve", raising=False)
    served = importlib.import_module("omnichannel_sdk._serve")
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[tuple[str, int]] = []
    thresholds: list[int] = []
    before = gc.get_threshold()

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append((message["type"], gc.get_freeze_count()))
        thresholds.append(gc.get_threshold()[0])

    async def request() -> int:
        statuses: list[int] = []

        async def answer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {"type": "http", "method": "GET", "path": "/nowhere", "headers": []}
        await served.app(scope, receive, answer)
        return statuses[0]

    try:
        asyncio.run(served.app({"type": "lifespan"}, receive, send))
        assert asyncio.run(request()) == 404  # requests pass straight through
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.modules.pop("omnichannel_sdk._serve", None)
    assert [t for t, _ in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert sent[0][1] > 10_000  # the modules, the registries and the open hub
    # the youngest generation collects less often once started (CPython's default is 700)
    assert thresholds[0] == served.GEN0_THRESHOLD == 10_000


@pytest.mark.postgres
def test_duplicates_on_two_gateway_processes_store_once(tmp_path: Path, servers: list) -> None:
    need_service("PostgreSQL", 5432)
    schema = "t_" + uuid.uuid4().hex[:12]
    config = write_config(tmp_path, f"{PG_DSN}?schema={schema}")
    ports = [free_port(), free_port()]
    for port in ports:
        servers.append(start(config, port))
    body, headers = signed("dup-1")

    async def storm() -> list[int]:
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(*[
                client.post(f"http://127.0.0.1:{ports[i % 2]}/webhooks/partner", content=body, headers=headers)
                for i in range(30)])
            return [a.status_code for a in answers]

    assert set(asyncio.run(storm())) == {200}

    async def count() -> int:
        async with Hub.from_config(config) as hub:
            total = 0
            for conversation in await hub.store.list_conversations():
                total += len(await hub.store.list_messages(conversation.id))
            return total

    try:
        assert asyncio.run(count()) == 1
    finally:
        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()

        asyncio.run(drop())
