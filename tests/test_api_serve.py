"""The service API through real `omnichannel serve` processes: Server-Sent Events with resume and
keep-alive, signed webhooks retried after a 500 (checked with the reference library), and the
Node.js example against it."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnichannel_sdk.testing import free_port, require_binary

from .test_serve import SECRET, servers, signed, start  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]
KEY = "serve-api-key-0123456789"
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _config(path: Path, hook_port: int, **api: Any) -> Path:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in api.items())
    config = path / "omnichannel.toml"
    config.write_text(f'''
[omnichannel]
store = "sqlite:///{path}/api.db"
blobs = "file://{path}/blobs"
public_url = "https://support.example.test/hooks"

[omnichannel.feed]
poll_interval = 0.1

[channels.partner]
adapter = "json-mapping"
secret = "{SECRET}"

[api]
keys = ["{KEY}"]
{extra}
[[api.webhooks]]
url = "http://127.0.0.1:{hook_port}/hooks"
secret = "{HOOK_SECRET}"
events = ["message.received"]
base_delay = 0.2
max_delay = 0.5
max_attempts = 10
''')
    return config


class Receiver:
    """A webhook endpoint on the loopback that answers from a script of status codes."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver([500, 500])
    yield instance
    instance.close()


def _inbound(port: int, event_id: str, sender: str = "u-1") -> None:
    body, headers = signed(event_id)
    body = body.replace(b'"u-1"', f'"{sender}"'.encode())
    import hashlib
    import hmac

    headers = {"x-signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    assert httpx.post(f"http://127.0.0.1:{port}/webhooks/partner", content=body, headers=headers).status_code == 200


def _read_sse(port: int, headers: dict[str, str], count: int, timeout: float = 15) -> tuple[list[dict[str, Any]], list[str]]:
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    current: dict[str, Any] = {}
    with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/events",
                      headers={"authorization": f"Bearer {KEY}", **headers}, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + timeout
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
            elif line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(": ")
                current[name] = value
            elif line == "" and current:
                events.append(current)
                current = {}
            if len(events) >= count or time.monotonic() > deadline:
                break
    return events, comments


@pytest.mark.slow
def test_events_stream_resumes_after_last_event_id_with_keep_alives(
        tmp_path: Path, servers: list, receiver: Receiver) -> None:  # noqa: F811
    port = free_port()
    servers.append(start(_config(tmp_path, receiver.port, sse_keepalive=0.3, sse_max_clients=2), port))
    for i in range(3):
        _inbound(port, f"sse-{i}", f"s{i}")
    events, _ = _read_sse(port, {"last-event-id": "0"}, 6)
    assert [int(e["id"]) for e in events] == [1, 2, 3, 4, 5, 6]
    assert {e["event"] for e in events} == {"conversation.opened", "message.received"}
    data = [json.loads(e["data"]) for e in events]
    assert all(d["seq"] == int(e["id"]) and d["type"] == e["event"] for d, e in zip(data, events, strict=True))
    # resume after the 4th: only what followed it
    _inbound(port, "sse-3", "s0")
    again, _ = _read_sse(port, {"last-event-id": "4"}, 3)
    assert [int(e["id"]) for e in again] == [5, 6, 7]
    assert json.loads(again[-1]["data"])["message"]["external_id"] == "sse-3"
    # an idle stream gets keep-alive comments
    _, comments = _read_sse(port, {}, 1, timeout=1.5)
    assert ": keep-alive" in comments
    # bad resume points and missing keys are problems, not 500s
    bad = httpx.get(f"http://127.0.0.1:{port}/api/v1/events", headers={
        "authorization": f"Bearer {KEY}", "last-event-id": "abc"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Last-Event-ID"
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/events").status_code == 401


@pytest.mark.slow
def test_too_many_streams_are_refused(tmp_path: Path, servers: list, receiver: Receiver) -> None:  # noqa: F811
    port = free_port()
    servers.append(start(_config(tmp_path, receiver.port, sse_max_clients=1), port))
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.stream("GET", f"http://127.0.0.1:{port}/api/v1/events", headers=headers, timeout=5) as first:
        assert first.status_code == 200
        lines = first.iter_lines()  # kept: a dropped iterator closes the stream
        assert next(lines) == "retry: 2000"
        second = httpx.get(f"http://127.0.0.1:{port}/api/v1/events", headers=headers, timeout=5)
        assert second.status_code == 429 and second.json()["code"] == "too_many_streams"


@pytest.mark.slow
def test_webhooks_are_retried_after_a_500_with_the_same_id(
        tmp_path: Path, servers: list, receiver: Receiver) -> None:  # noqa: F811
    from standardwebhooks.webhooks import Webhook

    port = free_port()
    servers.append(start(_config(tmp_path, receiver.port), port))
    _inbound(port, "hook-1")
    deadline = time.monotonic() + 20
    while len(receiver.got) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.got) == 3  # 500, 500, then 200
    assert len({headers["webhook-id"] for headers, _ in receiver.got}) == 1
    for headers, body in receiver.got:
        event = Webhook(HOOK_SECRET).verify(body, headers)
        assert event["type"] == "message.received" and event["message"]["external_id"] == "hook-1"
    time.sleep(1.0)
    assert len(receiver.got) == 3  # nothing after the 2xx; conversation.opened was filtered out


@pytest.mark.slow
def test_node_client_lists_replies_and_verifies_webhooks(tmp_path: Path, servers: list) -> None:  # noqa: F811
    node = require_binary("node", hint="Node.js 20 runs the example client")
    hook_port = free_port()
    port = free_port()
    servers.append(start(_config(tmp_path, hook_port), port))
    _inbound(port, "node-1", "nora")
    env = {**os.environ, "OMNICHANNEL_URL": f"http://127.0.0.1:{port}", "OMNICHANNEL_API_KEY": KEY,
           "WEBHOOK_SECRET": HOOK_SECRET, "WEBHOOK_PORT": str(hook_port), "WEBHOOK_COUNT": "2"}
    process = subprocess.Popen([node, str(ROOT / "examples" / "node_client" / "client.mjs")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[dict[str, Any]] = []
        while not any("listening" in x for x in lines):
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            lines.append(json.loads(line))
        _inbound(port, "node-2", "nora")  # a new message: the webhook reaches the Node server
        out, err = process.communicate(timeout=30)
        lines += [json.loads(x) for x in out.splitlines() if x.strip()]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()  # reads and closes both pipes
    assert process.returncode == 0, err
    conversations = [x for x in lines if "conversation" in x]
    assert len(conversations) == 1 and conversations[0]["channel"] == "partner"
    replied = next(x for x in lines if "replied" in x)
    assert replied["status"] == "queued"
    verified = [x for x in lines if "verified" in x]
    assert [x["verified"] for x in verified] == ["message.received", "message.received"]
    assert not [x for x in lines if "rejected" in x]
    # the reply is stored in the conversation, as the Node client asked
    messages = httpx.get(f"http://127.0.0.1:{port}/api/v1/conversations/{conversations[0]['conversation']}/messages",
                         headers={"authorization": f"Bearer {KEY}"}).json()["items"]
    assert any(m["id"] == replied["replied"] and m["direction"] == "outbound" for m in messages)
