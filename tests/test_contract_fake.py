"""The contract kit, run against the kit's own FakeAdapter."""

from __future__ import annotations

import httpx
import orjson

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, FakeAdapter, SendCase, fake_signature

SECRET = "contract-secret"


class TestFakeContract(ChannelContract):
    adapter_class = FakeAdapter
    channel_settings = {"secret": SECRET, "api_key": "sk-live-123"}
    signature_headers = ("x-fake-signature",)
    secret_values = (SECRET, "sk-live-123")

    def _signed(self, body: dict | bytes) -> WebhookRequest:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        return WebhookRequest("POST", self.webhook_url, {
            "content-type": "application/json", "x-fake-signature": fake_signature(SECRET, raw)}, raw)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {
            "text": self._signed({"events": [{"id": "m1", "from": "alice", "text": "hi"}]}),
            "media": self._signed({"events": [{"id": "m2", "from": "bob",
                                               "media_url": "https://media.fake.test/1.png"}]}),
            "receipt": self._signed({"events": [{"status": "delivered", "for": "x1"}]}),
        }

    def malformed_request(self) -> WebhookRequest:
        return self._signed(b"{not json")

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.fake.test/messages",
                        success=lambda: httpx.Response(200, json={"id": "vendor-1"}),
                        recipient=Address(channel="fake", handle="alice"))
