"""The widget and the agent inbox in a real headless Chromium, against a real uvicorn server."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 10_000


def png(width: int = 8, height: int = 8) -> bytes:
    """A small valid PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xd0\x40\x40" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def shot(page: Any, name: str) -> None:
    """Keep a screenshot under test-artifacts/webchat/ (gitignored)."""
    artifacts = Path(__file__).resolve().parents[3] / "test-artifacts" / "webchat"
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def open_widget(page: Any, live: Any, name: str | None = "Ana Souza",
                email: str | None = "ana@example.com") -> None:
    page.goto(f"{live.url}/demo/chat")
    page.locator(".launch").click()
    page.locator(".panel").wait_for(state="visible", timeout=TIMEOUT)
    form = page.locator("form.pre")
    form.wait_for(state="visible", timeout=TIMEOUT)
    if name is None:
        page.locator("form.pre .link").click()
    else:
        page.locator("input[name=name]").fill(name)
        page.locator("input[name=email]").fill(email or "")
        page.locator("form.pre button[type=submit]").click()
    form.wait_for(state="hidden", timeout=TIMEOUT)


def visitor_says(page: Any, text: str) -> None:
    box = page.locator(".panel textarea")
    box.fill(text)
    box.press("Enter")
    page.locator(".msg.in:not(.pending)", has_text=text).wait_for(timeout=TIMEOUT)


def open_inbox(page: Any, live: Any, title: str) -> None:
    page.goto(f"{live.url}/demo/")
    page.locator("#live.on").wait_for(timeout=TIMEOUT)
    page.locator(".conv", has_text=title).first.click()
    page.locator("#reply-form:not([hidden])").wait_for(timeout=TIMEOUT)


def agent_says(page: Any, text: str) -> None:
    page.locator("#reply").fill(text)
    page.locator("#reply").press("Enter")


@pytest.fixture
def browser(chromium: Any) -> Iterator[Any]:
    """New browser contexts for one test, closed afterwards whatever happened."""
    contexts: list[Any] = []

    class Contexts:
        def new_context(self, **kwargs: Any) -> Any:
            contexts.append(chromium.new_context(**kwargs))
            return contexts[-1]

    yield Contexts()
    for context in contexts:
        context.close()

def test_visitor_and_agent_chat_live(browser: Any, live: Any) -> None:
    """A visitor chats, the agent sees it live in the inbox and answers; typing shows both
    ways; the visitor sees the answer live and the inbox shows it read."""
    context = browser.new_context(locale="en-US")
    visitor, agent = context.new_page(), context.new_page()
    open_widget(visitor, live)
    visitor_says(visitor, "Hello, my order #1234 is late")
    open_inbox(agent, live, "Ana Souza")
    agent.locator(".m.inbound", has_text="order #1234").wait_for(timeout=TIMEOUT)
    assert "ana@example.com" in agent.locator("#head").inner_text()

    visitor.locator(".panel textarea").press_sequentially("Are you th", delay=20)
    agent.locator("#typing", has_text="typing").wait_for(timeout=TIMEOUT)
    agent.locator("#reply").press_sequentially("Let me check", delay=20)
    visitor.locator(".typing", has_text="Agent is typing").wait_for(timeout=TIMEOUT)

    agent_says(agent, "Sorry about that! It ships **today**.")
    answer = visitor.locator(".msg.out", has_text="It ships today")
    answer.wait_for(timeout=TIMEOUT)
    assert answer.locator("strong").inner_text() == "today"
    agent.locator(".m.outbound .st.read").wait_for(timeout=TIMEOUT)
    visitor.locator(".msg.in .seen").wait_for(timeout=TIMEOUT)

    # a live message from the visitor lands in the open thread without a reload
    visitor_says(visitor, "Great, thanks!")
    agent.locator(".m.inbound", has_text="Great, thanks!").wait_for(timeout=TIMEOUT)
    shot(visitor, "visitor-chat")
    shot(agent, "agent-inbox")


def test_reload_and_another_tab_keep_history(browser: Any, live: Any,
                                             http: httpx.Client) -> None:
    """The session token in localStorage resumes the conversation after a reload and in a
    second tab; a message written in one tab shows in the other."""
    context = browser.new_context()
    page = context.new_page()
    open_widget(page, live)
    visitor_says(page, "first message")
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    http.post(f"/demo/api/c/{cid}/reply", json={"text": "agent answer one"}).raise_for_status()
    page.locator(".msg.out", has_text="agent answer one").wait_for(timeout=TIMEOUT)

    page.reload()
    page.locator(".launch").click()
    page.locator(".msg.in", has_text="first message").wait_for(timeout=TIMEOUT)
    page.locator(".msg.out", has_text="agent answer one").wait_for(timeout=TIMEOUT)
    assert page.locator("form.pre").is_hidden()  # the pre-chat form was already answered

    other = context.new_page()
    other.goto(f"{live.url}/demo/chat")
    other.locator(".launch").click()
    other.locator(".msg.out", has_text="agent answer one").wait_for(timeout=TIMEOUT)
    visitor_says(other, "from the second tab")
    page.locator(".msg.in", has_text="from the second tab").wait_for(timeout=TIMEOUT)
    assert len(http.get("/demo/api/conversations").json()) == 1
    shot(page, "visitor-after-reload")


