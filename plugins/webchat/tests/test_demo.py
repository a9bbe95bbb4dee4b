"""``omnichannel demo`` with the web chat installed: pages, the inbox API and ``--check``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from omnichannel_webchat import _plugin

from omnichannel_sdk import Hub, WebhookRequest


def test_pages_and_api(live: Any, http: httpx.Client) -> None:
    inbox = http.get("/demo/")
    assert inbox.status_code == 200 and 'id="reply-form"' in inbox.text
    chat = http.get("/demo/chat")
    assert '<script src="/channels/webchat/widget.js" async></script>' in chat.text
    for request in _plugin.demo_requests("webchat", live.url, _plugin.DEMO_WEBCHAT_SECRET):
        assert request.header("x-webchat-session")
    # the demo's own simulate button posts signed traffic of every channel
    assert http.post("/demo/simulate/webchat", follow_redirects=False).status_code == 303
    convs = http.get("/demo/api/conversations").json()
    assert {c["title"] for c in convs} == {"Ana Souza", "李雷"}
    thread = http.get(f"/demo/api/c/{convs[0]['id']}").json()
    assert thread["conversation"]["emails"]
    sent = http.post(f"/demo/api/c/{convs[0]['id']}/reply", json={"text": "On it"}).json()
    assert sent["direction"] == "outbound" and sent["author"] == "Agent"
    assert http.post("/demo/api/c/nope/reply", json={"text": "x"}).status_code == 409
    assert http.get("/demo/api/c/nope").status_code == 404
    # the no-JS pages still work
    assert http.get(f"/demo/c/{convs[0]['id']}").status_code == 200
    posted = http.post(f"/demo/c/{convs[0]['id']}/reply", data={"text": "plain form"},
                       follow_redirects=False)
    assert posted.status_code == 303


@pytest.mark.anyio
async def test_demo_check_with_webchat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's ``--check`` run: every channel gets traffic and a reply, web chat included."""
    from omnichannel_sdk._cli import _demo_check
    from omnichannel_sdk._demo import demo_config

    config = demo_config("http://127.0.0.1:8000", tmp_path, plugins=[_plugin], entry_points=False)
    hub = Hub.from_config(config, plugins=[_plugin], entry_points=False)
    await _demo_check(hub)
    out = capsys.readouterr().out
    assert "webchat: POST /webhooks/webchat -> 200" in out
    assert out.count("webchat: reply") == 2 and "inbox page: 200" in out


def test_simulate_hook_ignores_other_adapters() -> None:
    assert _plugin.DEMO.simulate("x", "twilio-sms", "http://h") is None
    requests = _plugin.DEMO.simulate("chat", "webchat", "http://h/")
    assert requests and all(isinstance(r, WebhookRequest) for r in requests)
    assert requests[0].url == "http://h/webhooks/chat"


def test_demo_inbox_refuses_cross_site_requests(live: Any, http: httpx.Client) -> None:
    """Another site's page can neither post as the agent (a ``text/plain`` form needs no CORS
    preflight) nor read events over the inbox's WebSocket."""
    from websockets.exceptions import InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    assert http.post("/demo/simulate/webchat", follow_redirects=False).status_code == 303
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    with httpx.Client(base_url=live.url, timeout=10) as stranger:  # no token: a foreign page
        evil = {"origin": "https://evil.example", "content-type": "text/plain"}
        assert stranger.post(f"/demo/api/c/{cid}/reply", content='{"text": "pwned"}',
                             headers=evil).status_code == 403
        assert stranger.post(f"/demo/api/c/{cid}/reply", json={"text": "pwned"}).status_code == 403
        assert stranger.post(f"/demo/c/{cid}/reply", data={"text": "pwned"},
                             follow_redirects=False).status_code == 403
        assert stranger.post("/demo/simulate/webchat", follow_redirects=False).status_code == 403
        # the right token from the wrong Origin is refused too
        assert stranger.post(f"/demo/api/c/{cid}/reply", json={"text": "pwned"}, headers={
            "origin": "https://evil.example", "x-demo-token": http.headers["x-demo-token"]}
        ).status_code == 403
    texts = [m["text"] for m in http.get(f"/demo/api/c/{cid}").json()["messages"]]
    assert "pwned" not in " ".join(t or "" for t in texts)
    # the page's own form (token field) still works
    token = http.headers["x-demo-token"]
    with httpx.Client(base_url=live.url, timeout=10) as page:
        assert page.post(f"/demo/c/{cid}/reply", data={"text": "by form", "csrf": token},
                         follow_redirects=False).status_code == 303
    ws = live.url.replace("http", "ws") + "/demo/ws"
    with pytest.raises((InvalidStatus, WebSocketException, OSError)):
        with connect(ws, open_timeout=5, origin="https://evil.example") as sock:  # type: ignore[arg-type]
            sock.recv(timeout=2)
    with connect(ws, open_timeout=5, origin=live.url) as sock:  # type: ignore[arg-type]
        sock.send('{"type": "seen", "conversation_id": "nope"}')
