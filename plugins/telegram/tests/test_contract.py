"""The core contract kit, run against the telegram adapter over the recorded samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from omnichannel_telegram import TelegramAdapter
from omnichannel_telegram.testing import EXAMPLE_BOT_TOKEN as BOT_TOKEN
from omnichannel_telegram.testing import api_error as failed
from omnichannel_telegram.testing import sent_message as sent
from omnichannel_telegram.testing import update_request

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import PUBLIC_URL, ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-Secret_token-42"
API = "https://api.telegram.org"
SETTINGS = {"bot_token": BOT_TOKEN, "secret_token": SECRET}


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def update(body: dict[str, Any] | bytes, key: str = "contract", secret: str | None = SECRET) -> WebhookRequest:
    return update_request(body, f"{PUBLIC_URL}/webhooks/{key}", secret)


class TestTelegramContract(ChannelContract):
    adapter_class = TelegramAdapter
    channel_settings = SETTINGS
    signature_headers = ("x-telegram-bot-api-secret-token",)
    secret_values = (BOT_TOKEN, SECRET)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {path.stem: update(path.read_bytes(), self.channel_key)
                for path in sorted(SAMPLES.glob("*.json"))}

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        # Telegram signs nothing: what proves the sender is the secret header, so that is what
        # an attacker gets wrong (a changed body with the right token is, by design, accepted)
        headers = {**request.headers, "x-telegram-bot-api-secret-token": SECRET[:-1] + "X"}
        return WebhookRequest(request.method, request.url, headers, request.body)

    def malformed_request(self) -> WebhookRequest:
        return update(b'{"update_id": 1, "message": "not an object"', self.channel_key)

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url=f"{API}/bot{BOT_TOKEN}/sendMessage",
                        success=lambda: sent(9100),
                        recipient=Address(channel="telegram", handle="111222333"))

    def unauthorized_response(self) -> httpx.Response:
        return failed(401, "Unauthorized")

    def rate_limited_response(self) -> httpx.Response:
        return failed(429, "Too Many Requests: retry after 7", retry_after=7)
