"""Outbound: markdown to Telegram HTML, method calls, keyboards, error mapping, idempotent sends."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_telegram import (
    MAX_CALLBACK_DATA,
    TelegramAdapter,
    api_error,
    build_calls,
    callback_data,
    markdown_to_html,
)
from omnichannel_telegram._outbound import visible_length
from omnichannel_telegram.testing import EXAMPLE_BOT_TOKEN as BOT_TOKEN
from omnichannel_telegram.testing import api_error as failed
from omnichannel_telegram.testing import sent_message as sent
from omnichannel_telegram.testing import update_request

from omnichannel_sdk import (
    Action,
    ActionsPart,
    AdapterContext,
    Address,
    AuthenticationError,
    EventPart,
    LocationPart,
    MediaPart,
    Message,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    TemplatePart,
    TextPart,
    TransportError,
    UnsupportedFeatureError,
    WebhookRequest,
)
from omnichannel_sdk.testing import PUBLIC_URL, MemoryKV

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    return update_request(body, f"{PUBLIC_URL}/webhooks/{key}", secret)

_ALLOWED = {"b", "i", "s", "code", "pre", "a", "blockquote"}


class _Checker(HTMLParser):
    """Fails on any tag Telegram does not know, unbalanced tags and forbidden nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in _ALLOWED, tag
        if tag == "a":
            assert "a" not in self.stack and "blockquote" not in self.stack
        if tag in ("code", "pre"):
            assert "a" not in self.stack and "blockquote" not in self.stack
            assert not (tag == "code" and "code" in self.stack)
        if tag == "blockquote":
            assert "blockquote" not in self.stack
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, (tag, self.stack)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check(markup: str) -> str:
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert checker.stack == []
    # only the three entities Telegram needs, never a bare < or & in the text
    assert not re.search(r"&(?!lt;|gt;|amp;|quot;)", markup)
    return "".join(checker.text)


@pytest.mark.parametrize(("source", "expected"), [
    ("plain <text> & more", "plain &lt;text&gt; &amp; more"),
    ("**bold** and *it* and ~~gone~~", "<b>bold</b> and <i>it</i> and <s>gone</s>"),
    ("`a<b`", "<code>a&lt;b</code>"),
    ("```python\nif a < b:\n    pass\n```", '<pre><code class="language-python">if a &lt; b:\n    pass</code></pre>'),
    ("[x](https://e.test/?a=1&b=\"q\")", '<a href="https://e.test/?a=1&amp;b=%22q%22">x</a>'),
    ("[x](ftp://e.test)", "x (ftp://e.test)"),
    ("[`code` in link](https://e.test)", '<a href="https://e.test">code in link</a>'),
    ("> quoted [l](https://e.test) `c`", "<blockquote>quoted l (https://e.test) c</blockquote>"),
    ("- a\n- b\n\n1. x\n2. y", "• a\n• b\n\n1. x\n2. y"),
    ("# Title\n\ntext", "<b>Title</b>\n\ntext"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("![logo](https://e.test/l.png)", "logo (https://e.test/l.png)"),
    ("a  \nb", "a\nb"),
])
def test_markdown_to_html(source: str, expected: str) -> None:
    assert markdown_to_html(source) == expected
    check(expected)


@settings(derandomize=True, max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([*"*_~`[]()<>&\"#->!\n \\|ab1:/.", "https://", "```", "1. ", "\n> "]),
                max_size=60).map("".join))
def test_markdown_always_gives_valid_telegram_html(source: str) -> None:
    markup = markdown_to_html(source)
    visible = check(markup)
    assert visible_length(markup, is_html=True) == len(visible.encode("utf-16-le")) // 2
    for word in re.findall(r"[ab1]+", source):  # no letter of the text is lost
        assert word in html.unescape(visible) or word in markup


def test_visible_length_counts_utf16() -> None:
    assert visible_length("😀", is_html=False) == 2
    assert visible_length("<b>a&amp;b</b>", is_html=True) == 3


def test_long_markdown_is_split_to_fit() -> None:
    text = "**" + "😀 " * 3000 + "**"  # fits in characters, not in UTF-16 units
    calls = build_calls([TextPart(text=text, format="markdown")])
    assert len(calls) >= 2
    for call in calls:
        assert visible_length(call.payload["text"], is_html=True) <= 4096
        check(call.payload["text"])


