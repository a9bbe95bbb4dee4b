"""The demo inbox's presentation rules and JSON API (no browser): readable names, initials,
events, email, retry state, unread counts, attachments, open/closed, the simulators."""

from __future__ import annotations

import base64
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from omnichannel_sdk import Hub
from omnichannel_sdk._demo import build_demo, demo_config
from omnichannel_sdk._demo._present import conversation_json, initials, message_json, readable_name
from omnichannel_sdk._models import (
    Address,
    Author,
    Contact,
    Conversation,
    EventPart,
    Message,
    TextPart,
    TranscriptPart,
    TranscriptSegment,
)

NOW = datetime(2026, 12, 2, 18, 13, tzinfo=UTC)


def _message(direction: str, parts: list[Any], *, at: datetime = NOW, channel: str = "email",
             **extra: object) -> Message:
    return Message.model_validate({
        "id": f"m{at.timestamp()}{direction}", "channel": channel, "channel_key": channel,
        "adapter": "x", "direction": direction, "conversation_id": "c1",
        "sender": Address(channel=channel, handle="a@b.example" if channel == "email" else "v_Rj0lQx9z"),
        "parts": parts,
        "created_at": at, "received_at": at,
        "status": "received" if direction == "inbound" else "queued", **extra})


def test_readable_names_and_initials() -> None:
    assert readable_name(Address(channel="webchat", handle="v_Rj0lQx9zK")).startswith("Visitor ")
    psid = readable_name(Address(channel="messenger", handle="2487309174650123"))
    assert re.fullmatch(r"Messenger user \d{4}", psid)
    assert readable_name(Address(channel="sms", handle="+14155550100")) == "+14155550100"
    assert readable_name(Address(channel="email", handle="a@b.example")) == "a@b.example"
    assert readable_name(Address(channel="webchat", handle="v_1", display_name="Ana")) == "Ana"
    assert (initials("Ana Souza"), initials("李雷"), initials("+4915"), initials("")) == (
        "AS", "李", "#", "#")


def test_events_email_transcripts_and_retry_state() -> None:
    event = message_json(_message("inbound", [EventPart(name="subscribe")], channel="wechat"))
    assert event["kind"] == "event" and event["events"][0]["label"] == "followed the account"
    assert event["text"] == ""  # never "event"
    mail = message_json(_message("inbound", [TextPart(text="Hello")], subject="Order #1",
                                 metadata={"cc": ["b@x.example"], "quoted": "> earlier"}))
    assert (mail["subject"], mail["cc"], mail["quoted"]) == ("Order #1", ["b@x.example"], "> earlier")
    voice = message_json(_message("inbound", [TranscriptPart(segments=[
        TranscriptSegment(speaker="caller", start=0, end=2, text="Call me back")])], channel="voice"))
    assert voice["transcript"] == [{"speaker": "caller", "start": 0.0, "text": "Call me back"}]
    retrying = message_json(_message("outbound", [TextPart(text="hi", format="markdown")],
                                     metadata={"delivery": {"attempts": 2, "last_error": "x: y",
                                                            "next_attempt_at": "2026-12-02T18:14:00Z"}}))
    assert retrying["retry"] == {"attempts": 2, "next_at": "2026-12-02T18:14:00Z",
                                 "last_error": "x: y"}
    assert retrying["markdown"] is True
    assert message_json(_message("outbound", [TextPart(text="hi")]))["retry"] is None


def test_unread_counts_and_the_waiting_clock() -> None:
    conv = Conversation(id="c1", channel="email", channel_key="email", contact_id="k1",
                        thread_key="a@b|support@x|s:where is", created_at=NOW)
    contact = Contact(id="k1", addresses=[Address(channel="email", handle="a@b.example")])
    one, two = (_message("inbound", [TextPart(text=t)], at=NOW + timedelta(seconds=i))
                for i, t in enumerate(("one", "two")))
    row = conversation_json(conv, contact, [one, two], None)
    assert row["unread"] == 2 and row["waiting_since"] == one.created_at.isoformat()
    assert row["sla_target"] == 4 * 3600 and "|" not in row["title"]
    assert conversation_json(conv, contact, [one, two], NOW + timedelta(seconds=0.5))["unread"] == 1
    answer = _message("outbound", [TextPart(text="ok")], at=NOW + timedelta(seconds=5),
                      author=Author(name="Agent"))
    row = conversation_json(conv, contact, [one, two, answer], None)
    assert row["unread"] == 0 and row["waiting_since"] is None


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    hub = Hub.from_config(demo_config("http://testserver", tmp_path, entry_points=False),
                          entry_points=False)
    with TestClient(build_demo(hub)) as http:
        token = re.search(r'DEMO_TOKEN="([^"]+)"', http.get("/demo/").text)
        assert token
        http.headers["x-demo-token"] = token.group(1)
        yield http


