"""The example as its README runs it: uvicorn from the repository root, a signed webhook in,
the helpdesk's routes, a reply out to a loopback partner."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from omnichannel_sdk.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "example-partner-secret"


@pytest.fixture
def partner() -> Iterator[tuple[str, list[dict]]]:
    """The partner's send API on a loopback port, recording what it receives."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            body = b'{"id": "partner-msg-1"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/messages", received
    server.shutdown()


def test_the_example_runs_as_documented(tmp_path: Path, partner: tuple[str, list[dict]]) -> None:
    send_url, received = partner
    port = free_port()
    env = {**os.environ, "PARTNER_WEBHOOK_SECRET": SECRET, "HELPDESK_DATA": str(tmp_path),
           "PARTNER_SEND_URL": send_url}
    env.pop("OMNICHANNEL_CONFIG", None)
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "examples.fastapi_helpdesk.app:app",
                               "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/conversations", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            server.kill()
            raise AssertionError(server.stderr.read().decode() if server.stderr else "no server")
        body = (ROOT / "examples" / "mapping" / "payload.json").read_bytes()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = httpx.post(f"{base}/hooks/webhooks/partner", content=body, headers={"x-signature": sig})
        assert answer.status_code == 200, answer.text
        assert httpx.post(f"{base}/hooks/webhooks/partner", content=body).status_code == 403
        conversations = httpx.get(f"{base}/conversations").json()
        assert len(conversations) == 1
        assert conversations[0]["participants"][0]["handle"] == "+14155550100"
        reply = httpx.post(f"{base}/conversations/{conversations[0]['id']}/reply",
                           params={"text": "We are on it.", "agent": "Sam"})
        assert reply.status_code == 200 and reply.json()["direction"] == "outbound"
        for _ in range(100):
            if received:
                break
            time.sleep(0.1)
        assert received and received[0]["text"] == "We are on it."
        assert (tmp_path / "helpdesk.db").exists()  # the data went where the README says
    finally:
        server.terminate()
        server.wait(20)
