"""The durable feed: its cost on ingest, and how fast a consumer reads and acknowledges it.

    python bench/feed.py [--messages 2000] [--rounds 5]

Cost: signed Twilio SMS webhooks (the ``twilio-sms`` adapter) through the ASGI gateway in
process (64 in flight, SQLite), with the feed off and on (the store's log, appended in the
ingest transaction), in interleaved rounds on fresh databases; CPU seconds of this process per
message, until every event is published and logged. Throughput: one consumer reading the log
of those messages with ``hub.feed`` and acknowledging every event (``ack`` per event) or every
100th (one ``ack`` covers the earlier ones). Instruction counts of the same comparison, which a
loaded machine does not disturb: ``bench/ingest_callgrind.py --feed``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from ingest import config, twilio_form

from omnichannel_sdk import Hub


def hub_config(tmp: str, feed: bool) -> dict[str, Any]:
    conf = config(tmp)
    conf["omnichannel"]["feed"] = {"enabled": feed}
    return conf


async def ingest(hub: Hub, n: int, concurrency: int = 64, first: int = 0) -> None:
    app = hub.asgi(lifespan=False)
    bodies = [twilio_form(i) for i in range(first, first + n)]

    async def post(body: bytes, sig: str) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"gateway answered {message['status']}")

        scope = {"type": "http", "method": "POST", "path": "/webhooks/sms", "root_path": "",
                 "query_string": b"",
                 "headers": [(b"content-type", b"application/x-www-form-urlencoded"),
                             (b"x-twilio-signature", sig.encode())]}
        await app(scope, receive, send)

    async def worker(share: list[tuple[bytes, str]]) -> None:
        for body, sig in share:
            await post(body, sig)

    await asyncio.gather(*[worker(bodies[i::concurrency]) for i in range(concurrency)])
    assert hub.publisher.outgoing is not None
    await hub.publisher.outgoing.join()  # every event published (and, with the feed, logged)
    await hub._feed._flush()


async def cost_round(n: int, feed: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        async with Hub.from_config(hub_config(tmp, feed)) as hub:
            await ingest(hub, 50, first=10**6)  # warm-up: imports, caches, schema
            start = time.process_time()
            await ingest(hub, n)
            return (time.process_time() - start) / n


async def throughput(n: int, every: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        async with Hub.from_config(hub_config(tmp, True)) as hub:
            await ingest(hub, n)
            total = (await hub.store._read(lambda tx: tx.fetchone("SELECT count(*) FROM feed_events")))[0]
            start = time.perf_counter()
            count = 0
            async for event in hub.feed("bench"):
                count += 1
                assert event.seq is not None
                if count % every == 0 or count == total:
                    await hub.ack("bench", event.seq)
                if count == total:
                    break
            elapsed = time.perf_counter() - start
            assert (await hub._feed.log.consumers())["bench"] == total  # type: ignore[union-attr]
            return count / elapsed, count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"# python {platform.python_version()}, {os.cpu_count()} cores, {args.messages} messages per round")
    off: list[float] = []
    on: list[float] = []
    for _ in range(args.rounds):  # interleaved: the machine's drift hits both alike
        off.append(await cost_round(args.messages, False))
        on.append(await cost_round(args.messages, True))
    ratios = sorted(b / a for a, b in zip(off, on, strict=True))
    print(f"ingest CPU per message, feed off: median {statistics.median(off) * 1e6:.0f} us "
          f"(min {min(off) * 1e6:.0f}, max {max(off) * 1e6:.0f})")
    print(f"ingest CPU per message, feed on:  median {statistics.median(on) * 1e6:.0f} us "
          f"(min {min(on) * 1e6:.0f}, max {max(on) * 1e6:.0f})")
    print(f"feed on / off, fastest rounds: {min(on) / min(off):.3f}")
    print(f"feed on / off (per round): min {ratios[0]:.3f}, median {statistics.median(ratios):.3f}, "
          f"max {ratios[-1]:.3f}")
    for every in (1, 100):
        rate, count = await throughput(args.messages, every)
        print(f"feed read, ack every {every:>3}: {rate:,.0f} events/s ({count} events)")


if __name__ == "__main__":
    asyncio.run(main())
