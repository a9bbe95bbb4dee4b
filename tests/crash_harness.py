"""A kill -9 of a real ``omnichannel serve`` in the middle of its sends, and what it cost.

A loopback vendor stub (Twilio-shaped: the Messages API's create and list; Vonage-shaped: the SMS
API) runs in threads of the calling process, so it outlives the server it serves. The server is
started with a channel per vendor pointed at the stub; sends are queued through the service API
while the stub holds every call, the stub then answers, and once a share of the sends reached
it the server's whole process group gets SIGKILL. A new server starts on the same store (same
``worker_id``) and finishes. Every queued send must reach the stub at least once and end
``sent``; what reached the stub more than once is a duplicate. Used by
``tests/test_crash_sends.py`` (CI) and ``scripts/crash_sends.py`` (longer runs, a table).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "crash-twilio-auth-token"
VONAGE_SECRET = "crash-vonage-signature-secret"
API_KEY = "crash-test-api-key-0123456789"
OUR_NUMBER = "+15005550006"
VONAGE_NUMBER = "447700900000"


def port_in(first: int, last: int) -> int:
    """A free TCP port of ``first..last`` on 127.0.0.1 (the caller's own range)."""
    for port in range(first, last + 1):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}..{last}")


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-call resets its connection: expected here, not news."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class VendorStub:
    """Twilio's Messages API and Vonage's SMS API on loopback, recording every accepted send.

    Calls wait while :attr:`gate` is clear, then take ``delay`` seconds (a vendor's latency)."""

    def __init__(self, port: int, delay: float = 0.02) -> None:
        self.delay = delay
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.twilio: list[dict[str, Any]] = []
        self.vonage: list[dict[str, Any]] = []
        self.lists = 0
        self._ids = itertools.count(1)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return None

            def _answer(self, status: int, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                stub.gate.wait()
                time.sleep(stub.delay)
                path = urlsplit(self.path).path
                if path.endswith("/Messages.json"):
                    self._answer(201, stub._twilio_create(form))
                elif path.endswith("/sms/json"):
                    self._answer(200, stub._vonage_send(form))
                else:
                    self._answer(404, {"error": "no such route"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if not parts.path.endswith("/Messages.json"):
                    self._answer(404, {"error": "no such route"})
                    return
                self._answer(200, stub._twilio_list(dict(parse_qsl(parts.query))))

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> VendorStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def _twilio_create(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            sid = f"SM{next(self._ids):032x}"
            when = format_datetime(datetime.now(UTC))
            record = {"sid": sid, "account_sid": TWILIO_SID, "api_version": "2010-04-01",
                      "to": form.get("To"), "from": form.get("From"), "body": form.get("Body"),
                      "status": "queued", "direction": "outbound-api", "date_created": when,
                      "date_updated": when, "date_sent": None, "num_media": "0",
                      "num_segments": "1", "messaging_service_sid": None, "error_code": None,
                      "error_message": None, "price": None, "price_unit": "USD",
                      "subresource_uris": {},
                      "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json"}
            self.twilio.append(record)
            return record

    def _twilio_list(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self.lists += 1
            found = [m for m in reversed(self.twilio)  # newest first, as Twilio lists
                     if m["to"] == query.get("To")
                     and ("From" not in query or m["from"] == query["From"])]
        size = int(query.get("PageSize") or 50)
        uri = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        return {"messages": found[:size], "end": max(0, min(size, len(found)) - 1),
                "first_page_uri": uri, "next_page_uri": None, "page": 0, "page_size": size,
                "previous_page_uri": None, "start": 0, "uri": uri}

    def _vonage_send(self, form: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            mid = f"crash{next(self._ids):012d}"
            self.vonage.append({"message-id": mid, "to": form.get("to"), "text": form.get("text"),
                                "client-ref": form.get("client-ref")})
        return {"message-count": "1", "messages": [{
            "to": form.get("to"), "message-id": mid, "status": "0", "client-ref": form.get(
                "client-ref"), "remaining-balance": "10.0", "message-price": "0.03",
            "network": "23410"}]}

    def received(self, adapter: str) -> list[str]:
        """The texts of every send of ``adapter`` the stub accepted, repeats included."""
        with self.lock:
            if adapter == "twilio-sms":
                return [str(m["body"]) for m in self.twilio]
            return [str(m["text"]) for m in self.vonage]


def write_config(path: Path, *, store: str, port: int, stub: str, adapters: list[str]) -> None:
    """The server's configuration: one channel per adapter, the service API, fast retries."""
    lines = [
        "[omnichannel]", f'store = "{store}"', f'public_url = "http://127.0.0.1:{port}"',
        f'blobs = "file://{path.parent / "blobs"}"',
        "[omnichannel.delivery]", 'worker_id = "crash-serve"', "base_delay = 0.2",
        "max_delay = 1.0", "poll_interval = 0.2", "max_in_flight_per_channel = 16",
        "[api]", f'keys = ["{API_KEY}"]',
    ]
    if "twilio-sms" in adapters:
        lines += ["[channels.twilio]", 'adapter = "twilio-sms"', f'account_sid = "{TWILIO_SID}"',
                  f'auth_token = "{TWILIO_TOKEN}"', f'from_number = "{OUR_NUMBER}"',
                  f'api_base = "{stub}/twilio"']
    if "vonage-sms" in adapters:
        lines += ["[channels.vonage]", 'adapter = "vonage-sms"', 'api_key = "crash"',
                  'api_secret = "crash-api-secret"', f'signature_secret = "{VONAGE_SECRET}"',
                  'signature_method = "sha256"', f'from_number = "{VONAGE_NUMBER}"',
                  f'api_base = "{stub}/vonage"']
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Server:
    """One ``omnichannel serve`` process (its own process group), output in a file."""

    config: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    _out: Any = None

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait for ``/healthz``."""
        command = [str(Path(sys.executable).with_name("omnichannel")), "serve", "--config",
                   str(self.config), "--port", str(self.port)]
        self._out = self.log.open("ab")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("omnichannel serve did not start:\n"
                                     + self.log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL after 15 s."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait(15)
        if self._out is not None:
            self._out.close()
            self._out = None

    def metric(self, name: str) -> dict[str, float]:
        """The samples of one series of ``/metrics``, by their label text."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith(name):
                key, _, value = line.rpartition(" ")
                found[key[len(name):]] = float(value)
        return found


@dataclass
class CrashResult:
    """What one crash run cost."""

    adapter: str
    store: str
    sends: int
    at_kill: int
    lost: int
    duplicates: int
    reconciled: float
    possible: float
    taken_over: float
    recovery_seconds: float
    not_sent: list[str] = field(default_factory=list)


async def _seed(config: Path, adapters: list[str], customers: int) -> dict[str, list[str]]:
    """Inbound messages from ``customers`` numbers per channel; their conversation ids."""
    from omnichannel_sms import signed_params
    from omnichannel_sms._twilio import signed_request

    from omnichannel_sdk import Hub, WebhookRequest

    hub = Hub.from_config(config)
    out: dict[str, list[str]] = {}
    async with hub:
        for adapter in adapters:
            key = "twilio" if adapter == "twilio-sms" else "vonage"
            url = hub.request_url(key)
            for n in range(customers):
                number = f"+1415555{n:04d}"
                if adapter == "twilio-sms":
                    request = signed_request(TWILIO_TOKEN, url, [
                        ("MessageSid", f"SMin{n:030d}"), ("AccountSid", TWILIO_SID),
                        ("From", number), ("To", OUR_NUMBER), ("Body", "hello"),
                        ("NumMedia", "0"), ("NumSegments", "1"), ("SmsStatus", "received")])
                else:
                    params = signed_params(VONAGE_SECRET, {
                        "msisdn": number.lstrip("+"), "to": VONAGE_NUMBER, "type": "text",
                        "messageId": f"in{n:014d}", "text": "hello",
                        "message-timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())},
                        "sha256")
                    request = WebhookRequest("POST", url, {"content-type": "application/json"},
                                             json.dumps(params).encode())
                answer = await hub.handle_webhook(key, request)
                assert answer.status < 300, answer
            out[key] = [c.id for c in await hub.store.list_conversations() if c.channel_key == key]
    return out


async def _queue(port: int, conversations: dict[str, list[str]], per_channel: int,
                 run: str) -> dict[str, list[str]]:
    """Queue ``per_channel`` sends per channel through the service API; their texts."""
    texts: dict[str, list[str]] = {}
    headers = {"authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", headers=headers,
                                 timeout=30) as client:
        for key, ids in conversations.items():
            texts[key] = [f"{run} {key} send {i}" for i in range(per_channel)]

            async def one(i: int, key: str = key, ids: list[str] = ids) -> None:
                response = await client.post(f"/conversations/{ids[i % len(ids)]}/messages",
                                             json={"text": texts[key][i]})
                assert response.status_code == 202, response.text

            for start in range(0, per_channel, 25):
                await asyncio.gather(*(one(i) for i in range(start, min(per_channel, start + 25))))
    return texts


async def _statuses(store_url: str) -> dict[str, str]:
    """Every outbound message's text and status, read from the store."""
    from omnichannel_sdk._store import store_from_url

    store = store_from_url(store_url)
    await store.open()
    try:
        out: dict[str, str] = {}
        for conversation in await store.list_conversations():
            for message in await store.list_messages(conversation.id):
                if message.direction == "outbound":
                    out[message.text or ""] = message.status
        return out
    finally:
        await store.close()


def crash_run(workdir: Path, store_url: str, *, adapters: list[str], sends: int,
              kill_after: float = 0.4, ports: tuple[int, int] = (18100, 18199),
              customers: int = 10, deadline: float = 60.0) -> list[CrashResult]:
    """Queue ``sends`` per adapter, SIGKILL the server once ``kill_after`` of them reached the
    stub, restart it, wait until every send is ``sent`` (at most ``deadline`` seconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stub_port = port_in(*ports)
    with VendorStub(stub_port) as stub:
        port = port_in(stub_port + 1, ports[1])
        config = workdir / "omnichannel.toml"
        write_config(config, store=store_url, port=port, stub=stub.url, adapters=adapters)
        conversations = asyncio.run(_seed(config, adapters, customers))
        log = workdir / "serve.log"
        first = Server(config, port, log)
        second = Server(config, port, log)
        try:
            first.start()
            run = f"run{int(time.time() * 1000) % 100000}"
            texts = asyncio.run(_queue(port, conversations, sends, run))
            stub.gate.set()  # the vendor answers from now on
            target = int(sends * len(adapters) * kill_after)
            until = time.monotonic() + deadline
            while sum(len(stub.received(a)) for a in adapters) < target:
                if time.monotonic() > until:
                    raise AssertionError("the sends never got going:\n"
                                         + log.read_text(errors="replace")[-3000:])
                time.sleep(0.005)
            at_kill = {a: len(stub.received(a)) for a in adapters}
            first.kill()
            restarted = time.monotonic()
            second.start()
            wanted = {t for ts in texts.values() for t in ts}
            while True:
                statuses = asyncio.run(_statuses(store_url))
                if all(statuses.get(t) == "sent" for t in wanted):
                    break
                if time.monotonic() > restarted + deadline:
                    break
                time.sleep(0.3)
            recovery = time.monotonic() - restarted
            reconciled = second.metric("omnichannel_uncertain_sends_total")
            taken = sum(second.metric("omnichannel_leases_taken_over_total").values())
        finally:
            first.kill()
            second.stop()
        results = []
        for adapter in adapters:
            key = "twilio" if adapter == "twilio-sms" else "vonage"
            seen = Counter(stub.received(adapter))
            ours = texts[key]
            results.append(CrashResult(
                adapter=adapter, store=store_url.split(":", 1)[0], sends=len(ours),
                at_kill=at_kill[adapter],
                lost=sum(1 for t in ours if seen[t] == 0 or statuses.get(t) != "sent"),
                duplicates=sum(seen[t] - 1 for t in ours if seen[t] > 1),
                reconciled=sum(v for k, v in reconciled.items()
                               if f'channel_key="{key}"' in k and "reconciled" in k),
                possible=sum(v for k, v in reconciled.items()
                             if f'channel_key="{key}"' in k and "resent" in k),
                taken_over=taken, recovery_seconds=round(recovery, 1),
                not_sent=[t for t in ours if statuses.get(t) != "sent"][:5]))
        return results
