"""The durable feed on the store (SQLite and PostgreSQL): resume, sharing, order, retention."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx

from omnichannel_sdk import ConfigurationError, Hub
from omnichannel_sdk._events import Event
from omnichannel_sdk.testing import PUBLIC_URL

from .conftest import signed

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("store_url")]


@pytest.fixture
def omni_config(omni_config: dict[str, Any]) -> dict[str, Any]:
    omni_config["omnichannel"]["feed"] = {"enabled": True, "lease": 1.0, "poll_interval": 0.05,
                                          "batch": 10}
    return omni_config


async def _post(hub: Hub, events: list[dict[str, Any]]) -> None:
    body, headers = signed(events)
    transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        response = await client.post("/webhooks/fake", content=body, headers=headers)
        assert response.status_code == 200


async def _take(feed: Any, count: int, timeout: float = 10) -> list[Event]:
    got: list[Event] = []

    async def run() -> None:
        async for event in feed:
            got.append(event)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def test_feed_is_off_unless_enabled(omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    omni_config["omnichannel"].pop("feed")
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        with pytest.raises(ConfigurationError, match="feed is off"):
            await anext(hub.feed("helpdesk"))


async def test_bad_consumer_names_are_refused(hub: Hub) -> None:
    for name in ("", "a.b", "x" * 65, "sp ace", "ünï"):
        with pytest.raises(ConfigurationError):
            await anext(hub.feed(name))


async def test_every_event_with_a_growing_seq_and_resume_after_the_last_ack(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        await _post(hub, [{"id": f"m{i}", "from": f"u{i % 3}", "text": f"hi {i}"} for i in range(6)])
        events = await _take(hub.feed("helpdesk"), 9)  # 3 conversations opened, 6 messages
        assert [e.seq for e in events] == list(range(1, 10))
        assert sorted(e.type for e in events) == ["conversation.opened"] * 3 + ["message.received"] * 6
        received = [e for e in events if e.type == "message.received"]
        assert [e.message.external_id for e in received] == [f"m{i}" for i in range(6)]  # type: ignore[union-attr]
        await hub.ack("helpdesk", events[4].seq)  # the first five are done
        # another name sees everything, independently
        assert len(await _take(hub.feed("analytics"), 9)) == 9
    # a restart (a new hub, a new process's worth of state): resumes after seq 5
    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        again = await _take(hub.feed("helpdesk"), 4)
        assert [e.seq for e in again] == [6, 7, 8, 9]
        await hub.ack("helpdesk", 9)
        sent = await _send_one(hub)
        more = await _take(hub.feed("helpdesk"), 1)
        assert more[0].type == "message.queued" and more[0].message.id == sent  # type: ignore[union-attr]
        assert (await hub._feed.log.consumers())["helpdesk"] == 9  # type: ignore[union-attr]


async def _send_one(hub: Hub) -> str:
    conversation = (await hub.store.list_conversations())[0]
    with respx.mock() as router:
        router.post("https://api.fake.test/messages").respond(200, json={"id": "v-1"})
        message = await hub.send(conversation.id, text="hello back", wait=True)
    return message.id


async def test_two_readers_of_one_name_share_and_keep_each_conversation_in_order(hub: Hub) -> None:
    await _post(hub, [{"id": f"m{i}", "from": f"u{i % 4}", "text": str(i)} for i in range(40)])
    # two owners (as two processes would be) read one name
    seen: dict[str, list[Event]] = {"a": [], "b": []}
    feed = hub._feed
    owners = {"a": "feed_a", "b": "feed_b"}

    async def reader(who: str) -> None:
        while True:
            records = await feed.log.claim("shared", owners[who], 5, 30)  # type: ignore[union-attr]
            if not records:
                return
            for record in records:
                seen[who].append(record)  # type: ignore[arg-type]
                await asyncio.sleep(0)
            await feed.log.ack("shared", owners[who], records[-1].seq)  # type: ignore[union-attr]

    await asyncio.gather(reader("a"), reader("b"))
    everything = sorted(r.seq for r in seen["a"] + seen["b"])  # type: ignore[attr-defined]
    assert everything == list(range(1, 45))  # each exactly once: 4 conversations + 40 messages
    assert seen["a"] and seen["b"]
    for who in "ab":  # within a reader, each conversation's events come in seq order
        per: dict[str, list[int]] = {}
        for record in seen[who]:
            per.setdefault(record.conversation_id, []).append(record.seq)  # type: ignore[attr-defined]
        assert all(v == sorted(v) for v in per.values())
    assert (await feed.log.consumers())["shared"] == 44  # type: ignore[union-attr]


async def test_a_conversation_waits_while_another_process_holds_its_earlier_event(hub: Hub) -> None:
    await _post(hub, [{"id": "a1", "from": "alice", "text": "1"}, {"id": "b1", "from": "bob", "text": "1"},
                      {"id": "a2", "from": "alice", "text": "2"}])
    log = hub._feed.log
    assert log is not None
    first = await log.claim("n", "p1", 2, 30)  # alice opened + alice's first message
    conversation = first[0].conversation_id
    assert all(r.conversation_id == conversation for r in first)
    second = await log.claim("n", "p2", 10, 30)  # bob's events only: alice waits for p1
    assert second and all(r.conversation_id != conversation for r in second)
    await log.ack("n", "p1", first[-1].seq)
    third = await log.claim("n", "p2", 10, 30)
    assert [r.conversation_id for r in third] == [conversation]


async def test_unacknowledged_events_come_back_after_the_lease(hub: Hub) -> None:
    await _post(hub, [{"id": "x1", "from": "zed", "text": "1"}])
    log = hub._feed.log
    assert log is not None
    taken = await log.claim("n", "crashed", 10, 0.2)
    assert len(taken) == 2
    assert await log.claim("n", "other", 10, 30) == []
    await asyncio.sleep(0.3)
    assert [r.seq for r in await log.claim("n", "other", 10, 30)] == [r.seq for r in taken]


async def test_a_reader_keeps_what_it_holds_for_longer_than_the_lease(hub: Hub) -> None:
    """A reader renews the leases of the events it holds (the batch not handed out yet, and
    those handed out and not acknowledged) every third of the lease, so a consumer slower than
    the lease, or one that acknowledges many at a time, is not doubled by another process; a
    reader that ends stops renewing."""
    # four conversations: no event waits for another's, each could be taken on its own
    await _post(hub, [{"id": f"m{i}", "from": f"u{i}", "text": str(i)} for i in range(4)])
    log = hub._feed.log
    assert log is not None
    feed = hub.feed("helpdesk")
    first = await anext(feed)  # the reader now holds all 8 events (the lease is 1 s)
    await asyncio.sleep(2.5)  # the consumer works on the first one for 2.5 leases
    assert await log.claim("helpdesk", "other", 10, 30) == []  # all still this reader's
    rest = [await anext(feed) for _ in range(7)]
    assert [e.seq for e in [first, *rest]] == list(range(1, 9))
    await asyncio.sleep(1.5)  # all handed out, none acknowledged yet (acks come in batches)
    assert await log.claim("helpdesk", "other", 10, 30) == []
    await hub.ack("helpdesk", 2)
    assert sorted(n for h in hub._feed._holdings for n in h.handed) == list(range(3, 9))
    await feed.aclose()  # the reader ends: what it handed out and did not ack comes back
    await asyncio.sleep(1.2)
    assert [r.seq for r in await log.claim("helpdesk", "other", 10, 30)] == list(range(3, 9))


async def test_a_reader_left_open_renews_nothing_once_its_hub_closed(
        omni_config: dict[str, Any], register_plugin: list[object]) -> None:
    def renewing() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "omnichannel-feed-leases"]

    async with Hub.from_config(omni_config, plugins=register_plugin) as hub:
        await _post(hub, [{"id": "o1", "from": "olga", "text": "1"}])
        feed = hub.feed("helpdesk")
        await anext(feed)  # (and never closed)
        assert len(renewing()) == 1
    await asyncio.sleep(0)
    assert renewing() == []
    assert feed  # (kept alive: its finalizer would end it otherwise)


async def test_renew_reports_only_what_another_process_took_over(hub: Hub) -> None:
    await _post(hub, [{"id": "a1", "from": "alice", "text": "1"}])
    log = hub._feed.log
    assert log is not None
    assert [r.seq for r in await log.claim("n", "p1", 10, 0.2)] == [1, 2]
    await log.ack("n", "p1", 1)
    await asyncio.sleep(0.3)
    assert [r.seq for r in await log.claim("n", "p2", 10, 30)] == [2]  # p1's lease ran out
    assert await log.renew("n", "p1", [1, 2], 30) == [2]  # 1 is done, 2 is p2's now
    assert await log.renew("n", "p2", [2], 30) == []
    assert await log.renew("n", "p2", [], 30) == []
    assert await log.renew("n", "p1", [*range(3, 1200), 2], 30) == [2]  # in chunks of 500


async def test_a_stalled_reader_leaves_what_another_process_took_over(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that stalled past its lease (renewal cannot help then) learns at its next
    renewal which events another process took meanwhile, and hands out neither them nor the
    later events of their conversations (those wait for the earlier one there)."""
    await _post(hub, [{"id": "a1", "from": "alice", "text": "1"}, {"id": "b1", "from": "bob", "text": "1"},
                      {"id": "a2", "from": "alice", "text": "2"}])
    log = hub._feed.log
    assert log is not None
    records = {r.seq: r for r in await log.read_after(0, 10)}
    gate, renew = asyncio.Event(), log.renew

    async def stalled(*args: Any) -> list[int]:
        await gate.wait()
        return await renew(*args)

    monkeypatch.setattr(log, "renew", stalled)
    feed = hub.feed("helpdesk")
    first = await anext(feed)  # alice's conversation opened; the reader holds the other four
    alice = records[first.seq].conversation_id
    await hub.ack("helpdesk", first.seq)
    # the stall: every lease of the reader runs out, another process takes alice's next event
    await hub.storage._write(lambda tx: tx.execute(
        "UPDATE feed_leases SET lease_us = 0 WHERE owner = $1", hub._feed.owner))
    taken = await log.claim("helpdesk", "other", 1, 30)
    assert [records[r.seq].conversation_id for r in taken] == [alice]
    gate.set()
    deadline = asyncio.get_running_loop().time() + 10
    while any(r.seq == taken[0].seq for h in hub._feed._holdings for r in h.waiting):
        assert asyncio.get_running_loop().time() < deadline  # the renewal finds it out
        await asyncio.sleep(0.02)
    got = [await anext(feed) for _ in range(2)]
    bob = sorted(s for s, r in records.items() if r.conversation_id != alice)
    assert [e.seq for e in got] == bob
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.5)
    assert not waiting.done()  # alice's later message waits for "other"
    await log.ack("helpdesk", "other", taken[0].seq)
    later = await asyncio.wait_for(waiting, 5)  # given back at once, now this reader's
    assert records[later.seq].conversation_id == alice and later.seq > taken[0].seq
    await feed.aclose()


