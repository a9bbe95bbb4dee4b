"""Issue 11's core guarantees through the gateway, on SQLite and PostgreSQL: nothing verified is
lost (store failures dead-letter or ask for a retry, never a 500), cut-off bodies are never
parsed, the store's errors are typed, and one bad item never takes a batch down."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, ClassVar

import httpx
import pytest

from omnichannel_sdk import (
    Hub,
    InboundMessage,
    OmnichannelError,
    RetryLaterError,
    StatusUpdate,
    StoreDataError,
    StoreError,
    StoreUnavailableError,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL, FakeAdapter

from .conftest import PG_DSN, signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


class HostileAdapter(FakeAdapter):
    """The fake vendor, but ``<NUL>`` / ``<SUR>`` in an event become U+0000 / a lone surrogate:
    values a store may refuse (PostgreSQL refuses U+0000 in text, every encoder a surrogate)."""

    name: ClassVar[str] = "hostile"

    def _item(self, event: dict[str, Any]) -> InboundMessage | StatusUpdate:
        fixed = {k: v.replace("<NUL>", "\x00").replace("<SUR>", "\ud800") if isinstance(v, str) else v
                 for k, v in event.items()}
        return super()._item(fixed)


class _Hostile:
    @hookimpl
    def omni_register_adapters(self, register: Any) -> None:
        register(HostileAdapter)


@pytest.fixture
def register_plugin(register_plugin: list[object]) -> list[object]:
    register_plugin.append(_Hostile())
    return register_plugin


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["channels"]["bad"] = {"adapter": "hostile", "secret": "fake-webhook-secret"}
    return omni_config


def _is_pg(hub: Hub) -> bool:
    return type(hub.store).__name__ == "PostgresStore"


async def _messages(hub: Hub) -> list[str]:
    found = []
    for conversation in await hub.store.list_conversations():
        found += [m.external_id or "" for m in await hub.store.list_messages(conversation.id)]
    return sorted(found)


def test_store_errors_are_in_the_tree() -> None:
    assert issubclass(StoreError, OmnichannelError)
    assert issubclass(StoreDataError, StoreError)
    assert issubclass(StoreUnavailableError, StoreError) and issubclass(StoreUnavailableError, RetryLaterError)
    assert StoreUnavailableError("x").retry_after == 5.0


@pytest.mark.parametrize("marker", ["<SUR>", "<NUL>"])
async def test_a_value_the_store_refuses_is_dead_lettered_with_its_raw(
        hub: Hub, webhook_client: httpx.AsyncClient, marker: str) -> None:
    body, headers = signed([{"id": f"m{marker}1", "from": "alice", "text": "hi"}])
    answer = await webhook_client.post("/webhooks/bad", content=body, headers=headers)
    assert answer.status_code == 200  # the vendor stops retrying: the request is kept
    if marker == "<NUL>" and not _is_pg(hub):  # SQLite holds U+0000 in text: stored as sent
        assert await _messages(hub) == ["m\x001"] and await hub.store.list_dead_letters() == []
        return
    [letter] = await hub.store.list_dead_letters()
    assert letter.channel_key == "bad" and letter.raw_id
    assert "cannot store" in letter.error and "\x00" not in letter.error
    raw = await hub.store.get_raw(letter.raw_id)
    assert raw is not None and raw.body == body
    assert await _messages(hub) == []
    # the vendor's retry is kept again (never a 500), and replay keeps failing honestly
    assert (await webhook_client.post("/webhooks/bad", content=body, headers=headers)).status_code == 200
    report = await hub.replay()
    assert report.failed and not report.replayed


async def test_a_request_line_the_store_refuses_is_kept_escaped(hub: Hub) -> None:
    from omnichannel_sdk import WebhookRequest

    body, headers = signed([{"id": "m<SUR>", "from": "alice", "text": "hi"}])
    request = WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/bad?note=a\x00b",
                             {**headers, "x-note": "c\x00d"}, body)
    assert (await hub.handle_webhook("bad", request)).status == 200
    [letter] = await hub.store.list_dead_letters()
    raw = await hub.store.get_raw(letter.raw_id or "")
    assert raw is not None and raw.body == body  # the body exact; the request line escaped
    assert raw.url.endswith(("note=a\\x00b", "note=a\x00b"))


async def test_one_bad_item_does_not_fail_the_others_of_its_request(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    marker = "<NUL>" if _is_pg(hub) else "<SUR>"
    body, headers = signed([{"id": "good-1", "from": "alice", "text": "one"},
                            {"id": f"bad{marker}", "from": "alice", "text": "two"},
                            {"id": "good-2", "from": "bob", "text": "three"}])
    assert (await webhook_client.post("/webhooks/bad", content=body, headers=headers)).status_code == 200
    assert await _messages(hub) == ["good-1", "good-2"]
    [letter] = await hub.store.list_dead_letters()
    raw = await hub.store.get_raw(letter.raw_id or "")
    assert raw is not None and raw.body == body


async def test_a_bad_request_does_not_fail_a_group_commit_of_others(
        hub: Hub, webhook_client: httpx.AsyncClient) -> None:
    marker = "<NUL>" if _is_pg(hub) else "<SUR>"
    requests = [signed([{"id": f"ok-{n}", "from": f"c{n}", "text": "x"}]) for n in range(12)]
    requests.insert(5, signed([{"id": f"no{marker}", "from": "evil", "text": "x"}]))
    answers = await asyncio.gather(*[webhook_client.post("/webhooks/bad", content=b, headers=h)
                                     for b, h in requests])
    assert {a.status_code for a in answers} == {200}
    assert await _messages(hub) == sorted(f"ok-{n}" for n in range(12))
    assert len(await hub.store.list_dead_letters()) == 1


async def test_a_failure_after_parsing_is_dead_lettered_not_a_500(
        hub: Hub, webhook_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug in a later step")

    monkeypatch.setattr(hub.store, "ingest", broken)
    body, headers = signed([{"id": "m", "from": "a", "text": "x"}])
    assert (await webhook_client.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
    [letter] = await hub.store.list_dead_letters()
    assert "KeyError" in letter.error and letter.raw_id
    monkeypatch.undo()
    assert len((await hub.replay()).replayed) == 1  # the kept request is whole: replay stores it
    assert await _messages(hub) == ["m"]


async def test_store_locked_is_503_with_retry_after_and_nothing_kept(
        omni_config: dict[str, Any], register_plugin: list[object], store_url: str | None) -> None:
    body, headers = signed([{"id": "locked", "from": "a", "text": "x"}])
    if store_url is not None:  # a lock wait PostgreSQL gives up on (55P03 lock_not_available)
        omni_config["omnichannel"]["store"] = f"{store_url}&lock_timeout=200"
    hub = Hub.from_config(omni_config, plugins=register_plugin)
    async with hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            if store_url is None:
                store: Any = hub.store
                other = sqlite3.connect(store.path, isolation_level=None)
                store.conn.execute("PRAGMA busy_timeout=50")
                other.execute("BEGIN EXCLUSIVE")
                try:
                    answer = await client.post("/webhooks/fake", content=body, headers=headers)
                finally:
                    other.execute("ROLLBACK")
                    other.close()
            else:
                import asyncpg

                schema = store_url.rpartition("schema=")[2]
                locker = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
                try:
                    async with locker.transaction():
                        await locker.execute("LOCK TABLE message_refs IN ACCESS EXCLUSIVE MODE")
                        answer = await client.post("/webhooks/fake", content=body, headers=headers)
                finally:
                    await locker.close()
            assert answer.status_code == 503 and int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"].startswith("not ready")
            assert await hub.store.list_dead_letters() == []
            assert (await client.post("/webhooks/fake", content=body, headers=headers)).status_code == 200
            assert await _messages(hub) == ["locked"]


# -- truncated bodies --------------------------------------------------------------------------


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]],
                messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run one ASGI request whose ``receive`` yields ``messages`` then blocks."""
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "root_path": "", "scheme": "https",
             "server": ("hooks.example.test", 443), "http_version": "1.1"}
    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent


async def test_body_cut_by_disconnect_is_never_parsed(hub: Hub) -> None:
    body, headers = signed([{"id": "cut", "from": "a", "text": "the whole text"}])
    raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    app = hub.asgi(lifespan=False)
    half = len(body) // 2
    sent = await _call(app, "/webhooks/fake", raw_headers, [
        {"type": "http.request", "body": body[:half], "more_body": True},
        {"type": "http.disconnect"}])
    assert sent[0]["status"] == 400
    # shorter than its Content-Length, though the stream said it was complete
    sent = await _call(app, "/webhooks/fake", raw_headers, [
        {"type": "http.request", "body": body[:half], "more_body": False}])
    assert sent[0]["status"] == 400
    assert await _messages(hub) == [] and await hub.store.list_dead_letters() == []
    # the vendor's full retry is stored, not de-duplicated away
    sent = await _call(app, "/webhooks/fake", raw_headers, [
        {"type": "http.request", "body": body[:half], "more_body": True},
        {"type": "http.request", "body": body[half:], "more_body": False}])
    assert sent[0]["status"] == 200
    assert await _messages(hub) == ["cut"]


def test_short_body_over_a_real_socket_is_never_parsed(tmp_path: Any, store_url: str | None) -> None:
    """A real ``omnichannel serve`` (uvicorn) process; a raw socket sends half a body and
    closes. Nothing is stored; the full retry is."""
    import socket
    import subprocess
    import sys
    import time

    from omnichannel_sdk.testing import free_port

    store = store_url or f"sqlite:///{tmp_path / 'serve.db'}"
    port = free_port()
    config = tmp_path / "omnichannel.toml"
    config.write_text(f'[omnichannel]\nstore = "{store}"\npublic_url = "{PUBLIC_URL}"\n'
                      f'[channels.fake]\nadapter = "fake"\nsecret = "fake-webhook-secret"\n')
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE_WITH_FAKE, str(config), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("server did not start: "
                                         + (process.stderr.read().decode() if process.stderr else ""))
                time.sleep(0.1)
        body, headers = signed([{"id": "socket-cut", "from": "a", "text": "x" * 200}])
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (f"POST /webhooks/fake HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}"
                   f"content-length: {len(body)}\r\n\r\n").encode() + body[: len(body) // 2]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            time.sleep(0.5)
        full = httpx.post(f"http://127.0.0.1:{port}/webhooks/fake", content=body, headers=headers)
        assert full.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)  # reads and closes the stderr pipe
        if process.stderr is not None:
            process.stderr.close()

    async def check() -> list[str]:
        hub = Hub.from_config({"omnichannel": {"store": store, "public_url": PUBLIC_URL},
                               "channels": {}})
        async with hub:
            found = await _messages(hub)
            [conversation] = await hub.store.list_conversations()
            [message] = await hub.store.list_messages(conversation.id)
            assert message.text == "x" * 200  # the whole text: the cut copy never got in
            return found

    assert asyncio.run(check()) == ["socket-cut"]


_SERVE_WITH_FAKE = """
import sys
import uvicorn
from omnichannel_sdk import Hub, hookimpl
from omnichannel_sdk.testing import FakeAdapter

class P:
    @hookimpl
    def omni_register_adapters(self, register):
        register(FakeAdapter)

hub = Hub.from_config(sys.argv[1], plugins=[P()])
uvicorn.run(hub.asgi(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