def test_upload_arrives(browser: Any, live: Any, http: httpx.Client) -> None:
    """A picture the visitor attaches is stored in the blob store and shows on both sides;
    a file type not on the allow-list is refused in the widget."""
    context = browser.new_context()
    visitor, agent = context.new_page(), context.new_page()
    open_widget(visitor, live, name=None)
    visitor.locator("input[type=file]").set_input_files(
        files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": png()}])
    image = visitor.locator(".msg.in img")
    image.wait_for(timeout=TIMEOUT)
    visitor.wait_for_function(
        "() => document.querySelector('#omnichannel-webchat').shadowRoot"
        ".querySelector('.msg.in img').naturalWidth === 8", timeout=TIMEOUT)
    visitor.locator("input[type=file]").set_input_files(
        files=[{"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" * 10}])
    visitor.locator(".msg.sys", has_text="not accepted").wait_for(timeout=TIMEOUT)

    convs = http.get("/demo/api/conversations").json()
    open_inbox(agent, live, convs[0]["title"])
    agent.locator(".m.inbound img").wait_for(timeout=TIMEOUT)
    agent.wait_for_function("() => document.querySelector('.m.inbound img').naturalWidth === 8",
                            timeout=TIMEOUT)
    messages = http.get(f"/demo/api/c/{convs[0]['id']}").json()["messages"]
    assert messages[0]["media"][0]["name"] == "receipt.png"
    shot(visitor, "visitor-upload")
    shot(agent, "agent-upload")


def test_messages_sent_while_offline_arrive_on_reconnect(browser: Any, live: Any,
                                                          http: httpx.Client) -> None:
    """Agent messages sent while the visitor's widget is disconnected (or the page closed)
    arrive in order when it connects again."""
    context = browser.new_context()
    page = context.new_page()
    open_widget(page, live)
    visitor_says(page, "I will be right back")
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    page.evaluate("window.OmnichannelChat.disconnect()")
    page.wait_for_function("() => !window.OmnichannelChat.state().ready", timeout=TIMEOUT)
    for n in range(1, 4):
        http.post(f"/demo/api/c/{cid}/reply", json={"text": f"while away {n}"}).raise_for_status()
    page.wait_for_timeout(300)
    assert page.locator(".msg.out").count() == 0
    page.evaluate("window.OmnichannelChat.connect()")
    page.locator(".msg.out", has_text="while away 3").wait_for(timeout=TIMEOUT)
    texts = [t for t in page.locator(".msg.out").all_inner_texts()]
    assert [next(x for x in ("1", "2", "3") if f"away {x}" in t) for t in texts] == ["1", "2", "3"]

    page.close()
    http.post(f"/demo/api/c/{cid}/reply", json={"text": "while the page was closed"})
    again = context.new_page()
    again.goto(f"{live.url}/demo/chat")
    again.locator(".launch").click()
    again.locator(".msg.out", has_text="while the page was closed").wait_for(timeout=TIMEOUT)
    deadline = time.monotonic() + 5
    while True:  # the widget acknowledged each message: all delivered (or read) by now
        statuses = [m["status"] for m in http.get(f"/demo/api/c/{cid}").json()["messages"]
                    if m["direction"] == "outbound"]
        if all(s in ("delivered", "read") for s in statuses) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert all(s in ("delivered", "read") for s in statuses), statuses
    shot(again, "visitor-reconnect")


_LATE_AUTH = """
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === "string" && data.indexOf('"type":"auth"') !== -1 && !this.heldOnce) {
    this.heldOnce = true;
    setTimeout(() => send.call(this, data), 1500);
    return;
  }
  return send.call(this, data);
};
"""


# the browser's own behaviour, made slow: after close() a socket is CLOSING until the server
# answers, and drops whatever is sent on it meanwhile
_SLOW_CLOSE = """
const send = WebSocket.prototype.send, close = WebSocket.prototype.close;
WebSocket.prototype.close = function (code, reason) {
  this.closing = true;
  Object.defineProperty(this, "readyState", {get: () => 2, configurable: true});  // CLOSING
  setTimeout(() => { delete this.readyState; close.call(this, code, reason); }, 1500);
};
WebSocket.prototype.send = function (data) {
  if (this.closing) { window.dropped = (window.dropped || 0) + 1; return; }
  return send.call(this, data);
};
"""

# the connection fails just as the visitor's first message goes: either before it leaves
# ("lost") or after, before its ack can come back ("sent")
_DROP_AFTER_MESSAGE = """
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === "string" && data.indexOf('"type":"message"') !== -1 && !window.dropOnce) {
    window.dropOnce = true;
    if (MODE === "sent") send.call(this, data);
    this.close(4000);
    return;
  }
  return send.call(this, data);
};
"""


def _visitor_texts(http: httpx.Client) -> list[str]:
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    return [m["text"] for m in http.get(f"/demo/api/c/{cid}").json()["messages"]
            if m["direction"] == "inbound"]


def test_a_message_written_while_the_socket_reconnects_after_the_form_is_sent(
        browser: Any, live: Any, http: httpx.Client) -> None:
    """The pre-chat form's answer renews the token, so the widget closes its socket to connect
    again: a message written before that close completes is sent on the new socket."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(_SLOW_CLOSE)
    page.goto(f"{live.url}/demo/chat")
    page.locator(".launch").click()
    page.locator("form.pre").wait_for(state="visible", timeout=TIMEOUT)
    page.wait_for_function("() => window.OmnichannelChat.state().ready", timeout=TIMEOUT)
    page.locator("input[name=name]").fill("Ana Souza")
    page.locator("input[name=email]").fill("ana@example.com")
    page.locator("form.pre button[type=submit]").click()
    page.locator("form.pre").wait_for(state="hidden", timeout=TIMEOUT)
    visitor_says(page, "written while reconnecting")
    assert page.evaluate("window.dropped || 0") == 0
    assert _visitor_texts(http) == ["written while reconnecting"]


@pytest.mark.parametrize("mode", ["lost", "sent"])
def test_a_message_whose_connection_fails_is_sent_again_once(
        browser: Any, live: Any, http: httpx.Client, mode: str) -> None:
    """A message sent on a connection that fails before its ack is sent again on the next
    connection; the server keeps one copy and the widget shows one."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(_DROP_AFTER_MESSAGE.replace("MODE", repr(mode)))
    open_widget(page, live)
    visitor_says(page, "through a failing connection")
    assert page.evaluate("window.dropOnce") is True
    assert page.locator(".msg.in", has_text="through a failing connection").count() == 1
    assert _visitor_texts(http) == ["through a failing connection"]


def _outbound_statuses(http: httpx.Client, cid: str) -> list[str]:
    return [m["status"] for m in http.get(f"/demo/api/c/{cid}").json()["messages"]
            if m["direction"] == "outbound"]


def test_history_shown_before_the_socket_is_ready_is_acknowledged(browser: Any, live: Any,
                                                                   http: httpx.Client) -> None:
    """A new page shows the visitor's history before its WebSocket is open: the receipts
    of the agent messages in it wait for the socket instead of being dropped."""
    context = browser.new_context()
    page = context.new_page()
    open_widget(page, live)
    visitor_says(page, "are you there?")
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    page.close()
    for n in range(1, 3):
        http.post(f"/demo/api/c/{cid}/reply", json={"text": f"answer {n}"}).raise_for_status()
    deadline = time.monotonic() + 10
    while _outbound_statuses(http, cid) != ["sent", "sent"]:  # the outbox has them
        assert time.monotonic() < deadline, _outbound_statuses(http, cid)
        time.sleep(0.05)
    again = context.new_page()
    # the socket's first frame (its authentication) goes 1.5 s late, so the connection is
    # ready only well after the history is shown and the panel opened
    again.add_init_script(_LATE_AUTH)
    again.goto(f"{live.url}/demo/chat")
    again.locator(".launch").click()
    again.locator(".msg.out", has_text="answer 2").wait_for(timeout=TIMEOUT)
    assert _outbound_statuses(http, cid) == ["sent", "sent"]  # (no receipt can go yet)
    deadline = time.monotonic() + 10
    while _outbound_statuses(http, cid) != ["read", "read"]:
        assert time.monotonic() < deadline, _outbound_statuses(http, cid)
        time.sleep(0.1)


def test_http_fallback_long_poll(browser: Any, live: Any, http: httpx.Client) -> None:
    """With WebSockets off (``data-transport="poll"``) the widget sends and long-polls."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.url}/channels/webchat/?transport=poll")
    page.locator(".panel").wait_for(state="visible", timeout=TIMEOUT)
    page.locator("form.pre .link").click()
    visitor_says(page, "polling hello")
    assert page.evaluate("window.OmnichannelChat.state().polling") is True
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    http.post(f"/demo/api/c/{cid}/reply", json={"text": "answer by long-poll"}).raise_for_status()
    page.locator(".msg.out", has_text="answer by long-poll").wait_for(timeout=TIMEOUT)
    # the agent's typing reaches the poller (waiting or between two polls), and the widget's
    # cursor keeps the next polls from getting it again (they wait instead of spinning)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/poll" in request.url else None)
    live.call(live.adapter.agent_typing(cid, True, "Agent"))
    page.locator(".typing", has_text="is typing").wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1500)  # (lets Playwright report the requests meanwhile)
    assert len(polls) <= 3, polls
    assert any("sig=" in url for url in polls)
    shot(page, "visitor-long-poll")


def test_agent_text_cannot_inject_html(browser: Any, live: Any, http: httpx.Client) -> None:
    """Agent text is rendered from a markdown subset into DOM nodes: no tags, no script URLs."""
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError("script ran")))
    open_widget(page, live, name=None)
    visitor_says(page, "hi")
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    evil = ('<img src=x onerror="alert(1)"> [click](javascript:alert(2)) '
            '**bold** `code` [site](https://example.com) <script>alert(3)</script>')
    http.post(f"/demo/api/c/{cid}/reply", json={"text": evil}).raise_for_status()
    bubble = page.locator(".msg.out", has_text="bold")
    bubble.wait_for(timeout=TIMEOUT)
    assert bubble.locator("img, script").count() == 0
    hrefs = [a.get_attribute("href") for a in bubble.locator("a").all()]
    assert hrefs == ["https://example.com"]
    assert "<img src=x" in bubble.inner_text()
    assert bubble.locator("code").inner_text() == "code"


@pytest.mark.parametrize(("locale", "path", "label", "placeholder"), [
    ("en-GB", "/demo/chat", "Open chat", "Type a message…"),
    ("zh-CN", "/channels/webchat/", "打开聊天", "输入消息…"),
    ("en-US", "/demo/chat?lang=zh-Hant-TW", "開啟聊天", "輸入訊息…"),
], ids=["en", "zh-Hans", "zh-Hant"])
def test_language_and_keyboard(browser: Any, live: Any, locale: str, path: str, label: str,
                               placeholder: str) -> None:
    """Strings follow the page's language, else the browser's; the widget works from the
    keyboard alone (open, pre-chat form, send, Escape closes and gives focus back)."""
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.goto(f"{live.url}{path}")
    launcher = page.locator(".launch")
    launcher.wait_for(timeout=TIMEOUT)
    if page.locator(".panel").is_visible():  # the standalone page opens the chat at once
        page.keyboard.press("Escape")
        page.locator(".panel").wait_for(state="hidden", timeout=TIMEOUT)
    assert launcher.get_attribute("aria-label") == label
    launcher.focus()
    page.keyboard.press("Enter")
    page.locator(".panel").wait_for(state="visible", timeout=TIMEOUT)
    assert launcher.get_attribute("aria-expanded") == "true"
    page.locator("form.pre").wait_for(state="visible", timeout=TIMEOUT)
    page.locator("form.pre .link").focus()
    page.keyboard.press("Enter")
    box = page.locator(".panel textarea")
    assert box.get_attribute("placeholder") == placeholder
    page.wait_for_function("() => document.querySelector('#omnichannel-webchat').shadowRoot"
                           ".activeElement?.tagName === 'TEXTAREA'", timeout=TIMEOUT)
    page.keyboard.type("typed with the keyboard")
    page.keyboard.press("Enter")
    page.locator(".msg.in:not(.pending)", has_text="typed with the keyboard").wait_for(timeout=TIMEOUT)
    shot(page, "widget-" + {"O": "en", "打": "zh-Hans", "開": "zh-Hant"}[label[0]])
    page.keyboard.press("Escape")
    page.locator(".panel").wait_for(state="hidden", timeout=TIMEOUT)
    assert page.evaluate("document.querySelector('#omnichannel-webchat').shadowRoot"
                         ".activeElement.className") == "launch"


def test_inbox_lists_every_channel_live(browser: Any, live: Any, http: httpx.Client) -> None:
    """Traffic on another channel appears in the open inbox without a reload, and the agent
    answers it there with the delivery status moving forward."""
    context = browser.new_context()
    agent = context.new_page()
    agent.goto(f"{live.url}/demo/")
    agent.locator("#live.on").wait_for(timeout=TIMEOUT)
    assert http.post("/demo/simulate/demo-json", follow_redirects=False).status_code == 303
    conv = agent.locator(".conv", has_text="Customer")
    conv.wait_for(timeout=TIMEOUT)
    conv.first.click()
    agent.locator(".m.inbound", has_text="Where is my order").wait_for(timeout=TIMEOUT)
    agent_says(agent, "It left the warehouse this morning.")
    agent.locator(".m.outbound .st.delivered").wait_for(timeout=TIMEOUT)
    shot(agent, "agent-inbox-other-channel")
