"""Both SMS adapters prove themselves with the core contract kit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from omnichannel_sms import TwilioSmsAdapter, VonageSmsAdapter, parse_form, signed_params
from omnichannel_sms._twilio import signed_request

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
SID = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
TOKEN = "contract-twilio-token-5f2a"
VONAGE_SIG = "contract-vonage-signature-secret"
VONAGE_API = "contract-vonage-api-secret"


def _form(name: str) -> list[tuple[str, str]]:
    return parse_form((SAMPLES / f"{name}.form").read_bytes())


def _json(name: str) -> Any:
    return orjson.loads((SAMPLES / f"{name}.json").read_bytes())


class TestTwilioSmsContract(ChannelContract):
    adapter_class = TwilioSmsAdapter
    channel_settings = {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006"}
    signature_headers = ("x-twilio-signature",)
    secret_values = (TOKEN,)

    def _signed(self, name: str) -> WebhookRequest:
        return signed_request(TOKEN, self.webhook_url, _form(name))

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {name: self._signed(name) for name in (
            "twilio_inbound_sms", "twilio_inbound_mms", "twilio_stop", "twilio_status_delivered",
            "twilio_status_undelivered")}

    def malformed_request(self) -> WebhookRequest:
        return signed_request(TOKEN, self.webhook_url, [("AccountSid", SID), ("Hello", "world")])

    def send_case(self) -> SendCase:
        return SendCase(
            method="POST", url=f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json",
            success=lambda: httpx.Response(201, json=_json("twilio_send_created")),
            recipient=Address(channel="sms", handle="+14155550100"))

    def receipt_request(self, external_id: str, status: str) -> WebhookRequest | None:
        """Twilio's status callback for the message (``MessageStatus`` as Twilio writes it)."""
        changes = {"MessageSid": external_id, "SmsSid": external_id, "MessageStatus": status,
                   "SmsStatus": status}
        pairs = [(k, changes.get(k, v)) for k, v in _form("twilio_status_delivered")]
        return signed_request(TOKEN, self.webhook_url, pairs)


class TestVonageSmsContract(ChannelContract):
    adapter_class = VonageSmsAdapter
    channel_settings = {"api_key": "abcd1234", "api_secret": VONAGE_API,
                        "signature_secret": VONAGE_SIG, "signature_method": "sha256",
                        "from_number": "+447700900000"}
    signature_params = ("sig",)
    secret_values = (VONAGE_SIG, VONAGE_API)

    def _json_request(self, params: dict[str, Any]) -> WebhookRequest:
        body = orjson.dumps(signed_params(VONAGE_SIG, params, "sha256"))
        return WebhookRequest("POST", self.webhook_url, {"content-type": "application/json"}, body)

    def _form_request(self, params: dict[str, Any]) -> WebhookRequest:
        body = urlencode(signed_params(VONAGE_SIG, params, "sha256")).encode()
        return WebhookRequest("POST", self.webhook_url,
                              {"content-type": "application/x-www-form-urlencoded"}, body)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {
            "inbound-json": self._json_request(_json("vonage_inbound")),
            "inbound-unicode-form": self._form_request(_json("vonage_inbound_unicode")),
            "dlr-delivered": self._json_request(_json("vonage_dlr_delivered")),
            "dlr-failed": self._form_request(_json("vonage_dlr_failed")),
        }

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        """The signature rides in the body here: drop it there."""
        if request.content_type == "application/json":
            data = orjson.loads(request.body)
            data.pop("sig", None)
            body = orjson.dumps(data)
        else:
            body = urlencode([kv for kv in parse_qsl(request.body.decode()) if kv[0] != "sig"]).encode()
        return WebhookRequest(request.method, request.url, request.headers, body)

    def malformed_request(self) -> WebhookRequest:
        return self._json_request({"api-key": "abcd1234", "hello": "world",
                                   "timestamp": str(int(time.time()))})

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://rest.nexmo.com/sms/json",
                        success=lambda: httpx.Response(200, json=_json("vonage_send_ok")),
                        recipient=Address(channel="sms", handle="+447700900001"))

    def receipt_request(self, external_id: str, status: str) -> WebhookRequest | None:
        """Vonage's delivery receipt for the message (no read receipts on SMS; "accepted" is
        its word for handed to the network)."""
        vendor = {"delivered": "delivered", "sent": "accepted"}.get(status)
        if vendor is None:
            return None
        return self._json_request({**_json("vonage_dlr_delivered"), "messageId": external_id,
                                   "status": vendor, "timestamp": str(int(time.time()))})
