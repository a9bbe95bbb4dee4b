"""Hook implementations of omnichannel-webchat: the adapter and its part in the demo."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson

from omnichannel_sdk import ChannelAdapter, Demo, WebhookRequest, hookimpl

from ._adapter import SESSION_HEADER, WebchatAdapter
from ._session import Session, new_visitor_id, sign_session

DEMO_WEBCHAT_SECRET = "demo-webchat-secret-0123456789"  # a demo credential, published on purpose
"""The ``secret`` of the demo's web chat channel."""

_DEMO_VISITORS = (
    ("Ana Souza", "ana.souza@example.com", "Hi! My order #1234 has not arrived yet."),
    ("李雷", "lilei@example.cn", "你好，我想修改收货地址。"),  # noqa: RUF001
)


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register the ``webchat`` adapter."""
    register(WebchatAdapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """The demo's web chat channel (key ``webchat``), open to the demo's own origin."""
    return {"webchat": {"adapter": "webchat", "secret": DEMO_WEBCHAT_SECRET,
                        "allowed_origins": [public_url.rstrip("/")], "title": "omnichannel demo"}}


def demo_requests(channel_key: str, public_url: str, secret: str = DEMO_WEBCHAT_SECRET,
                  ) -> list[WebhookRequest]:
    """Signed webhook-form requests of two simulated visitors (with pre-chat emails)."""
    import time

    out = []
    for name, email, text in _DEMO_VISITORS:
        session = Session(visitor=new_visitor_id(), channel_key=channel_key,
                          expires=int(time.time()) + 3600, issued=int(time.time()),
                          name=name, email=email)
        body = orjson.dumps({"messages": [{"id": secrets.token_hex(8), "text": text}]})
        out.append(WebhookRequest(
            "POST", f"{public_url.rstrip('/')}/webhooks/{channel_key}",
            {"content-type": "application/json", SESSION_HEADER: sign_session(session, secret)}, body))
    return out


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """Two visitors writing through the webhook form of the HTTP fallback."""
    if adapter_name != WebchatAdapter.name:
        return None
    return list(demo_requests(channel_key, public_url))


def _demo_vendor(adapter_name: str, hub: Any) -> Any:
    """Web chat has no vendor to play: the widget is the other end."""
    return None


__all__ = ["DEMO", "DEMO_WEBCHAT_SECRET", "demo_requests", "omni_register_demos"]


DEMO = Demo(adapters=frozenset({"webchat"}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
