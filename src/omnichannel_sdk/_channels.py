"""The channel registry: each configured channel key and the adapter that speaks it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import httpx

from ._adapter import AdapterContext, ChannelAdapter
from ._config import ChannelConfig
from ._errors import ConfigurationError, NotFoundError
from ._logging import secret_values

__all__ = ["ChannelRegistry"]


class ChannelRegistry:
    """Channel key → configuration and adapter, and the URL vendors sign for each key.

    ``context_for`` builds the :class:`~omnichannel_sdk.AdapterContext` of one key (the hub
    gives its store, blobs and typed services there); adapters are built once, in order.
    """

    def __init__(
        self, configs: Mapping[str, ChannelConfig], public_url: str,
        context_for: Callable[[str], AdapterContext],
    ) -> None:
        self.configs = dict(configs)
        self.public_url = public_url
        for key, config in self.configs.items():
            joined = config.settings.thread_with
            if joined is not None and (joined not in self.configs or joined == key):
                raise ConfigurationError(f"{joined!r} is not another configured channel",
                                         channel_key=key, field="thread_with")
        self.adapters: dict[str, ChannelAdapter] = {}
        for key, config in self.configs.items():
            self.adapters[key] = config.adapter(config.settings, context_for(key))

    def adapter(self, channel_key: str) -> ChannelAdapter:
        """The adapter configured under ``channel_key`` (:class:`NotFoundError` if none)."""
        try:
            return self.adapters[channel_key]
        except KeyError:
            raise NotFoundError(f"no channel {channel_key!r}") from None

    def request_url(self, channel_key: str, query_string: str = "") -> str:
        """The URL a vendor signs for ``channel_key``: ``public_url/webhooks/{key}[?query]``."""
        url = f"{self.public_url}/webhooks/{channel_key}"
        return f"{url}?{query_string}" if query_string else url

    def thread_channel(self, adapter: ChannelAdapter) -> tuple[str, str] | None:
        """``(channel, key)`` of the channel ``adapter`` threads its conversations with
        (its ``thread_with`` setting), or ``None``."""
        joined = adapter.settings.thread_with
        if joined is not None and joined in self.adapters:
            return self.adapters[joined].channel, joined
        return None

    def secrets(self) -> set[str]:
        """Every secret value of every channel's settings (kept out of the logs)."""
        return set().union(*(secret_values(c.settings) for c in self.configs.values()))

    def attach_http(self, http: httpx.AsyncClient) -> None:
        """Give every adapter the hub's HTTP client."""
        for adapter in self.adapters.values():
            adapter.context.http = http

    async def start(self) -> None:
        """Start every adapter, in order."""
        for adapter in self.adapters.values():
            await adapter.start()

    async def stop(self) -> None:
        """Stop every adapter; one failing to stop does not keep the others running."""
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.stop()
