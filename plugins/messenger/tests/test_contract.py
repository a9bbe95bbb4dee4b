"""The core contract kit, run against the messenger and instagram adapters."""

from __future__ import annotations

from pathlib import Path

import httpx
from omnichannel_messenger import InstagramAdapter, MessengerAdapter, sign_body

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
APP_SECRET = "contract-app-secret"
PAGE_TOKEN = "EAAB-contract-page-token"
VERIFY_TOKEN = "contract-verify-token"


def graph_error(status: int, code: int, message: str, subcode: int | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
    error: dict[str, object] = {"message": message, "type": "OAuthException", "code": code,
                                "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


class _MetaContract(ChannelContract):
    folder = "messenger"
    signature_headers = ("x-hub-signature-256", "x-hub-signature")
    secret_values = (APP_SECRET, PAGE_TOKEN, VERIFY_TOKEN)
    channel_settings = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
                        "page_access_token": PAGE_TOKEN, "fetch_profiles": False}

    def _signed(self, raw: bytes) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {
            "content-type": "application/json", "x-hub-signature-256": sign_body(APP_SECRET, raw)}, raw)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {path.stem: self._signed(path.read_bytes())
                for path in sorted((SAMPLES / self.folder).glob("*.json"))}

    def malformed_request(self) -> WebhookRequest:
        return self._signed(b'{"object": "page", "entry": "not a list"')

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://graph.facebook.com/v21.0/me/messages",
                        success=lambda: httpx.Response(200, json={
                            "recipient_id": "6543210987654321", "message_id": "m_contract-1"}),
                        recipient=Address(channel=self.adapter_class.channel, handle="6543210987654321"))

    def unauthorized_response(self) -> httpx.Response:
        return graph_error(401, 190, "Error validating access token: Session has expired.", 463)

    def rate_limited_response(self) -> httpx.Response:
        return graph_error(400, 613, "Calls to this api have exceeded the rate limit.",
                           headers={"Retry-After": "7"})


class TestMessengerContract(_MetaContract):
    adapter_class = MessengerAdapter
    folder = "messenger"


class TestInstagramContract(_MetaContract):
    adapter_class = InstagramAdapter
    folder = "instagram"

    def malformed_request(self) -> WebhookRequest:
        return self._signed(b'{"object": "instagram"}')
