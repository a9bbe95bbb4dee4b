"""The Example adapter proves itself with omnichannel_sdk's contract kit."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import orjson
from omnichannel_sdk import Address, ChannelAdapter, WebhookRequest, hmac_digest
from omnichannel_sdk.testing import ChannelContract, SendCase

from omnichannel_example import ExampleAdapter

SECRET, TOKEN = "whsec-example-1", "tok-example-123"


class TestExampleContract(ChannelContract):
    adapter_class: ClassVar[type[ChannelAdapter]] = ExampleAdapter
    channel_settings: ClassVar[dict[str, Any]] = {"webhook_secret": SECRET, "api_token": TOKEN}
    signature_headers: ClassVar[tuple[str, ...]] = ("x-example-signature",)
    secret_values: ClassVar[tuple[str, ...]] = (SECRET, TOKEN)

    def _signed(self, payload: object) -> WebhookRequest:
        body = orjson.dumps(payload)
        headers = {"content-type": "application/json", "x-example-signature": hmac_digest(SECRET, body)}
        return WebhookRequest("POST", self.webhook_url, headers, body)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        customer = {"id": "u1", "name": "Ada"}
        return {
            "text": self._signed({"id": "m1", "from": customer, "text": "hello"}),
            "media": self._signed({"id": "m2", "from": customer, "media": [
                {"url": "https://media.example.invalid/a.jpg", "type": "image/jpeg"}]}),
            "button": self._signed({"id": "m3", "from": customer, "button": "yes"}),
        }

    def malformed_request(self) -> WebhookRequest:
        return self._signed([])

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://api.example.invalid/messages",
                        success=lambda: httpx.Response(200, json={"id": "out-1"}),
                        recipient=Address(channel="example", handle="u1"))
