"""The ASGI app ``omnichannel serve`` runs (one hub per worker process)."""

from __future__ import annotations

import os

from ._hub import Hub

app = Hub.from_config(os.environ.get("OMNICHANNEL_CONFIG", "omnichannel.toml")).asgi(lifespan=True)