async def test_retention_by_acks_and_by_age(hub: Hub) -> None:
    await _post(hub, [{"id": f"r{i}", "from": "ret", "text": str(i)} for i in range(3)])
    log = hub._feed.log
    assert log is not None
    assert await log.trim(3600) == 0  # no consumer yet: kept until they age out
    records = await log.claim("one", "p", 10, 30)
    await log.ack("one", "p", records[1].seq)
    await log.claim("two", "p", 10, 30)
    assert await log.trim(3600) == 0  # "two" acknowledged nothing
    await log.ack("two", "p", records[-1].seq)
    assert await log.trim(3600) == 2  # both passed seq 2
    assert await log.trim(0.000001) == 2  # the rest aged out
    assert await log.read_after(0, 10) == []
    await _post(hub, [{"id": "r9", "from": "ret", "text": "9"}])
    assert [r.seq for r in await log.read_after(0, 10)] == [5]  # numbering goes on


async def test_events_published_after_their_commit_are_in_the_feed_too(hub: Hub) -> None:
    await _post(hub, [{"id": "u1", "from": "upd", "text": "1"}])
    message = (await hub.store.list_messages((await hub.store.list_conversations())[0].id))[0]
    await hub.modify_message(message.id, lambda m: m.model_copy(update={"metadata": {"tag": "x"}}))
    events = await _take(hub.feed("n"), 3)
    assert [e.type for e in events] == ["conversation.opened", "message.received", "message.updated"]
    await asyncio.sleep(0.1)
    assert len(await hub._feed.log.read_after(0, 100)) == 3  # type: ignore[union-attr] # none twice


