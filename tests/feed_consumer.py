"""A feed consumer process for the tests: acknowledges every event of ``name`` and writes one
line per acknowledged event (``seq type key pid``) to a file; SIGTERM stops it between events."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from omnichannel_sdk import Hub


async def main(config: str, name: str, out: Path) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    hub = Hub.from_config(config)
    async with hub:
        with out.open("a") as file:
            async def run() -> None:
                async for event in hub.feed(name):
                    if stop.is_set():
                        break
                    message = getattr(event, "message", None)
                    key = message.external_id if message is not None else getattr(event, "conversation").id
                    await hub.ack(name, event.seq)  # type: ignore[arg-type]
                    file.write(f"{event.seq} {event.type} {key} {os.getpid()}\n")
                    file.flush()

            task = asyncio.create_task(run())
            print("ready", flush=True)
            await stop.wait()
            try:
                await asyncio.wait_for(task, 3)
            except TimeoutError:
                pass  # idle, waiting for events: nothing in hand


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
