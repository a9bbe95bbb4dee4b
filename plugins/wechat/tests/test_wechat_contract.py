"""The core contract suite, in safe mode and in plaintext mode."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from omnichannel_wechat import WeChatAdapter, WeChatCrypto, decode_aes_key, signed_webhook

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
APP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET = "0c79e1fa963cd80cc0be99b20a18faeb"
TOKEN_URL = r"^https://api\.weixin\.qq\.com/cgi-bin/stable_token"


def _token_answer() -> httpx.Response:
    return httpx.Response(200, json={"access_token": "ACCESS_TOKEN_1", "expires_in": 7200})


class _WeChatContract(ChannelContract):
    adapter_class = WeChatAdapter
    signature_params = ("signature", "msg_signature")

    @pytest.fixture
    def vendor(self) -> Iterator[respx.MockRouter]:
        """The token endpoint answers a token; media downloads get a small body."""
        with respx.mock(assert_all_called=False) as router:
            router.route(method="POST", url__regex=TOKEN_URL).mock(side_effect=lambda _r: _token_answer())
            router.route(method="GET").mock(return_value=httpx.Response(
                200, content=b"#!AMR\nfake", headers={"content-type": "audio/amr"}))
            yield router

    def send_case(self) -> SendCase:
        return SendCase(
            method="POST", url="https://api.weixin.qq.com/cgi-bin/message/custom/send",
            success=lambda: httpx.Response(200, json={"errcode": 0, "errmsg": "ok"}),
            recipient=Address(channel="wechat", handle="oia2TjjewbmiOUlr6X-1crbLOvLw"),
            extra_routes=[("POST", TOKEN_URL, _token_answer)])

    def unauthorized_response(self) -> httpx.Response:
        return httpx.Response(200, json={"errcode": 48001, "errmsg": "api unauthorized"})

    def rate_limited_response(self) -> httpx.Response:
        return httpx.Response(200, json={"errcode": 45011, "errmsg": "api minute-quota reach limit"})

    expected_retry_after = 60.0


class TestWeChatSafeModeContract(_WeChatContract):
    channel_settings = {"app_id": APP_ID, "app_secret": SECRET, "token": TOKEN,
                        "encoding_aes_key": AES_KEY}
    secret_values = (SECRET, TOKEN, AES_KEY)

    def _crypto(self) -> WeChatCrypto:
        return WeChatCrypto(decode_aes_key(AES_KEY), APP_ID)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {p.stem: signed_webhook(self.webhook_url, TOKEN, p.read_bytes(), crypto=self._crypto(),
                                       openid="oia2TjjewbmiOUlr6X-1crbLOvLw")
                for p in sorted(SAMPLES.glob("*.xml"))}

    def malformed_request(self) -> WebhookRequest:
        return signed_webhook(self.webhook_url, TOKEN, b"<xml><MsgType>text</MsgType", crypto=self._crypto())


class TestWeChatPlaintextContract(_WeChatContract):
    channel_key = "plain"
    channel_settings = {"app_id": APP_ID, "app_secret": SECRET, "token": TOKEN}
    secret_values = (SECRET, TOKEN)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {p.stem: signed_webhook(self.webhook_url, TOKEN, p.read_bytes())
                for p in sorted(SAMPLES.glob("*.xml"))}

    def malformed_request(self) -> WebhookRequest:
        return signed_webhook(self.webhook_url, TOKEN, b"<xml><MsgType>text</MsgType")

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        # plaintext mode signs only token, timestamp and nonce (WeChat does not sign the body
        # in this mode): tampering means changing the nonce
        url = re.sub(r"nonce=(\d)", lambda m: f"nonce={(int(m.group(1)) + 1) % 10}", request.url)
        return WebhookRequest(request.method, url, request.headers, request.body)