def test_logged_json_is_the_event_json() -> None:
    from datetime import UTC, datetime

    from omnichannel_sdk import Address, Conversation
    from omnichannel_sdk._events import ConversationOpened, event_adapter
    from omnichannel_sdk._store._feed import _json

    event = ConversationOpened(conversation=Conversation(
        id="conv_1", channel="sms", channel_key="sms", contact_id="ct_1", thread_key="t",
        participants=[Address(channel="sms", handle="+14155550100")], created_at=datetime.now(UTC)))
    assert _json(event) == event_adapter.dump_json(event).decode()
    assert event_adapter.validate_json(_json(event)) == event


def test_a_received_message_is_logged_with_the_json_it_was_stored_with() -> None:
    from datetime import UTC, datetime

    from omnichannel_sdk import Address, Conversation, Message, TextPart
    from omnichannel_sdk._events import MessageReceived, event_adapter
    from omnichannel_sdk._store._feed import _json, _received_json
    from omnichannel_sdk._store._tx import dump

    now = datetime.now(UTC)
    sender = Address(channel="sms", handle="+14155550100", display_name="Ann \"A\" \u00e9")
    message = Message(id="msg_1", channel="sms", channel_key="sms", adapter="t", external_id="SM1",
                      direction="inbound", conversation_id="conv_1", sender=sender,
                      parts=[TextPart(text="hi \u2603 </script>")], created_at=now, received_at=now,
                      status="received", metadata={"twilio": {"a": [1, None]}})
    conversation = Conversation(id="conv_1", channel="sms", channel_key="sms", contact_id="ct_1",
                                thread_key="t", participants=[sender], created_at=now,
                                last_inbound_at=now, window_expires_at=now)
    event = MessageReceived(message=message, conversation=conversation)
    spliced = _received_json(event, dump(message))
    assert spliced == _json(event) == event_adapter.dump_json(event).decode()
    assert event_adapter.validate_json(spliced) == event
