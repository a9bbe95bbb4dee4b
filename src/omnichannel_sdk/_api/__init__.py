"""The service API that ``omnichannel serve`` adds when the config has ``[api]`` (SPEC §11)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._hub import Hub

__all__ = ["with_api"]


def with_api(hub: Hub, gateway: Any) -> Any:
    """``gateway`` with the API under ``/api/`` when the hub's config has ``[api]``.

    The webhook gateway stays first in line: a request goes to the API only when its path starts
    with ``/api/`` (one string test on the vendors' path).
    """
    settings = hub.settings.api
    if settings is None:
        return gateway
    from ._app import ServiceApi

    api = ServiceApi(hub, settings).app

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/api/"):
            await api(scope, receive, send)
        else:
            await gateway(scope, receive, send)

    return app
