"""Hook implementations of omnichannel-email (entry point ``omnichannel``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnichannel_sdk import ChannelAdapter, Demo, WebhookRequest, hookimpl

from ._demo import demo_channels, demo_requests, demo_vendor
from ._mailgun import MailgunAdapter
from ._postmark import PostmarkAdapter
from ._sendgrid import SendGridAdapter
from ._smtp import EmailSmtpAdapter

ADAPTERS: tuple[type[ChannelAdapter], ...] = (
    EmailSmtpAdapter, MailgunAdapter, SendGridAdapter, PostmarkAdapter)


@hookimpl
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register ``email-smtp``, ``mailgun``, ``sendgrid`` and ``postmark``."""
    for adapter in ADAPTERS:
        register(adapter)


def _demo_channels(public_url: str) -> dict[str, dict[str, Any]]:
    """Mailgun, SendGrid and Postmark demo channels against the loopback vendor stub."""
    return demo_channels(public_url)


def _demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[WebhookRequest] | None:
    """A signed sample email for the demo channels of our adapters."""
    return demo_requests(channel_key, adapter_name, public_url) or None


def _demo_vendor(adapter_name: str, hub: Any) -> Any:
    """The loopback Mailgun / SendGrid / Postmark send API of the demo."""
    return demo_vendor(adapter_name, hub)


DEMO = Demo(adapters=frozenset({a.name for a in ADAPTERS}), channels=_demo_channels, simulate=_demo_simulate,
            vendor=_demo_vendor)
"""What this plugin adds to ``omnichannel demo``."""


@hookimpl
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register :data:`DEMO`."""
    register(DEMO)
