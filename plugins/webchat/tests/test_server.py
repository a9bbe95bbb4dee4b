"""The web chat server over real sockets: WebSocket protocol, HTTP fallback, uploads, limits."""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from omnichannel_sdk import Address

BASE = "/channels/webchat"


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b""))


def new_session(http: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = http.post(f"{BASE}/session", json=extra)
    response.raise_for_status()
    return response.json()


@contextlib.contextmanager
def ws_connect(live: Any, token: str, after: str | None = None,
               origin: str | None = None) -> Iterator[tuple[ClientConnection, dict[str, Any]]]:
    url = live.url.replace("http", "ws") + f"{BASE}/ws"
    with connect(url, origin=origin or live.url, open_timeout=5) as conn:  # type: ignore[arg-type]
        conn.send(json.dumps({"type": "auth", "token": token, "after": after}))
        ready = json.loads(conn.recv(timeout=5))
        assert ready["type"] == "ready", ready
        yield conn, ready


def recv_until(conn: ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(conn.recv(timeout=max(0.01, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


def reply(http: httpx.Client, cid: str, text: str) -> dict[str, Any]:
    response = http.post(f"/demo/api/c/{cid}/reply", json={"text": text})
    response.raise_for_status()
    return response.json()


def test_widget_is_small_and_cached(http: httpx.Client) -> None:
    response = http.get(f"{BASE}/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) < 30 * 1024
    again = http.get(f"{BASE}/widget.js", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304


def test_websocket_round_trip(live: Any, http: httpx.Client) -> None:
    """Send over the socket, see it on the visitor's other tab, get the agent's answer live,
    send receipts and typing; statuses land in the store."""
    session = new_session(http, name="Ana", email="ana@example.com")
    with ws_connect(live, session["token"]) as (tab1, ready), \
            ws_connect(live, session["token"]) as (tab2, _):
        round_trip(live, http, tab1, tab2, ready, session)


def round_trip(live: Any, http: httpx.Client, tab1: ClientConnection, tab2: ClientConnection,
               ready: dict[str, Any], session: dict[str, Any]) -> None:
    assert ready["visitor"] == session["visitor"] and ready["token"]
    tab1.send(json.dumps({"type": "message", "id": "m1", "text": "hello over ws"}))
    ack = recv_until(tab1, "ack")
    assert ack["ref"] == "m1" and ack["message"]["texts"][0]["text"] == "hello over ws"
    echoed = recv_until(tab2, "message")
    assert echoed["message"]["id"] == ack["message"]["id"]

    cid = http.get("/demo/api/conversations").json()[0]["id"]
    sent = reply(http, cid, "agent **answer**")
    got = recv_until(tab1, "message")["message"]
    assert got["id"] == sent["id"] and got["dir"] == "out" and got["author"] == "Agent"
    assert got["texts"] == [{"text": "agent **answer**", "format": "markdown"}]
    recv_until(tab2, "message")

    tab1.send(json.dumps({"type": "delivered", "ids": [got["id"]]}))
    tab1.send(json.dumps({"type": "read", "ids": [got["id"]]}))
    deadline = time.monotonic() + 5
    while live.call(live.hub.store.get_message(got["id"])).status != "read":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    # the agent's typing reaches the visitor; the visitor's typing reaches inbox listeners
    assert live.call(live.adapter.agent_typing(cid, True, "Agent")) == 2
    assert recv_until(tab1, "typing")["on"] is True
    tab1.send(json.dumps({"type": "ping"}))
    recv_until(tab1, "pong")


def test_missed_messages_arrive_in_order_on_reconnect(live: Any, http: httpx.Client) -> None:
    session = new_session(http)
    with ws_connect(live, session["token"]) as (conn, _):
        conn.send(json.dumps({"type": "message", "id": "first", "text": "brb"}))
        last_seen = recv_until(conn, "ack")["message"]["id"]
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    sent = [reply(http, cid, f"away {n}")["id"] for n in range(5)]
    time.sleep(0.3)
    with ws_connect(live, session["token"], after=last_seen) as (conn, _):
        got = [recv_until(conn, "message")["message"]["id"] for _ in range(5)]
    assert got == sent
    # a fresh page (no "after") gets the whole history from the session call
    history = new_session(http, token=session["token"])["history"]
    assert [m["id"] for m in history] == [last_seen, *sent]


def test_bad_token_and_bad_origin_refused(live: Any, http: httpx.Client) -> None:
    url = live.url.replace("http", "ws") + f"{BASE}/ws"
    with connect(url, origin=live.url) as conn:  # type: ignore[arg-type]
        conn.send(json.dumps({"type": "auth", "token": "wc1.forged.token"}))
        assert json.loads(conn.recv(timeout=5))["code"] == "session"
    with pytest.raises(InvalidStatus) as info, \
            connect(url, origin="https://evil.example", open_timeout=5):  # type: ignore[arg-type]
        pass
    assert info.value.response.status_code == 403
    assert http.post(f"{BASE}/session", json={},
                     headers={"origin": "https://evil.example"}).status_code == 403
    assert http.post(f"{BASE}/send", json={"id": "x", "text": "hi"},
                     headers={"x-webchat-session": "nope"}).status_code == 401


def test_http_fallback_send_and_long_poll(live: Any, http: httpx.Client) -> None:
    session = new_session(http)
    headers = {"x-webchat-session": session["token"]}
    sent = http.post(f"{BASE}/send", json={"id": "p1", "text": "via http"}, headers=headers)
    assert sent.status_code == 200
    mine = sent.json()["message"]["id"]
    again = http.post(f"{BASE}/send", json={"id": "p1", "text": "via http"}, headers=headers)
    # a retry with the same id is a duplicate: its ack carries the message stored the first time
    # (the widget that sends again never got the first ack)
    assert again.json()["duplicate"] is True and again.json()["message"]["id"] == mine
    assert "duplicate" not in sent.json()
    cid = http.get("/demo/api/conversations").json()[0]["id"]
    result: dict[str, Any] = {}

    def wait() -> None:
        result["r"] = http.get(f"{BASE}/poll", params={"after": mine, "wait": 5}, headers=headers)

    poller = threading.Thread(target=wait)
    started = time.monotonic()
    poller.start()
    time.sleep(0.4)
    reply(http, cid, "answer to the poller")
    poller.join(10)
    frames = result["r"].json()["frames"]
    assert frames[0]["message"]["texts"][0]["text"] == "answer to the poller"
    assert time.monotonic() - started < 4
    assert http.post(f"{BASE}/typing", json={"on": True}, headers=headers).status_code == 200
    for body in (b"[true]", b'"on"', b"{"):  # like /send and /receipts: an object or nothing
        bad = http.post(f"{BASE}/typing", content=body, headers=headers)
        assert bad.status_code == 400, body
    receipts = http.post(f"{BASE}/receipts", json={"read": [frames[0]["message"]["id"]]},
                         headers=headers)
    assert receipts.json()["applied"] == 1


def test_rate_limit_per_visitor(live: Any, http: httpx.Client) -> None:
    session = new_session(http)
    headers = {"x-webchat-session": session["token"]}
    codes = [http.post(f"{BASE}/send", json={"id": f"r{n}", "text": f"spam {n}"},
                       headers=headers).status_code for n in range(12)]
    assert codes[:8] == [200] * 8 and 429 in codes[8:]
    limited = http.post(f"{BASE}/send", json={"id": "r99", "text": "more"}, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other = new_session(http)  # another visitor is not slowed down
    assert http.post(f"{BASE}/send", json={"id": "o1", "text": "hi"},
                     headers={"x-webchat-session": other["token"]}).status_code == 200


def test_uploads_checked_and_stored(live: Any, http: httpx.Client) -> None:
    session = new_session(http)
    headers = {"x-webchat-session": session["token"]}
    good = http.post(f"{BASE}/upload", params={"id": "u1", "name": "pic <1>.png"}, content=png(),
                     headers={**headers, "content-type": "image/png"})
    assert good.status_code == 200, good.text
    media = good.json()["message"]["media"][0]
    assert media["kind"] == "image" and media["name"] == "pic _1_.png"
    stored = live.call(live.hub.store.get_message(good.json()["message"]["id"])).parts[0]
    assert stored.blob_key and stored.size == len(png())
    assert live.call(live.hub.blobs.get(stored.blob_key)) == png()

    fetched = http.get(media["url"].replace(live.url, ""), params={"t": session["token"]})
    assert fetched.status_code == 200 and fetched.content == png()
    assert fetched.headers["x-content-type-options"] == "nosniff"
    stranger = new_session(http)
    assert http.get(media["url"].replace(live.url, ""),
                    params={"t": stranger["token"]}).status_code == 404
    assert http.get(media["url"].replace(live.url, "")).status_code == 401

    exe = http.post(f"{BASE}/upload", params={"id": "u2"}, content=b"MZ\x90\x00" * 10,
                    headers={**headers, "content-type": "application/x-msdownload"})
    assert exe.status_code == 415
    spoofed = http.post(f"{BASE}/upload", params={"id": "u3"}, content=b"<html><script>" * 4,
                        headers={**headers, "content-type": "image/png"})
    assert spoofed.status_code == 415


def test_upload_size_limit(make_server: Any) -> None:
    live = make_server(upload_max_bytes=1000)
    with httpx.Client(base_url=live.url) as http:
        session = new_session(http)
        big = http.post(f"{BASE}/upload", params={"id": "big"}, content=png() + b"\x00" * 2000,
                        headers={"x-webchat-session": session["token"], "content-type": "image/png"})
        assert big.status_code == 413
        assert live.call(live.hub.store.list_conversations()) == []



def test_prechat_email_never_merges_it_proposes(live: Any, http: httpx.Client) -> None:
    """An anonymous visitor typing a customer's email never joins that customer's contact (an
    impostor would read their history): a merge proposal is recorded, and only the helpdesk's
    confirmation merges."""
    email = Address(channel="email", handle="Grace@Example.com", display_name="Grace")
    conv, _ = live.call(live.hub.store.open_conversation(
        "email", "support-mail", "thread-1", [email], [email]))
    session = new_session(http, name="Grace", email="grace@example.com")
    sent = http.post(f"{BASE}/send", json={"id": "g1", "text": "hello from chat"},
                     headers={"x-webchat-session": session["token"]})
    message = live.call(live.hub.store.get_message(sent.json()["message"]["id"]))
    webchat_conv = live.call(live.hub.store.get_conversation(message.conversation_id))
    assert webchat_conv.contact_id != conv.contact_id
    assert message.metadata["email_verified"] is False
    customer = live.call(live.hub.store.get_contact(conv.contact_id))
    assert {a.channel for a in customer.addresses} == {"email"}
    visitor = live.call(live.hub.store.get_contact(webchat_conv.contact_id))
    assert {a.channel for a in visitor.addresses} == {"webchat"}
    [proposal] = live.call(live.hub.store.list_merge_proposals())
    assert proposal.contact_id == visitor.id and proposal.existing_contact_id == customer.id
    assert proposal.address.handle == "grace@example.com" and proposal.message_id == message.id
    again = http.post(f"{BASE}/send", json={"id": "g2", "text": "still me"},
                      headers={"x-webchat-session": session["token"]})
    assert again.status_code == 200
    assert len(live.call(live.hub.store.list_merge_proposals())) == 1  # one proposal per pair
    merged = live.call(live.hub.confirm_merge(proposal.id))
    assert {a.channel for a in merged.addresses} == {"email", "webchat"}
    assert live.call(live.hub.store.list_merge_proposals()) == []
    assert http.post(f"{BASE}/session", json={"email": "not-an-email"}).status_code == 422


def test_receipts_only_for_own_messages(live: Any, http: httpx.Client) -> None:
    alice, bob = new_session(http), new_session(http)
    http.post(f"{BASE}/send", json={"id": "a1", "text": "alice"},
              headers={"x-webchat-session": alice["token"]}).raise_for_status()
    cid = live.call(live.adapter.conversation_of(alice["visitor"]))
    to_alice = reply(http, cid, "for alice only")
    applied = http.post(f"{BASE}/receipts", json={"read": [to_alice["id"]]},
                        headers={"x-webchat-session": bob["token"]}).json()["applied"]
    assert applied == 0


def test_prechat_required(make_server: Any) -> None:
    live = make_server(prechat="required")
    with httpx.Client(base_url=live.url) as http:
        session = new_session(http)
        headers = {"x-webchat-session": session["token"]}
        refused = http.post(f"{BASE}/send", json={"id": "n1", "text": "hi"}, headers=headers)
        assert refused.status_code == 409 and refused.json()["code"] == "prechat"
        done = new_session(http, token=session["token"], name="Li", email="li@example.cn")
        assert done["visitor"] == session["visitor"]
        ok = http.post(f"{BASE}/send", json={"id": "n2", "text": "hi"},
                       headers={"x-webchat-session": done["token"]})
        assert ok.status_code == 200



def test_cors_for_allowed_origins(make_server: Any) -> None:
    live = make_server(allowed_origins=["https://shop.example.com"])
    with httpx.Client(base_url=live.url) as http:
        pre = http.options(f"{BASE}/send", headers={
            "origin": "https://shop.example.com", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-webchat-session"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://shop.example.com"
        ok = http.post(f"{BASE}/session", json={}, headers={"origin": "https://shop.example.com"})
        assert ok.status_code == 200
        assert http.post(f"{BASE}/session", json={},
                         headers={"origin": "https://evil.example"}).status_code == 403


def test_long_poll_gets_signals_sent_between_polls(live: Any, http: httpx.Client) -> None:
    """The agent types and reads (from the demo inbox, as ``channel.signal`` events) while no
    poll is waiting: the next poll still gets them, once; the visitor's typing reaches the
    inbox's live socket once."""
    session = new_session(http)
    headers = {"x-webchat-session": session["token"]}
    mine = http.post(f"{BASE}/send", json={"id": "s1", "text": "anyone?"},
                     headers=headers).json()["message"]["id"]
    cid = live.call(live.adapter.conversation_of(session["visitor"]))
    inbox_url = live.url.replace("http", "ws") + "/demo/ws"
    with connect(inbox_url, open_timeout=5, origin=live.url) as inbox:  # type: ignore[arg-type]
        time.sleep(0.2)
        inbox.send(json.dumps({"type": "typing", "conversation_id": cid, "on": True}))
        inbox.send(json.dumps({"type": "seen", "conversation_id": cid}))
        deadline = time.monotonic() + 5
        while len(live.adapter.signals_since(cid, None)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)

        first = http.get(f"{BASE}/poll", params={"after": mine, "wait": 5}, headers=headers).json()
        assert [(f["type"], f.get("on"), f.get("name")) for f in first["frames"]] == [
            ("typing", True, "Agent"), ("seen", None, None)]
        assert first["sig"] == first["frames"][-1]["t"]
        again = http.get(f"{BASE}/poll", params={"after": mine, "wait": 0.5, "sig": first["sig"]},
                         headers=headers).json()
        assert again == {"frames": [], "sig": first["sig"]}

        assert http.post(f"{BASE}/typing", json={"on": True}, headers=headers).status_code == 200
        signals = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                event = json.loads(inbox.recv(timeout=max(0.01, deadline - time.monotonic())))
                if event["type"] == "signal":
                    signals.append(event)
        assert [(s["name"], s["from"], s["on"]) for s in signals] == [
            ("typing", "agent", True), ("seen", "agent", False), ("typing", "visitor", True)]
    bad = http.get(f"{BASE}/poll", params={"after": mine, "wait": 0, "sig": "nan"}, headers=headers)
    assert bad.status_code == 200 and isinstance(bad.json()["frames"], list)  # as if no cursor


def test_history_limit_and_older_files(make_server: Any) -> None:
    """A resumed session shows the last ``history_limit`` messages; a file older than that is
    still served to its visitor."""
    live = make_server(history_limit=2)
    with httpx.Client(base_url=live.url) as http:
        session = new_session(http)
        headers = {"x-webchat-session": session["token"]}
        up = http.post(f"{BASE}/upload", params={"id": "f1", "name": "old.png"}, content=png(),
                       headers={**headers, "content-type": "image/png"})
        assert up.status_code == 200
        ids = [http.post(f"{BASE}/send", json={"id": f"t{n}", "text": f"text {n}"},
                         headers=headers).json()["message"]["id"] for n in range(3)]
        history = new_session(http, token=session["token"])["history"]
        assert [m["id"] for m in history] == ids[-2:]
        url = up.json()["message"]["media"][0]["url"].replace(live.url, "")
        assert http.get(url, params={"t": session["token"]}).content == png()