def test_calls_for_every_part() -> None:
    actions = ActionsPart(actions=[Action(id="yes", title="Yes"), Action(id="no", title="No")])
    calls = build_calls([
        TextPart(text="Shall we?"), actions,
        MediaPart(kind="image", url="https://e.test/a.jpg", caption="c"),
        MediaPart(kind="audio", url="https://e.test/a.mp3", content_type="audio/flac"),
        MediaPart(kind="video", url="https://e.test/v.mp4"),
        MediaPart(kind="sticker", url="https://e.test/s.webp", caption="👍"),
        LocationPart(latitude=1, longitude=2, label="Shop", address="Main St 1"),
        LocationPart(latitude=1, longitude=2),
        ActionsPart(prompt="Again?", actions=[Action(id="x", title="X")]),
    ])
    assert [c.method for c in calls] == ["sendMessage", "sendPhoto", "sendAudio", "sendVideo", "sendSticker",
                                         "sendVenue", "sendLocation", "sendMessage"]
    assert calls[0].payload["reply_markup"] == {"inline_keyboard": [
        [{"text": "Yes", "callback_data": "yes"}], [{"text": "No", "callback_data": "no"}]]}
    assert calls[1].payload == {"photo": "https://e.test/a.jpg", "caption": "c"}
    assert "caption" not in calls[4].payload
    assert calls[5].payload == {"latitude": 1, "longitude": 2, "title": "Shop", "address": "Main St 1"}
    assert calls[7].payload["text"] == "Again?"


def test_long_caption_goes_in_its_own_message() -> None:
    calls = build_calls([MediaPart(kind="image", url="https://e.test/a.jpg", caption="c" * 1500)])
    assert [c.method for c in calls] == ["sendPhoto", "sendMessage"] and "caption" not in calls[0].payload


@pytest.mark.parametrize("part", [EventPart(name="typing"), TemplatePart(name="t", language="en"),
                                  MediaPart(kind="image")])
def test_uncarriable_parts_refused(part: object) -> None:
    with pytest.raises(UnsupportedFeatureError):
        build_calls([part])  # type: ignore[list-item]


def test_callback_data_fits_64_bytes() -> None:
    assert callback_data(Action(id="short", title="t")) == "short"
    for action_id in ("é" * 40, "x" * 65, "#looks-like-a-digest"):
        data = callback_data(Action(id=action_id, title="t"))
        assert data.startswith("#") and len(data.encode()) <= MAX_CALLBACK_DATA
    assert callback_data(Action(id="x" * 65, title="t")) != callback_data(Action(id="x" * 66, title="t"))


@pytest.mark.parametrize(("response", "error", "retryable"), [
    (failed(429, "Too Many Requests: retry after 12", retry_after=12), RateLimitedError, True),
    (failed(403, "Forbidden: bot was blocked by the user"), OptedOutError, None),
    (failed(403, "Forbidden: bot was kicked from the supergroup chat"), OptedOutError, None),
    (failed(403, "Forbidden: user is deactivated"), OptedOutError, None),
    (failed(403, "Forbidden: bot can't initiate conversation with a user"), RejectedError, False),
    (failed(401, "Unauthorized"), AuthenticationError, False),
    (failed(404, "Not Found"), AuthenticationError, False),
    (failed(400, "Bad Request: chat not found"), RejectedError, False),
    (failed(502, "Bad Gateway"), ProviderError, True),
    (httpx.Response(500, content=b"<html>oops</html>"), ProviderError, True),
])
def test_error_mapping(response: httpx.Response, error: type[Exception], retryable: bool | None) -> None:
    mapped = api_error("telegram", response)
    assert type(mapped) is error
    if retryable is not None:
        assert mapped.retryable is retryable  # type: ignore[union-attr]
    if isinstance(mapped, RateLimitedError):
        assert mapped.retry_after == 12


def test_group_migration_is_explained() -> None:
    mapped = api_error("telegram", failed(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                          migrate_to_chat_id=-1001234))
    assert isinstance(mapped, RejectedError) and "-1001234" in str(mapped)


@pytest.mark.anyio
async def test_a_retry_does_not_resend_accepted_pieces() -> None:
    async with httpx.AsyncClient() as http:
        settings_ = TelegramAdapter.Settings.model_validate(SETTINGS)
        bot = TelegramAdapter(settings_, AdapterContext(key="tg", public_url="https://x.test", http=http,
                                                        kv=MemoryKV()))
        now = datetime.now(UTC)
        message = Message(id="msg_1", channel="telegram", channel_key="tg", adapter="telegram",
                          direction="outbound", conversation_id="c", sender=bot.own_address(),
                          recipients=[Address(channel="telegram", handle="42")], parts=[],
                          created_at=now, received_at=now, status="queued")
        parts = [TextPart(text="one"), MediaPart(kind="image", url="https://e.test/a.jpg")]
        with respx.mock() as router:
            router.post(f"{API}/bot{BOT_TOKEN}/sendMessage").mock(return_value=sent(1, 42))
            photo = router.post(f"{API}/bot{BOT_TOKEN}/sendPhoto").mock(
                side_effect=[httpx.ConnectError("down"), sent(2, 42)])
            with pytest.raises(TransportError):
                await bot.send(message, parts)
            result = await bot.send(message, parts)
            assert result.external_ids == ["42:1", "42:2"] and result.status == "sent"
            assert router.calls.call_count == 3 and photo.call_count == 2
