"""Instructions per outbound send spent in the store alone (callgrind): the store calls that
``hub.send`` and the outbox make for one send on SQLite, without the adapter, HTTP or the hub.

    python -P bench/sendstore_callgrind.py [--sends 1000] [--rounds 1] [--profile]

Per send, as ``bench/outbound_callgrind.py``'s hub makes them with 100 sends in flight (most
of which wait for a channel slot, so their vendor call is recorded on its own):
``conversation_for_send``, ``create_outbound``, ``begin_attempt`` and ``record_sent`` (the
vendor's id, the message ``sent``). The messages, jobs and sent messages are built before the
store work starts; a run that only builds them is counted alone and subtracted. Under
``valgrind --tool=callgrind`` each run goes with ``--sends`` and twice as many: the
difference divided by ``--sends`` is the store's cost of one send (it is part of
``bench/outbound_callgrind.py``'s hub count). ``--profile``: cProfile of 5,000 sends instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

IN_FLIGHT = 100
CONVERSATIONS = 50


def build(n: int, conversations: list[Any]) -> list[tuple[Any, Any, Any]]:
    """``n`` sends as the hub builds them: message, job, and the message as sent."""
    from omnichannel_sdk import Address, Message, TextPart
    from omnichannel_sdk._ids import new_id
    from omnichannel_sdk._store import Job
    from omnichannel_sdk._store._copies import copied

    sends = []
    for i in range(n):
        conversation = conversations[i % len(conversations)]
        now = datetime.now(UTC)
        parts = [TextPart(text=f"Reply {i}")]
        message = Message(
            id=new_id("msg"), channel="sms", channel_key="sms", adapter="twilio-sms",
            direction="outbound", conversation_id=conversation.id,
            sender=Address(channel="sms", handle="+15005550006"),
            recipients=conversation.participants[:1], parts=parts, created_at=now,
            received_at=now, status="queued", metadata={"segments": 1, "encoding": "GSM-7"})
        job = Job(id=new_id("job"), kind="send", channel_key="sms", message_id=message.id,
                  payload={"parts": [p.model_dump(mode="json") for p in parts],
                           "contact_id": conversation.contact_id})
        sid = f"SM{i:032d}"
        sent = copied(message, {"external_id": sid, "status": "sent", "metadata": {
            **message.metadata, "delivery": {"attempts": 1}}})
        sends.append((message, job, sent))
    return sends


def run(n: int, store_it: bool, steps: int = 4) -> None:
    """Build ``n`` sends; with ``store_it``, make their store calls on a fresh SQLite store."""
    from omnichannel_sdk import Address
    from omnichannel_sdk._store._sqlite import SQLiteStore

    async def main(tmp: str) -> None:
        store = SQLiteStore(f"{tmp}/store.db")
        await store.open()
        await store.hold_identity("bench")
        conversations = []
        for k in range(CONVERSATIONS):
            customer = Address(channel="sms", handle=f"+1415556{k:04d}")
            own = Address(channel="sms", handle="+15005550006")
            conversation, _ = await store.open_conversation(
                "sms", "sms", customer.handle, [customer], [customer, own])
            conversations.append(conversation)
        sends = build(n, conversations)
        if store_it:
            async def one(message: Any, job: Any, sent: Any) -> None:
                await store.conversation_for_send(message.conversation_id)
                if steps > 1:
                    await store.create_outbound(message, job, lease=60.0)
                if steps > 2:
                    await store.begin_attempt(job.id)
                if steps > 3:
                    await store.record_sent(sent, [sent.external_id], job.id)

            async def worker(share: list[tuple[Any, Any, Any]]) -> None:
                for send in share:
                    await one(*send)

            await asyncio.gather(*[worker(sends[i::IN_FLIGHT]) for i in range(IN_FLIGHT)])
            left = store.conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            sent = store.conn.execute(
                "SELECT count(*) FROM messages WHERE status = 'sent'").fetchone()[0]
            if steps > 3 and (left or sent != n):
                raise RuntimeError(f"{left} jobs left, {sent} of {n} sent")
        await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))


def hub_send(n: int) -> None:
    """``n`` calls of ``hub.send`` (the bench's hub, its outbox kept from sending)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import ingest

    from omnichannel_sdk import Hub

    async def main(tmp: str) -> None:
        hub = Hub.from_config(ingest.config(tmp, api_base="http://127.0.0.1:9"))
        async with hub:
            hub.delivery.submit = lambda job, message=None: None  # type: ignore[method-assign]
            conversations = [await hub.start_conversation("sms", f"+1415556{i:04d}")
                             for i in range(CONVERSATIONS)]

            async def agent(k: int) -> None:
                for i in range(k, n, CONVERSATIONS):
                    await hub.send(conversations[k].id, text=f"Reply {i}")

            await asyncio.gather(*[agent(k) for k in range(CONVERSATIONS)])
            if await hub.store.pending_jobs() != n:
                raise RuntimeError("not every send was queued")

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(tmp))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--hub-send", action="store_true")
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        if args.hub_send:
            hub_send(args.run)
        else:
            run(args.run, not args.build_only, args.steps)
        return
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(5000, True)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats("_store", 40)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).parent))
    from ingest_callgrind import callgrind  # the inbound counter's runner

    n = args.sends
    if args.hub_send:
        for r in range(args.rounds):
            counts = [callgrind([__file__, "--run", str(c), "--hub-send"]) for c in (n, 2 * n)]
            print(f"round {r + 1}: hub.send {(counts[1] - counts[0]) / n / 1e6:.3f} M "
                  "instructions per send", flush=True)
        return
    for r in range(args.rounds):
        counts = {}
        for build_only in (True, False):
            flag = ["--build-only"] if build_only else []
            counts[build_only] = [callgrind([__file__, "--run", str(c), *flag])
                                  for c in (n, 2 * n)]
        built = (counts[True][1] - counts[True][0]) / n
        store = (counts[False][1] - counts[False][0]) / n - built
        print(f"round {r + 1}: store {store / 1e6:.3f} M instructions per send "
              f"(building the sends, {built / 1e6:.3f} M, subtracted)", flush=True)


if __name__ == "__main__":
    main()
