"""The durable outbox worker: delivers queued sends and media downloads, with retries.

At-least-once to the vendor with ``message.id`` as idempotency key; exponential backoff with full
jitter that honours ``Retry-After``; a token-bucket rate limit per channel key; dead letter after
the last try; jobs leased so that another process (or this one after a restart) resumes a send a
crashed process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._attempts import call_vendor, take_back_leases
from ._config import DeliverySettings
from ._errors import (
    AuthenticationError,
    ChannelError,
    MediaError,
    OmnichannelError,
    OptedOutError,
    ProviderError,
    RateLimitedError,
    TransportError,
    UnsupportedFeatureError,
    WindowClosedError,
)
from ._events import MessageSent, StatusChanged
from ._ids import new_id
from ._jobs import ADAPTER_JOB, run_adapter_job
from ._media_download import download_media
from ._media_origins import host_allowed, media_origin_allowed
from ._models import DeadLetter, MediaPart, Message, MessageError, Part, utcnow
from ._retry import backoff_delay
from ._retry_state import finished, retrying
from ._store import Job
from ._store._copies import copied
from ._token_bucket import TokenBucket
from ._workers import Workers

if TYPE_CHECKING:
    from ._blobs import BlobStore
    from ._channels import ChannelRegistry
    from ._metrics import HubMetrics
    from ._mutations import Mutations
    from ._publisher import Publisher
    from ._store import SqlStore

__all__ = ["Delivery", "backoff_delay", "host_allowed", "media_origin_allowed"]

log = logging.getLogger("omnichannel_sdk.delivery")


_ERROR_CODES: list[tuple[type[BaseException], str]] = [
    (RateLimitedError, "rate_limited"),
    (AuthenticationError, "auth"),
    (TransportError, "transport"),
    (OptedOutError, "opted_out"),
    (UnsupportedFeatureError, "unsupported"),
    (WindowClosedError, "window_closed"),
    (MediaError, "media"),
    (ProviderError, "provider"),  # a vendor 5xx: retryable, not a refusal of this message
    (ChannelError, "rejected"),
]


def error_code(exc: BaseException) -> str:
    """Our short error class name for an exception."""
    for kind, code in _ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return "internal"


class Delivery(Workers):
    """Runs jobs: in-process hand-off for fresh sends, polling for retries and orphans."""

    def __init__(
        self, settings: DeliverySettings, *, store: SqlStore, channels: ChannelRegistry,
        publisher: Publisher, mutations: Mutations, metrics: HubMetrics, blobs: BlobStore,
        http: Callable[[], httpx.AsyncClient], http_loopback: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.channels = channels
        self.publisher = publisher
        self.mutations = mutations
        self.metrics = metrics
        self.blobs = blobs
        self.http = http
        """The hub's current HTTP client (the hub may be given another one while open)."""
        self.http_loopback = http_loopback
        super().__init__(settings.concurrency, settings.max_in_flight_per_channel)
        self._settled: set[str] = set()
        self._limiters: dict[str, TokenBucket | None] = {}
        self._poller: asyncio.Task[None] | None = None
        self._waiters: dict[str, list[asyncio.Future[Message]]] = {}
        self._wake = asyncio.Event()
        self._renew_at = 0.0  # (monotonic) when the leases of the jobs we hold are renewed next
        self.handlers: dict[str, Callable[[Job], Awaitable[None]]] = {}
        """Runners of other job kinds (``webhook``…), registered by the features that add them."""

    def poke(self) -> None:
        """Look for due jobs now rather than at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Take back our identity's leases (:func:`take_back_leases`); poll for due jobs."""
        await take_back_leases(self.store, self.metrics, self.settings.worker_id)
        self._renew_at = time.monotonic() + self.settings.lease / 3
        self._poller = asyncio.create_task(self._poll(), name="omnichannel-outbox-poller")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and let in-flight jobs finish (up to ``timeout`` seconds)."""
        self._stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        # in-flight jobs finish, and the backlog's start as workers free up (as jobs waiting
        # for a worker did when each had a task of its own), until the timeout
        deadline = time.monotonic() + timeout
        while self._tasks and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)
        for job, _ in self._backlog:  # never started: handed back below with the others
            self._running.discard(job.id)
        self._backlog.clear()
        for line in self._parked.values():
            for _, job, _ in line:
                self._running.discard(job.id)
        self._parked.clear()
        for timer in self._throttled.values():
            timer.cancel()
        self._throttled.clear()
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        # jobs leased to us but not finished (cancelled, or submitted and never started) go
        # back to the outbox now rather than waiting out their lease in a process that is gone
        leftover = list(self._leased)
        self._leased.clear()
        if leftover:
            try:
                await self.store.release_jobs(leftover)
            except Exception:
                log.exception("could not release %d leased jobs", len(leftover))

    def wait_for(self, message_id: str) -> asyncio.Future[Message]:
        """A future resolved with the message once its send succeeded or finally failed."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(future)
        return future

    def _resolve(self, message: Message) -> None:
        for future in self._waiters.pop(message.id, []):
            if not future.done():
                future.set_result(message)

    async def _renew_leases(self) -> None:
        """Keep the jobs this process holds (running, or waiting for a worker or their
        channel's slot) its own: a third of ``lease`` after the last renewal, their leases run
        ``lease`` from now again, so no other process takes over, and sends again, a job that
        waits in a long line here."""
        now = time.monotonic()
        if now < self._renew_at:
            return
        self._renew_at = now + self.settings.lease / 3
        if not self._leased:
            return
        try:
            await self.store.renew_leases(list(self._leased), self.settings.lease)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not renew the leases of %d jobs", len(self._leased))

    async def _poll(self) -> None:
        # woken at least as often as the leases need renewing
        interval = min(self.settings.poll_interval, self.settings.lease / 3)
        while not self._stopping:
            await self._renew_leases()
            try:
                # a send parked behind its busy channel holds no worker: it does not keep
                # the jobs of other channels (a web chat reply's retry) out of this process.
                # A due send of a busy channel joins the back of its line, unless the lines
                # are as long as the workers are many: then it is left to other processes
                # rather than hoarded here
                parked = sum(len(line) for line in self._parked.values()) if self._parked else 0
                free = max(0, self.settings.concurrency - (len(self._running) - parked))
                if free:
                    skip = list(self._parked) if parked >= self.settings.concurrency else []
                    for job in await self.store.claim_jobs(
                            min(free, 500), self.settings.lease, skip_channels=skip):
                        self.submit(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox poll failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()

    def _limiter(self, key: str) -> TokenBucket | None:
        """The channel's rate limit (its settings' ``rate_limit``, else its adapter's), or
        ``None``; looked up once per channel."""
        if key in self._limiters:
            return self._limiters[key]
        adapter = self.channels.adapters.get(key)
        if adapter is None:
            return None
        rate = adapter.settings.rate_limit or adapter.capabilities.rate_limit
        limiter = self._limiters[key] = TokenBucket(rate) if rate is not None else None
        return limiter

    def _token(self, channel_key: str) -> float:
        """A token of the channel's rate limit, taken before the send holds a worker (see
        :mod:`._workers`): 0.0, or the seconds until the next one."""
        limiter = self._limiter(channel_key)
        return 0.0 if limiter is None else limiter.take()

    async def _run(self, job: Job, message: Message | None) -> tuple[Job, Message | None] | None:
        parts = self._rendered.pop(job.id, None)
        recorded = job.id in self._recorded
        self._recorded.discard(job.id)
        if job.id in self._reserved:  # (every send holds its channel's slot by now)
            self._reserved.discard(job.id)
            if job.kind != "send":  # (reserve() was given another kind of job)
                self._slot(job.channel_key).release()
        handed: tuple[Job, Message | None] | None = None
        try:
            try:  # (the job holds a worker: reserved, or handed over)
                if job.kind == "send":
                    handed = await self._send(job, message, parts, recorded)
                elif job.kind == "media":
                    await self._media(job)
                elif job.kind == ADAPTER_JOB:
                    await run_adapter_job(job, self.store, self.channels.adapters, self.settings)
                elif job.kind in self.handlers:
                    await self.handlers[job.kind](job)
                else:
                    log.error("unknown job kind %r; dropping job %s", job.kind, job.id)
                    await self.store.finish_job(job.id)
            except BaseException:
                self._free_worker()  # (the next job starts while this one's failure is recorded)
                raise
            if handed is None:  # the worker runs the next job that can, in this task
                handed = self._hand_on()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker
            await self._crashed(job, message, exc)
            self._leased.discard(job.id)
        else:
            self._leased.discard(job.id)  # finished, retried or failed: no longer ours
        finally:
            self._running.discard(job.id)
            self._settled.discard(job.id)
        return handed

    async def _crashed(self, job: Job, message: Message | None, exc: Exception) -> None:
        """A bug (ours or an adapter's) broke a job: retry with backoff, then dead-letter."""
        store = self.store
        try:
            if job.attempts + 1 < self.settings.max_attempts:
                log.exception("job %s crashed; it will be retried", job.id)
                delay = backoff_delay(job.attempts, self.settings.base_delay, self.settings.max_delay)
                # a vendor call may have been made before the crash: keep its record
                await store.retry_job(job.id, delay, f"internal: {type(exc).__name__}",
                                      uncertain=True)
                if job.kind == "send" and job.message_id:
                    await self.mutations.modify_message(job.message_id, retrying(
                        job.attempts + 1, f"internal: {type(exc).__name__}", delay))
                return
            log.exception("job %s crashed on its last try", job.id)
            if message is None and job.message_id:
                message = await store.get_message(job.message_id)
            if job.kind == "send" and message is not None:
                await self._give_up(job, message, exc)
            else:
                letter = DeadLetter(id=new_id("dl"), kind="inbound", channel_key=job.channel_key,
                                    adapter=message.adapter if message else "unknown",
                                    error=f"{job.kind}: {type(exc).__name__}: {exc}",
                                    created_at=utcnow(), message_id=job.message_id)
                await store.fail_job(job, letter, None)
        except Exception:
            log.exception("could not record the failure of job %s", job.id)

    async def _send(self, job: Job, message: Message | None, given: list[Part] | None,
                    recorded: bool) -> tuple[Job, Message | None] | None:
        """Deliver a send job, which holds a slot of its channel: given back once the vendor
        call is over (at once when none is made), or handed with the worker to the channel's
        next send, whose call is recorded with this one's result (:meth:`_successor`): that
        send is the answer, to run next in this task. ``recorded``: the job's first vendor
        call was recorded with the job (:meth:`reserve`) or with its predecessor's result."""
        store = self.store
        slot = self._slot(job.channel_key)
        adapter = self.channels.adapters.get(job.channel_key)
        parts: list[Part] | None = None
        try:
            if message is None:
                message = await store.get_message(job.message_id or "")
            if message is not None and message.status == "queued" and adapter is not None:
                # a fresh send's parts are the ones hub.send rendered; a retried one's come
                # from the job
                parts = given if given is not None else _parts_adapter().validate_python(
                    job.payload.get("parts", []))
        except BaseException:
            slot.release()
            raise
        if message is None or adapter is None or parts is None:
            slot.release()
            await self._not_sendable(job, message, adapter is None)
            return None
        started = time.monotonic()
        try:
            try:
                result = await call_vendor(  # bounded, recorded first, reconciled
                    job, message, adapter, parts, store=self.store, metrics=self.metrics,
                    slot=slot, settled=self._settled,
                    recorded=recorded)
            except Exception as exc:
                self._measure(job, started, exc)
                raise
            self._measure(job, started, None)
        except OptedOutError as exc:
            contact_id = job.payload.get("contact_id")
            if contact_id:
                await store.set_opted_out(contact_id, adapter.channel, True)
            await self._give_up(job, message, exc)
            return None
        except ChannelError as exc:
            attempts = job.attempts + 1
            if not exc.retryable or attempts >= self.settings.max_attempts:
                await self._give_up(job, message, exc)
                return None
            retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
            delay = backoff_delay(job.attempts, self.settings.base_delay, self.settings.max_delay,
                                  retry_after)
            log.info("send %s failed (%s); retry %d in %.1fs", message.id, error_code(exc),
                     attempts, delay)
            await store.retry_job(job.id, delay, f"{error_code(exc)}: {exc}",
                                  uncertain=job.id not in self._settled)  # not answered: keep
            # the retry state on the message, published as message.updated (SPEC §7)
            await self.mutations.modify_message(message.id, retrying(attempts, f"{error_code(exc)}: {exc}",
                                                               delay))
            return None
        except (UnsupportedFeatureError, MediaError, WindowClosedError) as exc:
            await self._give_up(job, message, exc)  # trying again cannot help
            return None
        # the call is over: its slot goes with this worker to the channel's next send, whose
        # call is recorded with this result (one write fewer), or back to the channel
        successor = self._successor(job)
        if successor is None:
            slot.release()
        try:
            # the vendor answered: whatever it calls it ("queued", "accepted", "sending"), the
            # message has left our outbox, so it is ``sent`` to us (``queued`` means ours only)
            status = result.status if result.status in ("delivered", "read") else "sent"
            updated = copied(message, {  # model_copy's result, without its generic handling
                "external_id": result.external_ids[0] if result.external_ids else None,
                "status": status,
                "metadata": finished({**message.metadata, **result.metadata,
                                      **({"external_ids": result.external_ids}
                                         if len(result.external_ids) > 1 else {})},
                                     job.attempts + 1),
            })
            final = await store.record_sent(
                updated, result.external_ids, job.id,
                next_attempt=successor[1].id if successor is not None else None)
        except BaseException:
            if successor is not None:  # its call is not recorded: it waits again
                self._hand_back(successor)
                slot.release()
            raise
        heard = self.publisher.heard  # events built only when someone gets them
        if heard("message.sent"):
            self.publisher.publish(MessageSent(message=final))
        if heard("message.status"):
            self.publisher.publish(StatusChanged(message=final, previous=message.status))
        self._resolve(final)
        if successor is None:
            return None
        self._recorded.add(successor[1].id)
        return successor[1], successor[2]

    async def _not_sendable(self, job: Job, message: Message | None, no_adapter: bool) -> None:
        """A send job whose message is gone, was already sent, or whose channel is gone."""
        if message is None:
            await self.store.finish_job(job.id)
        elif message.status != "queued":  # already sent by an earlier try
            await self.store.finish_job(job.id)
            self._resolve(message)
        elif no_adapter:
            await self._give_up(job, message, OmnichannelError(
                f"channel {job.channel_key!r} is no longer configured"))

    def _measure(self, job: Job, started: float, exc: BaseException | None) -> None:
        """Record a vendor call of a send in the hub's metrics."""
        if exc is None:
            self.metrics.record_send(job.channel_key, time.monotonic() - started, "accepted")
            return
        retry = (isinstance(exc, ChannelError) and exc.retryable
                 and job.attempts + 1 < self.settings.max_attempts)
        self.metrics.record_send(job.channel_key, time.monotonic() - started,
                                     "retry" if retry else "failed", code=error_code(exc),
                                     vendor_code=getattr(exc, "vendor_code", None))

    async def _give_up(self, job: Job, message: Message, exc: BaseException) -> None:
        error = MessageError(code=error_code(exc), message=str(exc),
                             vendor_code=getattr(exc, "vendor_code", None))
        failed = message.model_copy(update={"status": "failed", "error": error, "metadata": finished(
            message.metadata, job.attempts + 1, f"{error.code}: {exc}")})
        letter = DeadLetter(id=new_id("dl"), kind="outbound", channel_key=job.channel_key,
                            adapter=message.adapter, error=f"{error.code}: {exc}",
                            created_at=utcnow(), message_id=message.id)
        await self.store.fail_job(job, letter, failed)
        self.metrics.record_dead_letter(job.channel_key, "outbound")
        log.warning("send %s failed for good: %s", message.id, error.code)
        self.publisher.publish(StatusChanged(message=failed, previous=message.status))
        self._resolve(failed)

    async def _media(self, job: Job) -> None:
        store = self.store
        message = await store.get_message(job.message_id or "")
        adapter = self.channels.adapters.get(job.channel_key)
        index = int(job.payload.get("part", -1))
        if message is None or adapter is None or not 0 <= index < len(message.parts):
            await store.finish_job(job.id)
            return
        part = message.parts[index]
        if not isinstance(part, MediaPart) or part.blob_key:
            await store.finish_job(job.id)
            return
        try:
            stored = await self.download(adapter, part)
        except (MediaError, ChannelError) as exc:
            attempts = job.attempts + 1
            retryable = isinstance(exc, ChannelError) and exc.retryable
            if retryable and attempts < self.settings.max_attempts:
                await store.retry_job(job.id, backoff_delay(
                    job.attempts, self.settings.base_delay, self.settings.max_delay), str(exc))
                return
            letter = DeadLetter(id=new_id("dl"), kind="inbound", channel_key=job.channel_key,
                                adapter=adapter.name, error=f"media: {exc}", created_at=utcnow(),
                                message_id=message.id)
            await store.fail_job(job, letter, None)
            self.metrics.record_dead_letter(job.channel_key, "inbound")
            return
        def attach(current: Message) -> Message | None:
            if index >= len(current.parts) or current.parts[index].type != "media":
                return None
            parts = list(current.parts)
            parts[index] = stored
            return current.model_copy(update={"parts": parts})

        await self.mutations.modify_message(message.id, attach)
        await store.finish_job(job.id)

    async def download(self, adapter: Any, part: MediaPart) -> MediaPart:
        """Fetch ``part`` into the blob store: declared hosts only, size-capped."""
        return await download_media(self.http, self.blobs, adapter, part,
                                    http_loopback=self.http_loopback)


_PARTS: Any = None


def _parts_adapter() -> Any:
    global _PARTS
    if _PARTS is None:
        from pydantic import TypeAdapter

        _PARTS = TypeAdapter(list[Part])
    return _PARTS
