"""The vendor toolkit of the core: one implementation each of what plugins used to copy."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from omnichannel_sdk import (
    AuthenticationError,
    ChannelError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    SignatureError,
    TokenBucket,
    TransportError,
    WebhookRequest,
    check_timestamp,
    error_for_status,
    html_to_text,
    media_kind,
    meta,
    redact_url,
    transport_error,
    transport_errors,
)


def _all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


# -- error mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(_all_subclasses(httpx.HTTPError), key=lambda k: k.__name__))
def test_every_httpx_error_maps_to_a_typed_channel_error(kind: type[httpx.HTTPError]) -> None:
    request = httpx.Request("GET", "https://api.example.test/x?token=secret")
    if issubclass(kind, httpx.HTTPStatusError):
        exc: httpx.HTTPError = kind("boom", request=request,
                                    response=httpx.Response(503, request=request))
    else:
        exc = kind("boom https://api.example.test/x?token=secret")
        if isinstance(exc, httpx.RequestError):
            exc.request = request
    error = transport_error("vendor", exc, "calling the vendor")
    assert isinstance(error, ChannelError)
    assert "secret" not in str(error)  # the URL (and its credentials) never reach the message
    if isinstance(exc, httpx.HTTPStatusError):
        assert isinstance(error, ProviderError) and error.retryable
    else:
        assert isinstance(error, TransportError) and error.retryable


def test_transport_errors_block_chains_httpx_error() -> None:
    with pytest.raises(TransportError, match="vendor: timeout downloading media") as caught, \
            transport_errors("vendor", "downloading media"):
        raise httpx.ReadTimeout("slow")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize("status", range(400, 600))
def test_every_error_status_maps(status: int) -> None:
    error = error_for_status("vendor", status, httpx.Response(status, headers={"retry-after": "7"}),
                             None, None)
    expected: type[ChannelError]
    if status == 429:
        expected = RateLimitedError
    elif status in (401, 403):
        expected = AuthenticationError
    elif status >= 500 or status == 408:
        expected = ProviderError
    else:
        expected = RejectedError
    assert type(error) is expected
    assert error.retryable == (expected in (RateLimitedError, ProviderError))
    if status == 429:
        assert isinstance(error, RateLimitedError) and error.retry_after == 7.0


@pytest.mark.anyio
async def test_adapter_request_maps_transport_errors_through_the_one_mapping() -> None:
    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing import FakeAdapter, MemoryKV

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        adapter = FakeAdapter(FakeAdapter.Settings(secret="s"),  # type: ignore[call-arg]
                              AdapterContext(key="k", public_url="https://x.test", http=http,
                                             kv=MemoryKV()))
        with pytest.raises(TransportError, match="fake: ConnectError calling the vendor"):
            await adapter.request("GET", "https://api.fake.test/send")


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "abc", "", None, 1_000.0])
def test_check_timestamp_refuses_what_is_not_a_recent_number(stamp: object) -> None:
    with pytest.raises(SignatureError):
        check_timestamp(stamp, 300, adapter="vendor")  # type: ignore[arg-type]


def test_check_timestamp_accepts_inside_the_tolerance() -> None:
    now = time.time()
    assert check_timestamp(str(int(now) - 299), 300, now=now) == int(now) - 299
    with pytest.raises(SignatureError):
        check_timestamp(now - 301, 300, now=now)


# -- token bucket -------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take("a")
    assert 0.4 < wait <= 0.5  # one token every half second
    assert bucket.take("b") == 0.0  # keys are separate


def test_token_bucket_forgets_the_oldest_keys_beyond_max_keys() -> None:
    bucket = TokenBucket(rate=1, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        bucket.take(key)
    assert bucket.take("a") == 0.0  # "a" was dropped: a fresh bucket


@pytest.mark.anyio
async def test_token_bucket_acquire_waits_for_a_token() -> None:
    bucket = TokenBucket(rate=50, burst=1)
    await bucket.acquire()
    assert bucket.take() > 0  # empty now
    await asyncio.wait_for(bucket.acquire(), timeout=5)


def test_token_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0.5)


# -- html, media kinds, URLs -----------------------------------------------------------------


def test_html_to_text_keeps_structure_links_and_quotes() -> None:
    html = ("<style>p{}</style><p>Hi &amp; welcome</p><ul><li>one</li></ul>"
            "<a href='https://x.test/a'>docs</a><blockquote>old</blockquote>")
    assert html_to_text(html) == "Hi & welcome\n\n- one\n\ndocs <https://x.test/a>\n\n> old"


@pytest.mark.parametrize(("content_type", "kind"), [
    ("image/png", "image"), ("IMAGE/JPEG; q=1", "image"), ("audio/ogg", "audio"),
    ("video/mp4", "video"), ("application/pdf", "file"), ("", "file"), (None, "file"),
    ("imagex/png", "file")])
def test_media_kind(content_type: str | None, kind: str) -> None:
    assert media_kind(content_type) == kind


def test_redact_url_for_logs_and_for_stored_requests() -> None:
    url = "https://user:pw@api.test/bot123:AAE-x/send?token=t&page=2#frag"
    assert redact_url(url) == "https://<redacted>@api.test/bot<redacted>/send?token=<redacted>&page=<redacted>"
    assert redact_url(url, {"token"}) == \
        "https://user:<redacted>@api.test/bot123:AAE-x/send?token=<redacted>&page=2#frag"


# -- Meta -------------------------------------------------------------------------------------


def test_meta_signature_and_handshake() -> None:
    body = b'{"object":"page"}'
    signed = WebhookRequest("POST", "https://x.test/w", {meta.SIGNATURE_HEADER: meta.sign_body("s", body)},
                            body=body)
    meta.verify_signature(signed, "s", adapter="m")
    upper = "SHA256=" + meta.sign_body("s", body)[7:].upper()
    assert meta.signature_matches("s", body, upper)
    for header in ({}, {meta.SIGNATURE_HEADER: "sha1=abc"}, {meta.SIGNATURE_HEADER: meta.sign_body("t", body)}):
        with pytest.raises(SignatureError):
            meta.verify_signature(WebhookRequest("POST", "https://x.test/w", header, body=body), "s",
                                  adapter="m")
    query = {"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "42"}
    answer = meta.answer_handshake(WebhookRequest("GET", "https://x.test/w", query=query), "v", adapter="m")
    assert answer.status == 200 and answer.body in ("42", b"42")
    with pytest.raises(SignatureError):
        meta.answer_handshake(WebhookRequest("GET", "https://x.test/w", query={**query, "hub.verify_token": "w"}),
                              "v", adapter="m")


def test_meta_graph_error_reading() -> None:
    response = httpx.Response(400, json={"error": {"code": 131047, "error_subcode": "7", "message": "tok-1 bad",
                                                   "error_data": {"details": "window"}}})
    error = meta.read_graph_error(response)
    assert (error.status, error.code, error.subcode) == (400, 131047, 7)
    assert error.describe(secrets=("tok-1",)) == "*** bad (window)"
    assert meta.read_graph_error(httpx.Response(500, content=b"<html>")).code is None
    usage = httpx.Response(400, headers={"x-app-usage": '{"estimated_time_to_regain_access": 2}'})
    assert meta.usage_retry_after(usage) == 120.0
