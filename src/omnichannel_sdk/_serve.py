"""The ASGI app ``omnichannel serve`` runs (one hub per worker process)."""

from __future__ import annotations

import gc
import os
from typing import Any

from ._api import with_api
from ._hub import Hub

GEN0_THRESHOLD = 10_000
"""Net allocations between two collections of the youngest generation once the server has
started (CPython's default: 700); see :class:`FreezeAfterStartup`."""


class FreezeAfterStartup:
    """``app``, with everything alive once the server has started moved out of the cyclic
    garbage collector's reach (:func:`gc.freeze`).

    After start-up a worker holds ≈ 90,000 tracked objects (modules, plugin registries, pydantic
    schemas, the open hub) that live as long as the process. A full collection walks all of them
    with the event loop stopped: 28 to 115 ms on our 2-core machine, a pause every request in
    flight waits for. Frozen, they are never walked again; collections see only what requests
    allocate. Requests pass straight through (one extra call).

    It also makes the youngest generation collect after :data:`GEN0_THRESHOLD` net allocations
    instead of CPython's 700. A youngest-generation collection walks what is alive at that
    moment — with 64 requests in flight, their coroutines, requests and models — so its cost
    hardly depends on how many allocations came before it; at 700 one ran every ≈ 30 messages
    (≈ 0.6 ms each, 20 µs a message, ≈ 7 % of the process's CPU per message in process), at
    10,000 one every ≈ 450 messages. Garbage that only the cycle collector frees (reference
    cycles) waits longer: at most ``GEN0_THRESHOLD`` objects more.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def frozen_send(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()  # what start-up left as garbage is freed, not frozen
                gc.freeze()
                gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
            await send(message)

        await self.app(scope, receive, frozen_send)


_hub = Hub.from_config(os.environ.get("OMNICHANNEL_CONFIG", "omnichannel.toml"))
# the service API when the config has [api]
app = FreezeAfterStartup(with_api(_hub, _hub.asgi(lifespan=True)))
