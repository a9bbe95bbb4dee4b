"""The hub: the composition root over channels, publisher, inbound, outbound, delivery, replay.

It builds those parts and opens and closes them in order; its public operations (inherited from
:class:`~._operations.HubOperations`) delegate to them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pluggy

from ._adapter import AdapterContext, ChannelAdapter
from ._blobs import BlobStore, blobs_from_url, data_locations
from ._bus import EventBus, bus_from_url
from ._channels import ChannelRegistry
from ._config import ChannelConfig, HubSettings, load_config
from ._delivery import Delivery
from ._feed import Feed
from ._http import make_http_client
from ._inbound import Inbound
from ._jobs import defer_job
from ._logging import forget_secrets, install_redaction, remember_secrets
from ._metrics import HubMetrics
from ._mutations import Mutations
from ._operations import HubOperations
from ._outbound import Outbound
from ._plugins import AdapterRegistry, build_plugin_manager
from ._publisher import Publisher
from ._replay import Replayer, ReplayReport
from ._services import HubServices, HubStore
from ._store import SqlStore, store_from_url

__all__ = ["Hub", "ReplayReport"]

log = logging.getLogger("omnichannel_sdk.hub")


class Hub(HubOperations):
    """Speaks every configured channel: receives webhooks, stores, publishes, sends.

    Build it with :meth:`from_config`, then ``async with hub:`` to open the store, the HTTP pool,
    the event bus and the delivery worker.
    """

    def __init__(
        self, settings: HubSettings | None = None, channels: Mapping[str, ChannelConfig] | None = None,
        *, plugin_manager: pluggy.PluginManager | None = None, registry: AdapterRegistry | None = None,
        store: SqlStore | None = None, bus: EventBus | None = None, blobs: BlobStore | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings = settings or HubSettings()
        if plugin_manager is None or registry is None:
            plugin_manager, registry = build_plugin_manager()
        self.pm, self.registry = plugin_manager, registry
        self.storage: SqlStore = store or store_from_url(settings.store)
        """The whole store, as the SDK's own parts use it (persistence methods that may change
        between releases; applications read through :attr:`store`)."""
        self.bus: EventBus = bus or bus_from_url(settings.bus)
        self.blobs: BlobStore = blobs or blobs_from_url(settings.blob_url())
        self.metrics = HubMetrics()
        """Prometheus metrics of this hub (its own registry; served at ``/metrics``)."""
        self._own_http = http is None
        self.http: httpx.AsyncClient = http  # type: ignore[assignment]  # set in open()
        self.public_url = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
        self.publisher = Publisher(self.pm, self.bus, self)
        """Events to the bus and the observer hooks; tracked background work."""
        self.channel_registry = ChannelRegistry(channels or {}, self.public_url, self._context_for)
        """Channel key → configuration and adapter."""
        self.channels, self.adapters = self.channel_registry.configs, self.channel_registry.adapters
        self.publisher.adapters = self.adapters  # observers that declared the adapters they watch
        self.mutations = Mutations(self.storage, self.publisher)
        self.delivery = Delivery(
            settings.delivery, store=self.storage, channels=self.channel_registry,
            publisher=self.publisher, mutations=self.mutations, metrics=self.metrics,
            blobs=self.blobs, http=lambda: self.http, http_loopback=settings.media_allow_http_loopback)
        parts = (self.storage, self.channel_registry, self.pm)
        self.outbound = Outbound(*parts, self.publisher, self.delivery)
        self.inbound = Inbound(*parts, self.publisher, self.delivery, self.metrics, self)
        self.replayer = Replayer(*parts, self.inbound, self.delivery)
        self._feed = Feed(self)
        self.publisher.observers.append(self._feed.observe)
        self.publisher.recorded = self._feed.engine is not None  # the feed records every event
        self._secrets: set[str] = set()
        self._open = self._starting = False

    @property
    def store(self) -> HubStore:
        """The documented store reads (SPEC §6: ``get_message``, ``list_messages``,
        ``list_conversations``, ``get_conversation``, ``get_contact``, ``list_dead_letters``,
        ``schema_version``…); changes go through the hub's own methods."""
        return self.storage

    def _context_for(self, key: str) -> AdapterContext:
        services = HubServices(self, key, running=lambda: self._open or self._starting,
                               defer=self._defer)
        return AdapterContext(key=key, public_url=self.public_url, http=self.http, kv=self.storage,
                              blobs=self.blobs, services=services, extras={"hub": self})

    async def _defer(self, key: str, task: str, data: Mapping[str, Any], delay: float) -> str:
        return await defer_job(self.storage, self.delivery.poke, key, task, data, delay=delay)

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], *, plugins: Sequence[object] = (),
        entry_points: bool = True, **kwargs: Any,
    ) -> Hub:
        """A hub from a TOML file or a dict of the same shape.

        ``plugins`` are registered beside the installed ones (found by the ``omnichannel``
        entry point). ``kwargs`` go to :class:`Hub` (``store=``, ``http=``…). Raises one
        :class:`~omnichannel_sdk.ConfigurationError` that names the channel key and field.
        """
        pm, registry = build_plugin_manager(plugins, entry_points=entry_points)
        settings, channels = load_config(source, registry)
        return cls(settings, channels, plugin_manager=pm, registry=registry, **kwargs)

    async def __aenter__(self) -> Hub:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open store, HTTP pool, bus, adapters and workers (``async with hub`` calls this)."""
        if self._open:
            return
        install_redaction()  # vendor URLs carry tokens: no log line the hub causes shows one
        self._secrets = self.channel_registry.secrets()
        remember_secrets(self._secrets)
        await self.storage.open()
        log.info("store: %s; media: %s", *data_locations(self.settings.store, self.blobs))
        if self.http is None:
            self.http = make_http_client(self.settings.http_transport, timeout=self.settings.http_timeout,
                                         per_host=self.settings.http_max_per_host)
        self.channel_registry.attach_http(self.http)
        await self.bus.open()
        await self._feed.start()
        self.publisher.start()
        self._starting = True  # adapters' services are running from their start() on
        try:
            await self.channel_registry.start()
            await self.delivery.start()
        finally:
            self._starting = False
        self._open = True
        await self.publisher.call_observers(self.pm.hook.omni_hub_started, hub=self)

    async def close(self) -> None:
        """Stop workers, let in-flight sends finish, close everything the hub opened."""
        if not self._open:
            return
        self._open = False
        await self.publisher.call_observers(self.pm.hook.omni_hub_stopping, hub=self)
        await self.delivery.stop()
        await self.channel_registry.stop()
        await self.publisher.stop()
        await self._feed.stop()
        await self.bus.close()
        if self._own_http and self.http is not None:
            await self.http.aclose()
            self.http = None  # type: ignore[assignment]
        await self.storage.close()
        forget_secrets(self._secrets)

    @property
    def is_open(self) -> bool:
        """Whether the hub is open."""
        return self._open

    def asgi(self, *, lifespan: bool = True) -> Any:
        """The webhook gateway as an ASGI app (mount anywhere). With ``lifespan`` the app opens
        and closes the hub on ASGI lifespan events when it is not already open (for
        ``uvicorn`` and ``omnichannel serve``)."""
        from ._gateway import Gateway

        return Gateway(self, lifespan=lifespan)

    def adapter(self, channel_key: str) -> ChannelAdapter:
        """The adapter configured under ``channel_key``."""
        return self.channel_registry.adapter(channel_key)

    def request_url(self, channel_key: str, query_string: str = "") -> str:
        """The URL a vendor signs for ``channel_key``: ``public_url/webhooks/{key}[?query]``."""
        return self.channel_registry.request_url(channel_key, query_string)
