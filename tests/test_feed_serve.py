"""The durable feed across real processes: `omnichannel serve` gateways take 1,000 webhooks while
consumer processes read the feed, one of them stopped and started again mid-stream."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from .conftest import NATS_URL, PG_DSN, need_service
from .test_serve import SECRET, servers, signed, start  # noqa: F401 - fixture

CONSUMER = Path(__file__).with_name("feed_consumer.py")
TOTAL = 1000
SENDERS = 40


def _config(path: Path, store: str, bus: str) -> Path:
    config = path / "omnichannel.toml"
    config.write_text(f'''
[omnichannel]
store = "{store}"
bus = "{bus}"
blobs = "file://{path}/blobs"
public_url = "https://support.example.test/hooks"

[omnichannel.feed]
enabled = true
lease = 5
poll_interval = 0.1

[channels.partner]
adapter = "json-mapping"
secret = "{SECRET}"
''')
    return config


def _consumer(config: Path, name: str, out: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, str(CONSUMER), str(config), name, str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready", process.stderr.read() if process.stderr else ""
    return process


def _stop(process: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Stop a consumer and close its pipes (``communicate`` drains and closes them): its exit
    status and what it wrote to stderr."""
    process.terminate()
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err


def _lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _run(tmp_path: Path, servers: list, store: str, bus: str) -> None:  # noqa: F811
    config = _config(tmp_path, store, bus)
    ports = [free_port_(), free_port_()]
    for port in ports:
        servers.append(start(config, port))
    helpdesk, audit = tmp_path / "helpdesk.txt", tmp_path / "audit.txt"
    consumers = [_consumer(config, "helpdesk", helpdesk), _consumer(config, "helpdesk", helpdesk),
                 _consumer(config, "audit", audit)]
    try:
        async def post_all() -> None:
            limit = asyncio.Semaphore(16)
            async with httpx.AsyncClient(timeout=30) as client:
                async def one(i: int) -> None:
                    body, headers = signed(f"ev-{i}")
                    body = body.replace(b'"u-1"', f'"u-{i % SENDERS}"'.encode())
                    headers = signed_headers(body)
                    async with limit:
                        answer = await client.post(f"http://127.0.0.1:{ports[i % 2]}/webhooks/partner",
                                                   content=body, headers=headers)
                    assert answer.status_code == 200

                await asyncio.gather(*[one(i) for i in range(TOTAL // 2)])
                # mid-stream: one helpdesk process stops (between events) and a new one starts
                first = consumers[0]
                status, err = _stop(first)
                assert status == 0, err
                consumers[0] = _consumer(config, "helpdesk", helpdesk)
                await asyncio.gather(*[one(i) for i in range(TOTAL // 2, TOTAL)])

        asyncio.run(post_all())
        expected = TOTAL + SENDERS  # one message.received each, one conversation.opened per sender
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if len(_lines(helpdesk)) >= expected and len(_lines(audit)) >= expected:
                break
            time.sleep(0.3)
        time.sleep(1.0)  # a late duplicate would show up here
        for path in (helpdesk, audit):
            lines = _lines(path)
            seqs = Counter(int(line[0]) for line in lines)
            assert len(seqs) == expected, (path.name, len(seqs))
            assert max(seqs.values()) == 1, f"{path.name}: acknowledged twice: {[s for s, n in seqs.items() if n > 1][:5]}"
            keys = {line[2] for line in lines if line[1] == "message.received"}
            assert keys == {f"ev-{i}" for i in range(TOTAL)}  # none lost
        pids = Counter(line[3] for line in _lines(helpdesk))
        assert len(pids) >= 3, pids  # both processes and the restarted one shared the work
    finally:
        for process in consumers:
            if process.returncode is None:
                _stop(process)


def free_port_() -> int:
    from omnichannel_sdk.testing import free_port

    return free_port()


def signed_headers(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    return {"x-signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


@pytest.mark.slow
def test_feed_across_processes_on_sqlite(tmp_path: Path, servers: list) -> None:  # noqa: F811
    _run(tmp_path, servers, f"sqlite:///{tmp_path}/feed.db", "memory")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.nats
def test_feed_across_processes_on_postgres_and_nats(tmp_path: Path, servers: list) -> None:  # noqa: F811
    need_service("PostgreSQL", 5432)
    need_service("NATS", 4222)
    tag = uuid.uuid4().hex[:10]
    schema = f"t_{tag}"
    stream = f"OMNI_FEED_{tag}"
    try:
        _run(tmp_path, servers, f"{PG_DSN}?schema={schema}",
             f"{NATS_URL}?stream={stream}&subject=omni.feed{tag}")
    finally:
        async def clean() -> None:
            import asyncpg
            import nats

            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
            nc = await nats.connect(NATS_URL)
            try:
                await nc.jetstream().delete_stream(stream)
            except Exception:
                pass
            await nc.close()

        asyncio.run(clean())
