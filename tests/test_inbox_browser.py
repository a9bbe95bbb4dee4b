"""The demo's agent inbox in a real headless Chromium (Debian's, driven by Playwright), at desktop
size and on a 375 px phone, against the demo served by uvicorn with every installed channel.

Each test keeps a screenshot under ``test-artifacts/inbox/`` (git-ignored)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omnichannel_sdk import Hub, WebhookRequest
from omnichannel_sdk._demo import DEMO_SECRET, build_demo, demo_config
from omnichannel_sdk.testing import require

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "inbox"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PORTS = range(18500, 18600)  # this suite's own port range
TIMEOUT = 10_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
PNG = base64.b64decode(  # a 1x1 picture
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@dataclass
class Demo:
    """The demo served in a background thread."""

    url: str
    hub: Hub
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server
    thread: threading.Thread

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop (the hub lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)


def _port() -> int:
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18500-18599")


@contextlib.contextmanager
def _serving(tmp_path: Path, send_url: str | None = None,
             vendor: Callable[[Request], Awaitable[Response]] | None = None) -> Iterator[Demo]:
    """The demo served by uvicorn in a thread; ``vendor`` answers ``/test-vendor`` on the
    same server, and ``send_url`` (a path) points the custom JSON channel's sends at it."""
    port = _port()
    url = f"http://127.0.0.1:{port}"
    config = demo_config(url, tmp_path)
    config["omnichannel"]["delivery"] = {"base_delay": 0.05, "max_delay": 0.2, "poll_interval": 0.05}
    if send_url is not None:
        config["channels"]["demo-json"]["send_url"] = url + send_url
    hub = Hub.from_config(config)
    app = build_demo(hub)

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if vendor is not None and scope["type"] == "http" and scope["path"].startswith("/test-vendor"):
            response = await vendor(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=run, daemon=True, name="inbox-test-server")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo did not start")
        time.sleep(0.02)
    try:
        yield Demo(url, hub, holder["loop"], server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo with every installed channel (entry points), on SQLite and the memory bus."""
    with _serving(tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (skipped on a laptop without it, fails under CI)."""
    require("Debian chromium at /usr/bin/chromium", shutil.which(CHROMIUM) is not None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("the playwright package", False)
        raise
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_at(chromium: Any) -> Iterator[Any]:
    """``page_at(viewport)``: a new page in its own context, closed afterwards."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int], **kwargs: Any) -> Any:
        contexts.append(chromium.new_context(viewport=viewport, locale="en-US", **kwargs))
        return contexts[-1].new_page()

    yield make
    for context in contexts:
        context.close()


DOCS = {"desktop-thread": "inbox.png", "phone-thread": "inbox-phone.png",
        "contact-merged": "inbox-contact.png", "report": "report.png"}
"""Screenshots docs/quickstart.md shows (refreshed with OMNICHANNEL_DOCS_SCREENSHOTS=1)."""


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if os.environ.get("OMNICHANNEL_DOCS_SCREENSHOTS") == "1" and name in DOCS:
        page.screenshot(path=str(ROOT / "docs" / "images" / DOCS[name]))


def open_inbox(page: Any, demo: Demo) -> None:
    page.goto(f"{demo.url}/demo/")
    page.locator("#live.on").wait_for(timeout=TIMEOUT)


def simulate(page: Any, key: str) -> None:
    """Through the one simulator menu (no page load)."""
    page.locator("#sim-button").click()
    page.locator(f'#sim-menu [data-key="{key}"]').click()
    page.locator("#sim-menu").wait_for(state="hidden", timeout=TIMEOUT)


def no_horizontal_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width


def reply_and_see_it_sent(page: Any, text: str) -> None:
    page.locator("#reply").fill(text)
    page.locator("#reply").press("Enter")
    page.locator(".m.outbound", has_text=text).locator(
        ".st.sent, .st.delivered, .st.read, .st.failed").wait_for(timeout=TIMEOUT)


def test_every_channel_round_trip_at_desktop_size(demo: Demo, page_at: Any) -> None:
    """Each channel's simulated conversation arrives live through the simulator menu (the page
    never reloads), shows its channel and a readable sender, and takes a reply whose delivery
    tick moves on; the tab title counts what is unread."""
    page = page_at(DESKTOP)
    open_inbox(page, demo)
    page.evaluate("window.__sameDocument = true")
    keys = [c["key"] for c in httpx.get(f"{demo.url}/demo/api/channels").json()]
    assert len(keys) >= 2
    for key in keys:
        simulate(page, key)
        page.locator(f'.conv[data-key="{key}"]').first.wait_for(timeout=TIMEOUT)
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.wait_for_function("() => /^\\(\\d+\\) Inbox/.test(document.title)", timeout=TIMEOUT)
    assert page.locator(".conv.unread").count() >= len(keys) - 1
    shot(page, "desktop-list")
    titles = page.locator(".conv .name").all_inner_texts()
    assert not [t for t in titles if t.startswith("v_") or "|" in t or t.isdigit()], titles

    failures = []
    for key in keys:
        row = page.locator(f'.conv[data-key="{key}"]').first
        row.click()
        page.locator("#reply-form:not([hidden])").wait_for(timeout=TIMEOUT)
        head = page.locator("#head").inner_text()
        assert "|" not in head, head  # no internal thread key
        assert page.locator(f'.conv[data-key="{key}"]').first.get_attribute("class") == "conv"
        page.locator("#msgs .m").first.wait_for(timeout=TIMEOUT)
        reply_and_see_it_sent(page, f"Thanks, we are on it ({key})")
        if page.locator(".m.outbound .st.failed").count():
            failures.append(key)
    assert not failures, failures
    shot(page, "desktop-thread")


def test_email_voicemail_and_events_are_shown_as_such(demo: Demo, page_at: Any) -> None:
    """Email shows its subject; a voicemail plays inline; events are not customer bubbles;
    the agent's markdown is rendered in the preview and in the sent bubble."""
    kinds = {c["channel"]: c["key"] for c in httpx.get(f"{demo.url}/demo/api/channels").json()}
    page = page_at(DESKTOP)
    open_inbox(page, demo)
    if "email" in kinds:
        simulate(page, kinds["email"])
        page.locator(f'.conv[data-key="{kinds["email"]}"]').first.click()
        page.locator(".m.email .subj").wait_for(timeout=TIMEOUT)
    page.locator("#reply").fill("It ships **today**, see [tracking](https://example.com/t)")
    page.locator("#preview-button").click()
    assert page.locator("#preview strong").inner_text() == "today"
    page.locator("#reply").press("Control+Enter")
    sent = page.locator(".m.outbound", has_text="It ships")
    sent.wait_for(timeout=TIMEOUT)
    assert sent.locator("strong").inner_text() == "today"
    assert sent.locator("a").get_attribute("href") == "https://example.com/t"
    shot(page, "email")
    if "webchat" in kinds:  # the agent attaches a picture
        simulate(page, kinds["webchat"])
        page.locator(f'.conv[data-key="{kinds["webchat"]}"]').first.click()
        page.locator("#msgs .m.inbound").first.wait_for(timeout=TIMEOUT)
        page.locator("#file").set_input_files(files=[
            {"name": "label.png", "mimeType": "image/png", "buffer": PNG}])
        page.locator("#files", has_text="label.png").wait_for(timeout=TIMEOUT)
        page.locator("#send").click()
        page.locator(".m.outbound img[alt='label.png']").wait_for(timeout=TIMEOUT)
        page.wait_for_function("() => [...document.querySelectorAll('.m.outbound img')]"
                               ".some(i => i.naturalWidth === 1)", timeout=TIMEOUT)
    if "voice" in kinds:
        simulate(page, kinds["voice"])
        page.locator(f'.conv[data-key="{kinds["voice"]}"]').first.click()
        page.locator(".m.inbound audio").wait_for(timeout=TIMEOUT)
        page.locator(".m.inbound .transcript").wait_for(timeout=TIMEOUT)
        shot(page, "voicemail")
    if "wechat" in kinds:
        simulate(page, kinds["wechat"])
        page.locator(f'.conv[data-key="{kinds["wechat"]}"]').first.click()
        page.locator("#msgs .m").first.wait_for(timeout=TIMEOUT)
        bubbles = " ".join(page.locator(".m.inbound").all_inner_texts())
        assert "event, event" not in bubbles
        shot(page, "wechat")


def test_phone_layout_search_filter_and_shortcuts(demo: Demo, page_at: Any) -> None:
    """At 375 px the list and the thread take the screen in turn; search, the open/closed
    filter and the keyboard shortcuts work; the visitor page keeps its launcher on screen."""
    keys = [c["key"] for c in httpx.get(f"{demo.url}/demo/api/channels").json()][:3]
    page = page_at(PHONE, has_touch=True)
    open_inbox(page, demo)
    for key in keys:
        simulate(page, key)
        page.locator(f'.conv[data-key="{key}"]').first.wait_for(timeout=TIMEOUT)
    no_horizontal_overflow(page)
    shot(page, "phone-list")
    page.locator(".conv").first.click()
    page.locator("#reply-form:not([hidden])").wait_for(timeout=TIMEOUT)
    assert page.locator("#list").is_hidden()
    reply_and_see_it_sent(page, "On a phone")
    no_horizontal_overflow(page)
    shot(page, "phone-thread")
    page.locator("#back").click()
    page.locator("#list").wait_for(state="visible", timeout=TIMEOUT)

    # resolve the open one; it leaves the Open filter and shows under Closed
    first = page.locator(".conv").first
    cid = first.get_attribute("data-id")
    first.click()
    page.locator("#status-button", has_text="Resolve").click()
    page.locator("#status-button", has_text="Reopen").wait_for(timeout=TIMEOUT)
    page.locator("#back").click()
    page.locator(f'.conv[data-id="{cid}"]').wait_for(state="detached", timeout=TIMEOUT)
    page.locator("#filter").select_option("closed")
    page.locator(f'.conv[data-id="{cid}"]').wait_for(timeout=TIMEOUT)
    page.locator("#filter").select_option("")
    before = len(httpx.get(f"{demo.url}/demo/api/conversations").json())
    page.wait_for_function(f"() => document.querySelectorAll('.conv').length === {before}",
                           timeout=TIMEOUT)

    # search narrows the list to what matches
    page.locator("#search").fill("zzz-nothing-matches")
    page.locator(".empty", has_text="No conversation matches").wait_for(timeout=TIMEOUT)
    page.locator("#search").fill("")
    page.wait_for_function(f"() => document.querySelectorAll('.conv').length === {before}",
                           timeout=TIMEOUT)

    # j / k walk the list from the keyboard
    desk = page_at(DESKTOP)
    open_inbox(desk, demo)
    desk.locator(".conv").first.wait_for(timeout=TIMEOUT)
    ids = [b.get_attribute("data-id") for b in desk.locator(".conv").all()]
    desk.locator("body").press("j")
    desk.wait_for_function(f"() => location.hash === '#{ids[0]}'", timeout=TIMEOUT)
    desk.locator("body").press("j")
    desk.wait_for_function(f"() => location.hash === '#{ids[1]}'", timeout=TIMEOUT)
    desk.locator("body").press("k")
    desk.wait_for_function(f"() => location.hash === '#{ids[0]}'", timeout=TIMEOUT)

    if any(c["channel"] == "webchat" for c in httpx.get(f"{demo.url}/demo/api/channels").json()):
        visitor = page_at(PHONE)
        visitor.goto(f"{demo.url}/demo/chat")
        launcher = visitor.locator(".launch")
        launcher.wait_for(timeout=TIMEOUT)
        box = launcher.bounding_box()
        assert box and box["x"] + box["width"] <= PHONE["width"], box
        no_horizontal_overflow(visitor)
        launcher.click()
        visitor.locator(".panel").wait_for(state="visible", timeout=TIMEOUT)
        panel = visitor.locator(".panel").bounding_box()
        assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= PHONE["width"]
        shot(visitor, "phone-visitor")


def _email_from(demo: Demo, address: str, name: str) -> None:
    """A signed Postmark inbound email from ``address`` (the demo's own sample, another sender)."""
    key = next((k for k, a in demo.hub.adapters.items() if a.name == "postmark"), None)
    require("the email plugin (postmark)", key is not None)
    payload = orjson.dumps({
        "FromFull": {"Email": address, "Name": name},
        "ToFull": [{"Email": "support@demo.example", "Name": "Demo Support"}],
        "Subject": "Order #1234", "MessageID": f"merge-{time.time_ns()}",
        "Date": formatdate(usegmt=True), "TextBody": "Hello,\n\nmy order #1234 is late.",
        "Headers": [], "Attachments": []})
    basic = "Basic " + base64.b64encode(f"demo:{DEMO_SECRET}".encode()).decode()
    request = WebhookRequest("POST", demo.hub.request_url(str(key)), {
        "content-type": "application/json", "authorization": basic}, payload)
    demo.call(demo.hub.handle_webhook(str(key), request))


def test_one_customer_across_channels_merge_and_unmerge(demo: Demo, page_at: Any) -> None:
    """Ana writes by email, then by web chat giving the same address: the inbox proposes one
    contact, the agent confirms, the panel shows every address and one timeline; unmerge
    separates them again."""
    require("the web chat plugin", "webchat" in demo.hub.adapters)
    _email_from(demo, "ana.souza@example.com", "Ana Souza")
    page = page_at(DESKTOP)
    open_inbox(page, demo)
    simulate(page, "webchat")  # Ana Souza (ana.souza@example.com, claimed) and 李雷
    banner = page.locator("#merges button", has_text="Ana Souza")
    banner.wait_for(timeout=TIMEOUT)
    banner.first.click()
    panel = page.locator("#contact")
    panel.locator(".confirm").click()
    panel.locator(".addresses li", has_text="Web chat").wait_for(timeout=TIMEOUT)
    assert panel.locator(".addresses li", has_text="ana.souza@example.com").count() >= 1
    panel.locator(".tl li", has_text="Web chat").first.wait_for(timeout=TIMEOUT)
    assert panel.locator(".tl li", has_text="Email").count() >= 1
    page.locator("#merges").wait_for(state="hidden", timeout=TIMEOUT)
    shot(page, "contact-merged")
    merge_row = panel.locator(".prop.merge").first.inner_text()
    assert "Web chat: Visitor" in merge_row and "v_" not in merge_row, merge_row
    assert panel.locator(".unmerge").count() == 1
    panel.locator(".unmerge").click()
    panel.locator(".addresses li", has_text="Web chat").wait_for(state="detached", timeout=TIMEOUT)
    shot(page, "contact-unmerged")


def test_contact_timeline_pages_back_to_the_first_message(demo: Demo, page_at: Any) -> None:
    """The contact panel loads the newest page of the timeline and "Show earlier messages"
    puts the older pages on top until the first message (two per page here)."""
    for _ in range(3):
        _email_from(demo, "pat.lee@example.com", "Pat Lee")
    page = page_at(DESKTOP)
    page.goto(f"{demo.url}/demo/?timeline_page=2")
    page.locator("#live.on").wait_for(timeout=TIMEOUT)
    page.locator(".conv", has_text="Pat Lee").first.click()
    page.locator("#contact-button").click()
    panel = page.locator("#contact")
    panel.locator(".tl li").first.wait_for(timeout=TIMEOUT)
    assert panel.locator(".tl li").count() == 2
    contact_id = panel.get_attribute("data-id")
    total = len(demo.call(demo.hub.contact_timeline(str(contact_id), limit=500)).items)
    assert total >= 3
    newest = panel.locator(".tl li").last.inner_text()
    panel.locator(".earlier").click()
    page.wait_for_function("() => document.querySelectorAll('#contact .tl li').length > 2",
                           timeout=TIMEOUT)
    shown = panel.locator(".tl li").count()
    # a live change of the contact shows the panel again: with the pages the agent had loaded
    demo.call(demo.hub.modify_contact(str(contact_id), lambda c: c.model_copy(
        update={"profile": {**c.profile, "plan": "gold"}})))
    panel.locator(".profile li", has_text="plan: gold").wait_for(timeout=TIMEOUT)
    assert panel.locator(".tl li").count() == shown
    while panel.locator(".earlier").count():
        shown = panel.locator(".tl li").count()
        panel.locator(".earlier").click()
        page.wait_for_function(f"() => document.querySelectorAll('#contact .tl li').length > {shown}",
                               timeout=TIMEOUT)
    assert panel.locator(".tl li").count() == total
    assert panel.locator(".tl li").last.inner_text() == newest  # older pages went on top
    assert "Order #1234" in panel.locator(".tl li").first.inner_text()


def test_failing_vendor_shows_retrying_then_sent_and_a_refusal_as_not_delivered(
        tmp_path: Path, page_at: Any) -> None:
    """A vendor that throttles (429, Retry-After: 2) shows the reply as retrying, with the
    attempt, the reason and the next try, until that try goes through (then "sent on attempt
    2"); a vendor that refuses (400) shows it as not delivered, with the reason."""
    calls: list[bytes] = []

    async def vendor(request: Request) -> Response:
        body = await request.body()
        calls.append(body)
        if b"refuse me" in body:
            return JSONResponse({"error": "unknown recipient"}, 400)
        if b"flaky" in body and sum(b"flaky" in c for c in calls) == 1:
            return JSONResponse({"error": "slow down"}, 429, headers={"Retry-After": "2"})
        return JSONResponse({"id": f"stub-{len(calls)}", "status": "accepted"})

    with _serving(tmp_path, send_url="/test-vendor/json", vendor=vendor) as demo:
        page = page_at(DESKTOP)
        open_inbox(page, demo)
        simulate(page, "demo-json")
        page.locator('.conv[data-key="demo-json"]').first.click()
        page.locator("#msgs .m.inbound").first.wait_for(timeout=TIMEOUT)
        page.locator("#reply").fill("a flaky moment")
        page.locator("#reply").press("Enter")
        bubble = page.locator(".m.outbound", has_text="a flaky moment")
        retrying = bubble.locator(".st.queued.retrying")
        retrying.wait_for(timeout=TIMEOUT)
        assert "retrying" in retrying.inner_text()
        title = str(retrying.get_attribute("title"))
        assert "attempt 1 failed" in title and "retrying at" in title, title
        assert "attempt 1 failed" in bubble.locator(".err").inner_text()
        shot(page, "retrying")
        bubble.locator(".st.sent, .st.delivered").wait_for(timeout=TIMEOUT)
        title = str(bubble.locator(".st").get_attribute("title"))
        assert "sent on attempt 2" in title and "retrying" not in title, title
        assert bubble.locator(".err").count() == 0
        page.locator("#reply").fill("please refuse me")
        page.locator("#reply").press("Enter")
        refused = page.locator(".m.outbound", has_text="please refuse me").locator(".st.failed")
        refused.wait_for(timeout=TIMEOUT)
        assert "not delivered" in refused.inner_text()
        assert refused.get_attribute("title"), "the failure says why"
        shot(page, "refused")
    assert sum(b"flaky" in c for c in calls) == 2  # one refused attempt, one that went through


def test_service_level_report_and_sla_timer(demo: Demo, page_at: Any) -> None:
    """A waiting conversation shows a live SLA clock; after the agent's reply the report page
    lists the channel with its answered turn and draws the chart."""
    key = next(iter(demo.hub.adapters))
    page = page_at(DESKTOP)
    open_inbox(page, demo)
    simulate(page, key)
    row = page.locator(f'.conv[data-key="{key}"]').first
    chip = row.locator(".sla")
    chip.wait_for(timeout=TIMEOUT)
    first = chip.inner_text()
    page.wait_for_function(
        "(t) => document.querySelector('.conv .sla') && document.querySelector('.conv .sla')"
        ".textContent !== t", arg=first, timeout=TIMEOUT)
    row.click()
    reply_and_see_it_sent(page, "Answered")
    page.locator(f'.conv[data-key="{key}"] .sla').wait_for(state="detached", timeout=TIMEOUT)
    report = page_at(DESKTOP)
    report.goto(f"{demo.url}/demo/report")
    assert report.locator("#channels tbody tr").count() >= 1
    assert report.locator(".chart svg").count() == 1
    shot(report, "report")
