"""``omnichannel demo``: a gateway on embedded defaults, simulated vendors, an agent inbox.

Everything runs in one process: the hub (SQLite file in ``.omnichannel/``, in-memory bus), a
loopback vendor stub that accepts sends and reports delivery, a page with the web chat widget
(``/demo/chat``, when a channel adapter offers an ``embed_snippet()``) and a live agent inbox
(``/demo/``) that lists conversations of every channel, shows each thread with delivery
statuses, replies through ``hub.send`` and follows ``hub.events()`` over a WebSocket. Plugins add
their channels to the demo by registering a :class:`~omnichannel_sdk.Demo` (``omni_register_demos``).

The pages are static files of this package (``static/``); the endpoints are module-level
functions that find the hub in ``app.state.demo``.

Typing and "seen" go both ways as ``channel.signal`` events, with no adapter method involved:
the inbox shows the ``ChannelSignal`` events ``hub.events()`` yields (``typing`` with
``data["on"]``, ``typing_stopped``, ``seen``) whose ``data["from"]`` is not ``"agent"``, and
publishes the agent's own with ``hub.signal(channel_key, conversation_id, "typing" | "seen",
{"from": "agent", "on": …, "name": …})``; each channel passes them on to its customers if it can
(the web chat widget does, in every process). The one adapter method the demo looks up, duck-typed
(no plugin is imported by name), is ``embed_snippet(base) -> str``: the ``<script>`` tag of a
web chat widget for the visitor page.
"""

from __future__ import annotations

from ._app import build_demo
from ._setup import DEMO_SECRET, demo_config, simulate_requests

__all__ = ["DEMO_SECRET", "build_demo", "demo_config", "simulate_requests"]
