# ruff: noqa: RUF001 - Chinese text keeps its full-width punctuation
"""Customer-service and template sends, errcode mapping and the shared access_token."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import respx
from omnichannel_wechat import WeChatAdapter, WeChatWindowClosedError

from omnichannel_sdk import (
    AdapterContext,
    Address,
    AuthenticationError,
    MediaPart,
    Message,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    TemplatePart,
    TextPart,
    TransportError,
    WindowClosedError,
)
from omnichannel_sdk.testing._contract import MemoryKV

API = "https://api.weixin.qq.com"
OPENID = "oia2TjjewbmiOUlr6X-1crbLOvLw"
pytestmark = pytest.mark.anyio


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make(http: httpx.AsyncClient, kv: MemoryKV | None = None, **settings: Any) -> WeChatAdapter:
    values = {"app_id": "wx1234", "app_secret": "the-app-secret", "token": "tok", **settings}
    return WeChatAdapter(WeChatAdapter.Settings.model_validate(values), AdapterContext(
        key="wx", public_url="https://hooks.example.test", http=http, kv=kv or MemoryKV()))


def message(*parts: Any, metadata: dict[str, Any] | None = None) -> Message:
    now = datetime.now(UTC)
    return Message(id="msg_01", channel="wechat", channel_key="wx", adapter="wechat-mp",
                   direction="outbound", conversation_id="conv_01",
                   sender=Address(channel="wechat", handle="wx1234"),
                   recipients=[Address(channel="wechat", handle=OPENID)], parts=list(parts),
                   created_at=now, received_at=now, status="queued", metadata=metadata or {})


class Tokens:
    """A stable_token endpoint handing out ACCESS_1, ACCESS_2…"""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = orjson.loads(request.content)
        self.bodies.append(body)
        assert body["secret"] == "the-app-secret" and "secret" not in request.url.params
        if self.delay:
            await asyncio.sleep(self.delay)
        return httpx.Response(200, json={"access_token": f"ACCESS_{self.calls}", "expires_in": 7200})


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})


async def test_text_is_utf8_json_without_escapes(http: httpx.AsyncClient) -> None:
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(side_effect=ok)
        result = await make(http).send(message(TextPart(text="您好，订单已发货 🚚")), [
            TextPart(text="您好，订单已发货 🚚")])
    request = send.calls.last.request
    assert request.url.params["access_token"] == "ACCESS_1"
    assert b"\\u" not in request.content and "您好".encode() in request.content
    assert request.headers["content-type"].startswith("application/json")
    assert orjson.loads(request.content) == {"touser": OPENID, "msgtype": "text",
                                             "text": {"content": "您好，订单已发货 🚚"}}
    assert result.external_ids == ["msg_01:0"] and result.status == "sent"


async def test_image_is_uploaded_first_then_cached(http: httpx.AsyncClient) -> None:
    kv = MemoryKV()
    adapter = make(http, kv)
    part = MediaPart(kind="image", url="https://cdn.example.test/a.png", content_type="image/png")
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        router.get("https://cdn.example.test/a.png").mock(return_value=httpx.Response(200, content=b"PNG"))
        upload = router.post(f"{API}/cgi-bin/media/upload").mock(return_value=httpx.Response(
            200, json={"type": "image", "media_id": "MEDIA_1", "created_at": 1}))
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(side_effect=ok)
        await adapter.send(message(part), [part])
        await adapter.send(message(part), [part])
    assert upload.call_count == 1
    assert upload.calls.last.request.url.params["type"] == "image"
    assert b'name="media"' in upload.calls.last.request.content
    assert orjson.loads(send.calls.last.request.content)["image"] == {"media_id": "MEDIA_1"}


async def test_voice_and_cards(http: httpx.AsyncClient) -> None:
    part = MediaPart(kind="audio", url="https://cdn.example.test/a.amr")
    cards = {"wechat": {"link": {"title": "Returns", "description": "7 days", "url": "https://x.test/r",
                                 "picurl": "https://x.test/p.jpg"},
                        "miniprogrampage": {"title": "Order", "appid": "wxapp", "pagepath": "pages/o",
                                            "thumb_media_id": "T"},
                        "kf_account": "alice@gh"}}
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        router.get("https://cdn.example.test/a.amr").mock(return_value=httpx.Response(200, content=b"#!AMR"))
        router.post(f"{API}/cgi-bin/media/upload").mock(return_value=httpx.Response(
            200, json={"type": "voice", "media_id": "VOICE_1"}))
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(side_effect=ok)
        result = await make(http).send(message(part, metadata=cards), [part])
    bodies = [orjson.loads(c.request.content) for c in send.calls]
    assert [b["msgtype"] for b in bodies] == ["news", "miniprogrampage", "voice"]
    assert bodies[0]["news"]["articles"][0]["url"] == "https://x.test/r"
    assert bodies[2]["voice"] == {"media_id": "VOICE_1"}
    assert all(b["customservice"] == {"kf_account": "alice@gh"} for b in bodies)
    assert len(result.external_ids) == 3


async def test_template_send(http: httpx.AsyncClient) -> None:
    part = TemplatePart(name="TPL_ORDER_SHIPPED", params={"first": "已发货", "keyword1": {
        "value": "SF123", "color": "#173177"}})
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        send = router.post(f"{API}/cgi-bin/message/template/send").mock(return_value=httpx.Response(
            200, json={"errcode": 0, "errmsg": "ok", "msgid": 200228332}))
        result = await make(http).send(message(part, metadata={"wechat": {"url": "https://x.test"}}), [part])
    body = orjson.loads(send.calls.last.request.content)
    assert body == {"touser": OPENID, "template_id": "TPL_ORDER_SHIPPED", "client_msg_id": "msg_01",
                    "url": "https://x.test", "data": {"first": {"value": "已发货"},
                                                     "keyword1": {"value": "SF123", "color": "#173177"}}}
    assert result.external_ids == ["200228332"]


@pytest.mark.parametrize(("errcode", "error", "retryable"), [
    (45015, WeChatWindowClosedError, False),
    (45047, RateLimitedError, True),
    (45009, RateLimitedError, True),
    (48001, AuthenticationError, False),
    (43004, OptedOutError, None),
    (40003, RejectedError, False),
    (-1, ProviderError, True),
])
async def test_errcodes_are_mapped(http: httpx.AsyncClient, errcode: int, error: type[Exception],
                                   retryable: bool | None) -> None:
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        router.post(f"{API}/cgi-bin/message/custom/send").mock(return_value=httpx.Response(
            200, json={"errcode": errcode, "errmsg": "nope"}))
        with pytest.raises(error) as info:
            await make(http).send(message(TextPart(text="hi")), [TextPart(text="hi")])
    if retryable is not None:
        assert info.value.retryable is retryable  # type: ignore[attr-defined]
    assert "the-app-secret" not in str(info.value)
    if errcode == 45015:
        assert isinstance(info.value, WindowClosedError)
    if errcode == 45009:
        assert 0 < info.value.retry_after <= 86400  # type: ignore[attr-defined]


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_refused_token_refreshed_once_and_retried(http: httpx.AsyncClient, errcode: int) -> None:
    tokens = Tokens()
    answers = iter([{"errcode": errcode, "errmsg": "invalid credential"}, {"errcode": 0, "errmsg": "ok"}])
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=tokens)
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(
            side_effect=lambda _r: httpx.Response(200, json=next(answers)))
        await make(http).send(message(TextPart(text="hi")), [TextPart(text="hi")])
    assert tokens.calls == 2
    assert [c.request.url.params["access_token"] for c in send.calls] == ["ACCESS_1", "ACCESS_2"]


async def test_refused_twice_is_an_authentication_error(http: httpx.AsyncClient) -> None:
    tokens = Tokens()
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=tokens)
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(return_value=httpx.Response(
            200, json={"errcode": 40001, "errmsg": "invalid credential"}))
        with pytest.raises(AuthenticationError):
            await make(http).send(message(TextPart(text="hi")), [TextPart(text="hi")])
    assert tokens.calls == 2 and send.call_count == 2


async def test_bad_app_secret_is_an_authentication_error(http: httpx.AsyncClient) -> None:
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(return_value=httpx.Response(
            200, json={"errcode": 40125, "errmsg": "invalid appsecret"}))
        with pytest.raises(AuthenticationError) as info:
            await make(http).send(message(TextPart(text="hi")), [TextPart(text="hi")])
    assert "the-app-secret" not in str(info.value)


async def test_token_shared_by_processes_fetched_once(http: httpx.AsyncClient) -> None:
    kv = MemoryKV()
    tokens = Tokens(delay=0.2)
    adapters = [make(http, kv) for _ in range(5)]  # five "processes" sharing one store
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=tokens)
        got = await asyncio.gather(*(a.access_token() for a in adapters))
    assert tokens.calls == 1 and set(got) == {"ACCESS_1"}


async def test_token_refreshed_ahead_of_expiry(http: httpx.AsyncClient) -> None:
    kv = MemoryKV()
    key = "wechat:wx1234:access_token"
    await kv.kv_set(key, orjson.dumps({"token": "OLD", "expires_at": time.time() + 100,
                                       "refresh_at": time.time() - 200}).decode())
    tokens = Tokens()
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=tokens)
        # another process holds the refresh lock: the old token, still valid, is used meanwhile
        await kv.kv_add(f"{key}:lock", "other", ttl=30)
        assert await make(http, kv).access_token() == "OLD"
        await kv.kv_delete(f"{key}:lock")
        assert await make(http, kv).access_token() == "ACCESS_1"
    assert orjson.loads(await kv.kv_get(key) or "{}")["token"] == "ACCESS_1"


async def test_waiting_for_a_stuck_refresh_times_out(http: httpx.AsyncClient) -> None:
    kv = MemoryKV()
    await kv.kv_add("wechat:wx1234:access_token:lock", "other", ttl=30)
    with pytest.raises(TransportError):
        await make(http, kv, token_wait=0.2).access_token()


async def test_media_request_adds_the_token(http: httpx.AsyncClient) -> None:
    adapter = make(http)
    part = MediaPart(kind="audio", url=f"{API}/cgi-bin/media/get?media_id=voice%2F1")
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        request = await adapter.media_request(part)
    assert request is not None
    assert request.url.params["access_token"] == "ACCESS_1" and request.url.params["media_id"] == "voice/1"
    assert await adapter.media_request(MediaPart(kind="file")) is None


async def test_video_media_request_follows_video_url(http: httpx.AsyncClient) -> None:
    adapter = make(http)
    part = MediaPart(kind="video", url=f"{API}/cgi-bin/media/get?media_id=v1")
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=Tokens())
        router.get(f"{API}/cgi-bin/media/get").mock(return_value=httpx.Response(
            200, json={"video_url": "http://mpvideo.qpic.cn/v1.mp4"}))
        request = await adapter.media_request(part)
    assert request is not None and str(request.url) == "http://mpvideo.qpic.cn/v1.mp4"
    with respx.mock() as router:
        router.get(f"{API}/cgi-bin/media/get").mock(return_value=httpx.Response(
            200, json={"errcode": 40007, "errmsg": "invalid media_id"}))
        with pytest.raises(RejectedError):
            await adapter.media_request(part)


async def test_stable_token_forced_when_it_repeats_a_refused_token(http: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = []

    def stable(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        bodies.append(body)
        token = "NEW" if body["force_refresh"] else "OLD"
        return httpx.Response(200, json={"access_token": token, "expires_in": 7200})

    answers = iter([{"errcode": 40001, "errmsg": "invalid credential"}, {"errcode": 0}])
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=stable)
        send = router.post(f"{API}/cgi-bin/message/custom/send").mock(
            side_effect=lambda _r: httpx.Response(200, json=next(answers)))
        await make(http).send(message(TextPart(text="hi")), [TextPart(text="hi")])
    assert [b["force_refresh"] for b in bodies] == [False, False, True]
    assert [c.request.url.params["access_token"] for c in send.calls] == ["OLD", "NEW"]


async def test_classic_token_endpoint(http: httpx.AsyncClient) -> None:
    with respx.mock() as router:
        token = router.get(f"{API}/cgi-bin/token").mock(return_value=httpx.Response(
            200, json={"access_token": "CLASSIC", "expires_in": 7200}))
        assert await make(http, token_endpoint="token").access_token() == "CLASSIC"
    params = token.calls.last.request.url.params
    assert params["grant_type"] == "client_credential" and params["appid"] == "wx1234"


async def test_token_inside_the_margin_is_not_fetched_on_every_call(http: httpx.AsyncClient) -> None:
    tokens = Tokens()
    adapter = make(http)
    with respx.mock() as router:
        router.post(f"{API}/cgi-bin/stable_token").mock(side_effect=lambda r: httpx.Response(
            200, json={"access_token": "SAME", "expires_in": 120}))
        for _ in range(3):
            assert await adapter.access_token() == "SAME"
        assert router.calls.call_count == 1
    assert tokens.calls == 0
