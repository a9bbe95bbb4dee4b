"""Signed outgoing webhooks (Standard Webhooks), delivered from the durable outbox.

One feed consumer (``webhooks``, shared by every process of the deployment) turns each event into
one ``webhook`` job per endpoint whose filter takes it, and acknowledges the event once the jobs
are stored. The outbox runs the jobs: a 2xx finishes one; anything else is retried with
exponential backoff (honouring ``Retry-After``) under the same ``webhook-id``, and after the
endpoint's last try the job becomes a dead letter (``kind`` ``webhook``) that ``replay`` queues
again. Each try is signed afresh (``webhook-timestamp`` is the time of the try) with every
secret of the endpoint, so a receiver that knows either secret accepts it while they rotate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .._events import Event, event_adapter
from .._ids import new_id
from .._models import DeadLetter, utcnow
from .._retry import backoff_delay
from .._service_settings import WebhookEndpoint
from .._store import Job

if TYPE_CHECKING:
    from .._delivery import Delivery
    from .._store import SqlStore
    from .._store._sql import Tx

__all__ = ["CONSUMER", "WebhookHost", "WebhookSender", "replay_webhook", "sign"]

log = logging.getLogger("omnichannel_sdk.webhooks")

CONSUMER = "webhooks"
"""The feed consumer name the sender reads under."""


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign(secrets: list[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` per secret, space-separated."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join("v1," + base64.b64encode(hmac.new(_key(s), content, hashlib.sha256).digest()).decode()
                    for s in secrets)


def webhook_id(event: Event) -> str:
    """Stable for an event (every retry and a replay repeat it): its ``seq`` and time."""
    return f"msg_{event.seq}_{int(event.at.timestamp() * 1_000_000):x}"


class WebhookHost(Protocol):
    """What the webhook sender needs of the hub (the Hub is one; a Protocol, so that this
    module, which the hub's parts import, never imports the hub)."""

    @property
    def storage(self) -> SqlStore:
        """The store (jobs, dead letters)."""

    @property
    def delivery(self) -> Delivery:
        """The outbox that runs the webhook jobs."""

    @property
    def http(self) -> httpx.AsyncClient:
        """The HTTP client."""

    @property
    def is_open(self) -> bool:
        """Whether the hub is open."""

    def feed(self, name: str) -> AsyncIterator[Event]:
        """The durable feed of consumer ``name``."""

    async def ack(self, name: str, seq: int) -> None:
        """Acknowledge an event of the feed."""


class WebhookSender:
    """Feeds the outbox with webhook jobs and delivers them."""

    def __init__(self, hub: WebhookHost, endpoints: list[WebhookEndpoint]) -> None:
        self.hub = hub
        self.endpoints = endpoints
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Deliver jobs from this process's outbox; start turning events into jobs."""
        self.hub.delivery.handlers["webhook"] = self.deliver
        self._task = asyncio.create_task(self._pump(), name="omnichannel-webhooks")

    async def stop(self) -> None:
        """Stop taking events (jobs in flight finish with the outbox)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _pump(self) -> None:
        while self.hub.is_open or self._task is not None:
            try:
                async for event in self.hub.feed(CONSUMER):
                    await self._enqueue(event)
                    assert event.seq is not None
                    await self.hub.ack(CONSUMER, event.seq)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook feed reader failed; starting again")
                await asyncio.sleep(1)

    async def _enqueue(self, event: Event) -> None:
        wanted = [(i, e) for i, e in enumerate(self.endpoints) if not e.events or event.type in e.events]
        if not wanted:
            return
        body = event_adapter.dump_json(event).decode()
        ident = webhook_id(event)
        jobs = [Job(id=new_id("job"), kind="webhook", channel_key="", message_id=None,
                    payload={"url": e.url, "webhook_id": ident, "type": event.type, "body": body})
                for _, e in wanted]

        async def unit(tx: Tx) -> None:
            from .._store._sql import now_us

            for job in jobs:
                await self.hub.storage._insert_job(tx, job, now_us())

        await self.hub.storage._write(unit)
        self.hub.delivery.poke()

    def _endpoint(self, url: str) -> WebhookEndpoint | None:
        return next((e for e in self.endpoints if e.url == url), None)

    async def deliver(self, job: Job) -> None:
        """One try of a webhook job (the outbox calls this)."""
        store = self.hub.storage
        endpoint = self._endpoint(str(job.payload.get("url")))
        if endpoint is None:  # the endpoint left the configuration
            log.warning("dropping a webhook for an endpoint no longer configured")
            await store.finish_job(job.id)
            return
        body = str(job.payload["body"]).encode()
        ident = str(job.payload["webhook_id"])
        stamp = int(time.time())
        headers = {"content-type": "application/json", "webhook-id": ident,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(endpoint.secrets, ident, stamp, body),
                   "user-agent": "omnichannel-sdk-webhooks"}
        retry_after: float | None = None
        try:
            response = await self.hub.http.post(endpoint.url, content=body, headers=headers,
                                                timeout=endpoint.timeout)
        except httpx.HTTPError as exc:
            error = f"transport: {type(exc).__name__}"
        else:
            if 200 <= response.status_code < 300:
                await store.finish_job(job.id)
                return
            error = f"HTTP {response.status_code}"
            header = response.headers.get("retry-after", "")
            retry_after = float(header) if header.isdigit() else None
        if job.attempts + 1 < endpoint.max_attempts:
            log.info("webhook %s to %s failed (%s); retrying", ident, _host(endpoint.url), error)
            await store.retry_job(job.id, backoff_delay(job.attempts, endpoint.base_delay,
                                                        endpoint.max_delay, retry_after), error)
            return
        log.warning("webhook %s to %s failed %d times (%s); dead-lettered", ident,
                    _host(endpoint.url), job.attempts + 1, error)
        letter = DeadLetter(id=new_id("dl"), kind="webhook", channel_key="", adapter="webhook",
                            error=f"{error} after {job.attempts + 1} tries", created_at=utcnow())

        async def unit(tx: Tx) -> None:
            await tx.execute("DELETE FROM jobs WHERE id = $1", job.id)
            await store._insert_dead_letter(tx, letter, job.payload)

        await store._write(unit)


async def replay_webhook(store: SqlStore, delivery: Delivery, letter: DeadLetter) -> None:
    """Queue a dead-lettered webhook again (same ``webhook-id``, a fresh count of tries)."""
    payload: Any = await store.dead_letter_fragment(letter.id)
    if not isinstance(payload, dict) or "webhook_id" not in payload:
        from .._errors import NotFoundError

        raise NotFoundError("the webhook of this dead letter is gone")
    await store.enqueue_job(Job(id=new_id("job"), kind="webhook", channel_key="", message_id=None,
                                payload=payload))
    delivery.poke()


def _host(url: str) -> str:
    # logs name the host only: a webhook URL may carry a token in its path or query
    return httpx.URL(url).host
