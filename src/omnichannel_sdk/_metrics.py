"""Prometheus metrics of one hub (``GET /metrics`` on the gateway).

Each hub has its own :class:`~prometheus_client.CollectorRegistry` (never the process-wide
default), so several hubs in one process, and tests, do not mix their counts. The hub and the
gateway call one-line ``record_*`` methods at the points they describe; what can only be read
from the store (the outbox) is read when Prometheus scrapes.

Series (all prefixed ``omnichannel_``):

- ``webhooks_total{channel_key, outcome}`` — webhook requests by how they were answered:
  ``accepted``, ``handshake``, ``refused`` (signature, 403), ``unknown_channel`` (404, the key
  is not recorded: it is whatever a caller typed), ``too_large`` (413), ``method_not_allowed``,
  ``retry_later`` and ``error`` (503).
- ``duplicates_total{channel_key}`` — vendor retries of an event already stored.
- ``dead_letters_total{channel_key, direction}`` — payloads (``inbound``) and sends
  (``outbound``) kept in the dead-letter store.
- ``outbox_jobs{channel_key, kind}`` and ``outbox_oldest_age_seconds{channel_key, kind}`` —
  jobs waiting or running in the durable outbox, and how long the oldest has been there.
- ``send_duration_seconds{channel_key}`` — how long the vendor call of a send took.
- ``sends_total{channel_key, outcome}`` — vendor calls: ``accepted``, ``retry``, ``failed``.
- ``vendor_errors_total{channel_key, code, vendor_code}`` — send errors by our error code
  (``rate_limited``, ``auth``, ``transport``, ``rejected``…) and the vendor's own code.
- ``uncertain_sends_total{channel_key, outcome}`` — sends found with a vendor call started
  whose outcome was never recorded (its process died, or the call timed out), by what the
  recovery did: ``reconciled`` (the vendor was asked and had it: recorded ``sent``, not sent
  again) or ``resent`` (sent again: a possible duplicate at the vendor, also marked in the
  message's ``metadata["possible_duplicates"]``).
- ``leases_taken_over_total`` — jobs a restarted process took back at once from its previous
  incarnation (same process identity) instead of waiting out their lease.
- ``feed_lag_events{consumer}`` / ``feed_lag_seconds{consumer}`` — only once a feed reports
  through :meth:`HubMetrics.track_feed` (see there).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ._ids import id_time

if TYPE_CHECKING:
    from ._store import SqlStore

__all__ = ["CONTENT_TYPE_LATEST", "FeedLag", "HubMetrics"]

FeedLag = tuple[int, float | None]
"""What a feed reports per consumer: events not yet acknowledged, and the age in seconds of the
oldest of them (``None`` when there is none)."""

_SEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HubMetrics:
    """The metrics of one hub, in a registry of its own (``hub.metrics.registry``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # labelled children by (metric, label values), looked up once: ``labels()`` takes a
        # lock and checks its values on every call (only metrics never cleared go through it)
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self.webhooks = Counter("omnichannel_webhooks", "Webhook requests by channel and outcome.",
                                ["channel_key", "outcome"], registry=registry)
        self.duplicates = Counter("omnichannel_duplicates", "Vendor retries of events already stored.",
                                  ["channel_key"], registry=registry)
        self.dead_letters = Counter("omnichannel_dead_letters", "Payloads and sends dead-lettered.",
                                    ["channel_key", "direction"], registry=registry)
        self.outbox_jobs = Gauge("omnichannel_outbox_jobs", "Jobs waiting or running in the outbox.",
                                 ["channel_key", "kind"], registry=registry)
        self.outbox_age = Gauge("omnichannel_outbox_oldest_age_seconds",
                                "Age of the oldest job in the outbox.", ["channel_key", "kind"],
                                registry=registry)
        self.send_duration = Histogram("omnichannel_send_duration_seconds",
                                       "Duration of the vendor call of a send.", ["channel_key"],
                                       buckets=_SEND_BUCKETS, registry=registry)
        self.sends = Counter("omnichannel_sends", "Vendor calls of sends by outcome.",
                             ["channel_key", "outcome"], registry=registry)
        self.vendor_errors = Counter("omnichannel_vendor_errors", "Send errors by code.",
                                     ["channel_key", "code", "vendor_code"], registry=registry)
        self.uncertain_sends = Counter(
            "omnichannel_uncertain_sends", "Sends recovered after a vendor call of unknown outcome.",
            ["channel_key", "outcome"], registry=registry)
        self.leases_taken_over = Counter(
            "omnichannel_leases_taken_over",
            "Jobs taken back at once from this process identity's previous incarnation.",
            registry=registry)
        self._feed: Callable[[], Awaitable[dict[str, FeedLag]]] | None = None
        self._feed_events: Gauge | None = None
        self._feed_seconds: Gauge | None = None

    # -- one-line calls at the instrumentation points ------------------------------------------

    def _labelled(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, the child made once (for metrics that are never cleared)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def record_webhook(self, channel_key: str | None, outcome: str) -> None:
        """A webhook request was answered (``channel_key`` ``None``: not a configured one)."""
        self._labelled(self.webhooks, channel_key or "", outcome).inc()

    def record_duplicates(self, channel_key: str, count: int) -> None:
        """``count`` stored events arrived again."""
        if count:
            self.duplicates.labels(channel_key).inc(count)

    def record_dead_letter(self, channel_key: str, direction: str) -> None:
        """Something was kept in the dead-letter store (``inbound`` or ``outbound``)."""
        self.dead_letters.labels(channel_key, direction).inc()

    def record_send(self, channel_key: str, seconds: float, outcome: str, *,
                    code: str | None = None, vendor_code: str | int | None = None) -> None:
        """A vendor call of a send took ``seconds``: ``accepted``, ``retry`` or ``failed``."""
        self._labelled(self.send_duration, channel_key).observe(seconds)
        self._labelled(self.sends, channel_key, outcome).inc()
        if code is not None:
            self.vendor_errors.labels(channel_key, code,
                                      "" if vendor_code is None else str(vendor_code)).inc()

    def record_uncertain_send(self, channel_key: str, outcome: str) -> None:
        """A send whose earlier vendor call may have arrived was ``reconciled`` or ``resent``."""
        self.uncertain_sends.labels(channel_key, outcome).inc()

    def record_leases_taken_over(self, count: int) -> None:
        """``count`` jobs were taken back from this identity's previous incarnation."""
        if count:
            self.leases_taken_over.inc(count)

    def track_feed(self, lag: Callable[[], Awaitable[dict[str, FeedLag]]]) -> None:
        """Report the integration feed's lag at every scrape (for the feed, once it exists).

        ``lag`` is awaited at each scrape and returns, per consumer name, the events not yet
        acknowledged and the age of the oldest one. The ``feed_lag_*`` gauges exist only once
        this was called: a hub without a feed shows no made-up lag.
        """
        self._feed = lag
        if self._feed_events is None:
            self._feed_events = Gauge("omnichannel_feed_lag_events",
                                      "Feed events a consumer has not acknowledged.", ["consumer"],
                                      registry=self.registry)
            self._feed_seconds = Gauge("omnichannel_feed_lag_seconds",
                                       "Age of the oldest event a consumer has not acknowledged.",
                                       ["consumer"], registry=self.registry)

    # -- scraping ------------------------------------------------------------------------------

    async def refresh(self, store: SqlStore) -> None:
        """Read what lives in the store (outbox depth and age, feed lag) into the gauges."""
        now = time.time()
        self.outbox_jobs.clear()
        self.outbox_age.clear()
        for channel_key, kind, count, oldest in await store.outbox_stats():
            self.outbox_jobs.labels(channel_key, kind).set(count)
            try:
                age = max(0.0, now - id_time(oldest))
            except ValueError:  # a job id not made by new_id: no age rather than a wrong one
                continue
            self.outbox_age.labels(channel_key, kind).set(age)
        if self._feed is not None and self._feed_events is not None and self._feed_seconds is not None:
            self._feed_events.clear()
            self._feed_seconds.clear()
            for consumer, (events, age_s) in (await self._feed()).items():
                self._feed_events.labels(consumer).set(events)
                if age_s is not None:
                    self._feed_seconds.labels(consumer).set(age_s)

    async def exposition(self, store: SqlStore) -> bytes:
        """The text exposition format of every series, refreshed from the store."""
        await self.refresh(store)
        return generate_latest(self.registry)