def test_api_simulate_reply_with_attachment_and_close(client: TestClient) -> None:
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg")
    assert client.get("/demo/static/inbox.js").status_code == 200
    assert client.get("/demo/static/../_app.py").status_code == 404
    assert client.get("/demo/api/channels").json()[0]["key"] == "demo-json"
    assert client.post("/demo/api/simulate/demo-json").json()["requests"] == 1
    assert client.post("/demo/api/simulate/nope").status_code == 404
    (conv,) = client.get("/demo/api/conversations").json()
    assert conv["unread"] == 1 and conv["channel_name"] == "Custom"
    files = [{"name": "note.txt", "type": "text/plain", "data": base64.b64encode(b"hi").decode()}]
    sent = client.post(f"/demo/api/c/{conv['id']}/reply", json={"text": "**see**", "files": files})
    assert sent.status_code == 200, sent.text
    assert sent.json()["media"][0]["name"] == "note.txt" and sent.json()["markdown"]
    bad = client.post(f"/demo/api/c/{conv['id']}/reply", json={"files": [{"data": "%%%"}]})
    assert bad.status_code == 400 and "base64" in bad.json()["error"]
    assert client.post(f"/demo/api/c/{conv['id']}/reply", json={"files": "x"}).status_code == 400
    assert client.post(f"/demo/api/c/{conv['id']}/status", json={"status": "gone"}).status_code == 400
    assert client.post(f"/demo/api/c/{conv['id']}/status", json={"status": "closed"}).json()[
        "status"] == "closed"
    assert client.get("/demo/api/conversations?status=open").json() == []
    assert len(client.get("/demo/api/conversations?status=closed").json()) == 1
    assert client.get("/demo/api/conversations?q=order").json()
    assert client.get("/demo/api/conversations?q=zzz").json() == []
    assert client.post(f"/demo/api/c/{conv['id']}/status", json={"status": "open"}).status_code == 200
    contact = client.get(f"/demo/api/contacts/{conv['contact_id']}").json()
    assert contact["addresses"] and len(contact["timeline"]) == 2
    assert client.get("/demo/api/contacts/nope").status_code == 404
    assert contact["timeline_before"] is None
    paged = client.get(f"/demo/api/contacts/{conv['contact_id']}?timeline_limit=1").json()
    assert [m["id"] for m in paged["timeline"]] == [contact["timeline"][1]["id"]]
    earlier = client.get(f"/demo/api/contacts/{conv['contact_id']}/timeline",
                         params={"before": paged["timeline_before"], "limit": "x"}).json()
    assert [m["id"] for m in earlier["items"]] == [contact["timeline"][0]["id"]]
    assert earlier["next_before"] is None
    assert client.get(f"/demo/api/contacts/{conv['contact_id']}/timeline",
                      params={"before": "msg_nope"}).status_code == 404
    assert client.get("/demo/api/merges").json() == []
    report = client.get("/demo/report")
    assert report.status_code == 200 and "<svg" in report.text and "Custom" in report.text
    stranger = {"x-demo-token": ""}  # a page that is not ours has no token
    assert client.post("/demo/api/simulate/demo-json", headers=stranger).status_code == 403
    assert client.post(f"/demo/api/c/{conv['id']}/status", json={"status": "closed"},
                       headers=stranger).status_code == 403
    assert client.post("/demo/api/merges/x/confirm", headers=stranger).status_code == 403
    assert client.post("/demo/api/unmerge/x", headers=stranger).status_code == 403


def test_the_visitor_page_language_follows_the_browser(client: TestClient) -> None:
    assert '<html lang="de-CH">' in client.get("/demo/chat", headers={
        "accept-language": "de-CH,de;q=0.9"}).text
    assert '<html lang="zh-Hant-TW">' in client.get("/demo/chat?lang=zh-Hant-TW").text
    assert '<html lang="en">' in client.get("/demo/chat?lang=<x>",
                                            headers={"accept-language": ""}).text


@pytest.mark.slow
def test_the_wheel_ships_the_inbox_files(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(root)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("omnichannel_sdk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("inbox.html", "inbox.css", "inbox.js", "chat.html", "favicon.svg", "icons.svg",
                 "shop.css"):
        assert f"omnichannel_sdk/_demo/static/{name}" in names, name
