"""Fixtures of the web chat tests: a real uvicorn server running the demo app."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from omnichannel_webchat import _plugin

from omnichannel_sdk import Hub
from omnichannel_sdk.testing import free_port, require

SECRET = "webchat-test-secret-0123456789"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "webchat"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need(what: str, ok: bool) -> None:
    """Skip without ``what`` on a laptop; fail under CI=true."""
    require(what, ok)


@dataclass
class LiveServer:
    """A demo gateway served by uvicorn on a loopback port, in a background thread."""

    url: str
    hub: Hub
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server
    thread: threading.Thread

    def call(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop (the hub lives there) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def adapter(self) -> Any:
        return self.hub.adapter("webchat")


def start_server(tmp: Path, **webchat: Any) -> LiveServer:
    """Build the demo (SQLite + memory bus) with the web chat plugin and serve it."""
    from omnichannel_sdk._demo import build_demo, demo_config

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = demo_config(url, tmp, plugins=[_plugin], entry_points=False)
    config["channels"]["webchat"].update(webchat)
    config["omnichannel"]["delivery"] = {"base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05}
    hub = Hub.from_config(config, plugins=[_plugin], entry_points=False)
    app = build_demo(hub)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=2))
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, daemon=True, name="webchat-test-server")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return LiveServer(url, hub, holder["loop"], server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(15)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh demo server for one test."""
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def http(live: LiveServer) -> Iterator[httpx.Client]:
    """A client of the demo server that carries the inbox's same-site token, as its page does."""
    with httpx.Client(base_url=live.url, timeout=10) as client:
        client.headers["x-demo-token"] = demo_token(client)
        yield client


def demo_token(client: httpx.Client) -> str:
    """The same-site token the demo inbox page carries (every POST needs it)."""
    import re

    found = re.search(r'DEMO_TOKEN="([^"]+)"', client.get("/demo/").text)
    assert found, "the inbox page carries no token"
    return found.group(1)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A real headless Chromium (Debian's), driven by Playwright. Module-scoped: the sync
    Playwright API runs an event loop that must be gone before anyio tests run."""
    need("Debian chromium at /usr/bin/chromium", shutil.which(CHROMIUM) is not None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the playwright package", False)
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """Start demo servers with extra web chat settings: ``make_server(prechat="required")``."""
    started: list[LiveServer] = []

    def make(**webchat: Any) -> LiveServer:
        folder = tmp_path / f"server{len(started)}"
        folder.mkdir()
        server = start_server(folder, **webchat)
        started.append(server)
        return server

    yield make
    for server in started:
        stop_server(server)
