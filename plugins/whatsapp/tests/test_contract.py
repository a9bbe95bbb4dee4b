"""The core contract kit, run against the whatsapp adapter over the recorded samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from omnichannel_whatsapp import WhatsAppAdapter, sign_body

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
APP_SECRET = "contract-app-secret"
ACCESS_TOKEN = "EAAG-contract-access-token"
VERIFY_TOKEN = "contract-verify-token"
PHONE_NUMBER_ID = "106540352242922"


def graph_error(status: int, code: int, message: str, headers: dict[str, str] | None = None,
                details: str | None = None) -> httpx.Response:
    error: dict[str, object] = {"message": message, "type": "OAuthException", "code": code,
                                "fbtrace_id": "AbCdEf123"}
    if details:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return httpx.Response(status, json={"error": error}, headers=headers)


def sample_bytes(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


class TestWhatsAppContract(ChannelContract):
    adapter_class = WhatsAppAdapter
    signature_headers = ("x-hub-signature-256",)
    secret_values = (APP_SECRET, ACCESS_TOKEN, VERIFY_TOKEN)
    channel_settings = {"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
                        "access_token": ACCESS_TOKEN, "phone_number_id": PHONE_NUMBER_ID}
    # Meta sends no Retry-After for 130429: the adapter pauses a second (its throughput budget)
    expected_retry_after = 1.0

    def _signed(self, raw: bytes) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {
            "content-type": "application/json", "x-hub-signature-256": sign_body(APP_SECRET, raw)}, raw)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {path.stem: self._signed(path.read_bytes()) for path in sorted(SAMPLES.glob("*.json"))}

    def malformed_request(self) -> WebhookRequest:
        return self._signed(b'{"object": "whatsapp_business_account", "entry": "not a list"')

    def send_case(self) -> SendCase:
        return SendCase(
            method="POST", url=f"https://graph.facebook.com/v21.0/{PHONE_NUMBER_ID}/messages",
            success=lambda: httpx.Response(200, json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                "messages": [{"id": "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJDT05UUkFDVDEA", "message_status": "accepted"}]}),
            recipient=Address(channel="whatsapp", handle="+16505551234"))

    def unauthorized_response(self) -> httpx.Response:
        return graph_error(401, 190, "Error validating access token: Session has expired.")

    def rate_limited_response(self) -> httpx.Response:
        return graph_error(400, 130429, "(#130429) Rate limit hit",
                           details="Cloud API message throughput has been reached.")

    @pytest.fixture
    def vendor(self) -> Iterator[respx.MockRouter]:
        """Media lookups answer like the Graph API; the download host serves bytes."""
        with respx.mock(assert_all_called=False) as router:
            router.get(url__regex=r"^https://graph\.facebook\.com/v21\.0/\d+").mock(
                side_effect=lambda r: httpx.Response(200, json={
                    "messaging_product": "whatsapp", "mime_type": "image/jpeg", "sha256": "x",
                    "file_size": "9", "id": r.url.path.rsplit("/", 1)[-1],
                    "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=1&hash=x"}))
            router.get(url__startswith="https://lookaside.fbsbx.com/").mock(
                return_value=httpx.Response(200, content=b"\xff\xd8\xff jpeg", headers={"content-type": "image/jpeg"}))
            yield router
