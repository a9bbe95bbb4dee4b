"""The core contract kit, run against the web chat adapter (its webhook form)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from omnichannel_webchat import SESSION_HEADER, Session, WebchatAdapter, sign_session

from omnichannel_sdk import Address, WebhookRequest
from omnichannel_sdk.testing import ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
SECRET = "contract-webchat-secret-42"
VISITOR = "v_contractvisitor0000000"


def token(**changes: Any) -> str:
    now = int(time.time())
    session = Session(visitor=VISITOR, channel_key="contract", expires=now + 600, issued=now,
                      name="Ana Souza", email="ana@example.com")
    for key, value in changes.items():
        object.__setattr__(session, key, value)
    return sign_session(session, SECRET)


class TestWebchatContract(ChannelContract):
    adapter_class = WebchatAdapter
    sends_over_http = False
    channel_settings = {"secret": SECRET, "allowed_origins": ["https://shop.example.com"]}
    signature_headers = (SESSION_HEADER,)
    secret_values = (SECRET,)

    def _request(self, body: bytes, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> WebhookRequest:
        return WebhookRequest("POST", self.webhook_url, {
            "content-type": content_type, SESSION_HEADER: token(),
            "origin": "https://shop.example.com", **(headers or {})}, body)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {
            "text": self._request((SAMPLES / "text.json").read_bytes()),
            "batch": self._request((SAMPLES / "batch.json").read_bytes()),
            "form": self._request((SAMPLES / "form.txt").read_bytes(),
                                  "application/x-www-form-urlencoded"),
        }

    def malformed_request(self) -> WebhookRequest:
        return self._request(b'{"messages": "not a list"')

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        """The signed content of a web chat request is its session token: change it."""
        value = request.headers[SESSION_HEADER]
        prefix, _payload, signature = value.split(".")
        forged = token(visitor="v_someoneelse00000000000").split(".")[1]
        headers = {**request.headers, SESSION_HEADER: f"{prefix}.{forged}.{signature}"}
        return WebhookRequest(request.method, request.url, headers, request.body)

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://nothing.invalid/", regex=False,
                        success=lambda: httpx.Response(200),
                        recipient=Address(channel="webchat", handle=VISITOR))

    # Web chat has no vendor HTTP API: the three vendor-failure tests of the kit cannot
    # happen. They are replaced by what holds instead: a send never calls out, and never fails
    # for a visitor who is offline (the message waits in the store for the reconnect).

    @pytest.mark.anyio
    async def test_send_unauthorized(self) -> None:
        """(webchat) A send needs no credentials and makes no HTTP call at all."""
        with respx.mock(assert_all_called=False) as router:
            route = router.route().mock(return_value=httpx.Response(401))
            result = await self._send(self.send_case().success)
            assert not route.called
        assert result.external_ids

    @pytest.mark.anyio
    async def test_send_rate_limited(self) -> None:
        """(webchat) A send to an offline visitor succeeds; the widget fetches it later."""
        result = await self._send(self.send_case().success)
        assert result.status == "sent" and result.metadata["webchat_live"] == 0

    @pytest.mark.anyio
    async def test_send_network_error(self) -> None:
        """(webchat) A send pushes to the visitor's live connections in this process."""
        from omnichannel_webchat._registry import Connection

        case = self.send_case()
        adapter = self.make_adapter()
        conn = Connection(VISITOR)
        adapter.registry.add(conn)  # type: ignore[attr-defined]
        message = self.outbound_message(adapter, case)
        result = await adapter.send(message, message.parts)
        assert result.external_ids == [message.id]
        frames = await conn.next_frames(0.1)
        assert len(frames) == 1 and b"Hello from the contract suite" in frames[0]

    def test_webhook_form_threads_and_hints(self) -> None:
        """The pre-chat email rides along as a claimed (unproven) address; the visitor is the
        sender."""
        adapter = self.make_adapter()
        result = adapter.parse(self.sample_requests()["batch"])
        assert [m.external_id for m in result.items] == [f"{VISITOR}:c0ffee02", f"{VISITOR}:c0ffee03"]
        first = result.items[0]
        assert first.sender.handle == VISITOR and first.sender.display_name == "Ana Souza"
        assert first.contact_hints == []
        assert first.claimed_addresses == [Address(channel="email", handle="ana@example.com",
                                                   display_name="Ana Souza")]
        assert first.recipients == [Address(channel="webchat", handle="contract")]

    def test_foreign_origin_refused(self) -> None:
        """A request from a page not on the allow-list fails verification."""
        from omnichannel_sdk import SignatureError

        adapter = self.make_adapter()
        bad = self._request(b"{}", headers={"origin": "https://evil.example"})
        with pytest.raises(SignatureError):
            adapter.verify(bad)

    def test_expired_token_refused(self) -> None:
        """An expired session token fails verification."""
        from omnichannel_sdk import SignatureError

        adapter = self.make_adapter()
        old = self._request(b"{}", headers={SESSION_HEADER: token(expires=int(time.time()) - 1)})
        with pytest.raises(SignatureError):
            adapter.verify(old)
