"""The template's adapter proves itself with the contract kit."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson
from omnichannel_example import ExampleAdapter

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase


class TestExampleContract(ChannelContract):
    adapter_class = ExampleAdapter
    channel_settings = {"webhook_secret": "whsec", "api_token": "tok-123"}
    signature_headers = ("x-example-signature",)
    secret_values = ("whsec", "tok-123")

    def _signed(self, body: bytes) -> WebhookRequest:
        sig = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
        return WebhookRequest("POST", self.webhook_url, {"x-example-signature": sig}, body)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {"text": self._signed(orjson.dumps({"id": "e1", "from": "u1", "text": "hello"}))}

    def malformed_request(self) -> WebhookRequest:
        return self._signed(b"[]")

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.example.invalid/messages",
                        success=lambda: httpx.Response(200, json={"id": "out-1"}),
                        recipient=Address(channel="example", handle="u1"))
