"""The ASGI app ``omnichannel serve`` runs (one hub per worker process)."""

from __future__ import annotations

import os

from ._api import with_api
from ._hub import Hub

_hub = Hub.from_config(os.environ.get("OMNICHANNEL_CONFIG", "omnichannel.toml"))
app = with_api(_hub, _hub.asgi(lifespan=True))  # the service API when the config has [api]
