"""The channel adapter base class, its settings and its context.

The values an adapter hands the hub (:class:`InboundMessage`, :class:`ParseResult`,
:class:`SendResult`…) live in ``_adapter_results`` and are re-exported here.

Adapters are declarative (``name``, ``channel``, ``capabilities``, a ``Settings`` model) and sans-IO
where they can be: :meth:`ChannelAdapter.verify` and :meth:`ChannelAdapter.parse` are pure
functions of a :class:`WebhookRequest`. Network I/O (send, media download, token refresh) is async
and goes through the one ``httpx.AsyncClient`` the hub injects in :class:`AdapterContext`.
"""

from __future__ import annotations

import abc
import hmac
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol

import anyio
import anyio.to_thread
import httpx
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeVar

from ._adapter_results import FollowUp, InboundMessage, ParseFailure, ParseResult, SendResult
from ._capabilities import Capabilities
from ._error_mapping import error_for_status, transport_errors
from ._errors import (
    ChannelError,
    UnsupportedFeatureError,
)
from ._models import Address, Author, Conversation, MediaPart, Message, Part
from ._retry_after import parse_retry_after
from ._services import AdapterServices, DetachedServices
from ._thread_keys import adopt_legacy_thread_keys, message_customer
from ._webhook import WebhookRequest, WebhookResponse

if TYPE_CHECKING:
    from ._blobs import BlobStore

__all__ = [
    "AdapterContext",
    "AdapterSettings",
    "ChannelAdapter",
    "FollowUp",
    "InboundMessage",
    "KeyValueStore",
    "ParseFailure",
    "ParseResult",
    "SendResult",
    "SettingsT",
    "constant_time_equals",
    "message_customer",
    "parse_retry_after",
]


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare two secrets in constant time (strings are compared as UTF-8)."""
    ab = a.encode("utf-8") if isinstance(a, str) else a
    bb = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


class AdapterSettings(BaseModel):
    """Base of every adapter's ``Settings``: validated from the ``[channels.<key>]`` table.

    Secrets are declared as ``pydantic.SecretStr`` so they never show in a repr or a log line.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: str | None = None
    """Base URL of the vendor API (tests point it at a stub)."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Sends per second for this channel; overrides the adapter's default."""
    media_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    """Largest inbound media download."""
    thread_with: str | None = None
    """Another channel key whose conversations this channel's messages join (same thread key):
    calls to a number thread with the SMS of that number, and replies go out on that channel."""


SettingsT = TypeVar("SettingsT", bound=AdapterSettings, default=AdapterSettings, covariant=True)
"""The ``Settings`` model of a :class:`ChannelAdapter` (``ChannelAdapter[TelegramSettings]``)."""


class KeyValueStore(Protocol):
    """Small shared state for adapters (tokens, partial messages), shared by all processes."""

    async def kv_get(self, key: str) -> str | None:
        """Return the value, or ``None`` when absent or expired."""

    async def kv_set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds when given."""

    async def kv_add(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent (or expired); ``True`` if stored. A lock."""

    async def kv_delete(self, key: str) -> None:
        """Remove ``key``."""

    async def kv_scan(self, prefix: str) -> list[tuple[str, str]]:
        """Every live ``(key, value)`` whose key starts with ``prefix``."""


@dataclass
class AdapterContext:
    """What the hub gives an adapter: where it lives and the shared I/O it may use."""

    key: str
    """The channel key (``[channels.<key>]``)."""
    public_url: str
    """Base URL vendors see the gateway at, without a trailing slash."""
    http: httpx.AsyncClient
    """The hub's one HTTP client; adapters never create their own."""
    kv: KeyValueStore
    """Shared key-value state (tokens, partial messages)."""
    blobs: BlobStore | None = None
    """The hub's blob store (media)."""
    services: AdapterServices = field(default_factory=DetachedServices)
    """The typed port to the hub for this channel key (:class:`AdapterServices`); outside a
    hub a :class:`DetachedServices` whose ``running`` is ``False``."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Room for embedders to pass adapter-specific objects. Deprecated as a way to reach the
    hub: ``extras["hub"]`` is kept for one release for out-of-tree plugins; use ``services``."""

    @property
    def webhook_url(self) -> str:
        """The URL vendors call and sign: ``public_url`` + ``/webhooks/{key}``."""
        return f"{self.public_url}/webhooks/{self.key}"


PARSE_THREADS = 2
"""Worker threads that parse large bodies at once, hub-wide (see
:attr:`ChannelAdapter.parse_in_thread_above`); more wait their turn."""

_PARSE_SLOTS: dict[int, anyio.Semaphore] = {}


def _parse_slots() -> anyio.Semaphore:
    # one semaphore per event loop (a semaphore binds to the loop it is first used on)
    import asyncio

    loop = id(asyncio.get_running_loop())
    slots = _PARSE_SLOTS.get(loop)
    if slots is None:
        if len(_PARSE_SLOTS) > 64:  # loops of finished tests
            _PARSE_SLOTS.clear()
        slots = _PARSE_SLOTS[loop] = anyio.Semaphore(PARSE_THREADS)
    return slots


class ChannelAdapter(abc.ABC, Generic[SettingsT]):
    """Base class of channel adapters. Subclass, set the class attributes, override methods.

    Generic over its settings model: ``class LineAdapter(ChannelAdapter[LineSettings])`` makes
    ``self.settings`` a ``LineSettings`` for the type checker and sets ``Settings`` to it (an
    adapter may instead nest ``class Settings(AdapterSettings)`` and annotate
    ``settings: Settings``). Required class attributes: ``name`` (unique, e.g.
    ``"twilio-sms"``), ``channel`` (kind) and ``capabilities``. :meth:`verify` and :meth:`parse`
    are abstract: registering an adapter that lacks either is a
    :class:`~omnichannel_sdk.PluginError` naming it.
    """

    name: ClassVar[str]
    """Unique adapter name used in configuration (``adapter = "..."``)."""
    channel: ClassVar[str]
    """Channel kind: ``sms``, ``email``, ``wechat``, ``messenger``, ``webchat``, ``voice``…"""
    capabilities: ClassVar[Capabilities] = Capabilities()
    """What this channel can show and its limits."""
    default_api_base: ClassVar[str | None] = None
    """The vendor API base URL when ``api_base`` is not configured."""
    inbound_get: ClassVar[bool] = False
    """Whether the vendor may deliver messages by GET (Twilio's and Vonage's GET option): a GET
    that :meth:`handshake` does not answer then runs the full inbound pipeline, like a POST."""
    secret_headers: frozenset[str] = frozenset({
        "authorization", "proxy-authorization", "cookie", "x-api-key", "x-transcribe-token",
        "x-omnichannel-webhook-secret"})
    """Request headers (lower case) that carry bearer-like secrets: redacted in stored raw
    requests and log lines. Extend it (``ChannelAdapter.secret_headers | {...}``) for a
    vendor's callback secret, or set it on the instance when the name is configured; HMAC
    signature headers are not secrets and stay."""
    secret_query: frozenset[str] = frozenset({
        "hub.verify_token", "verify_token", "token", "access_token", "api_key", "api_secret",
        "secret", "password", "key"})
    """Query parameters that carry bearer-like secrets, redacted like :attr:`secret_headers`."""

    parse_in_thread_above: ClassVar[int | None] = None
    """Request bodies larger than this many bytes are parsed in a worker thread (at most
    :data:`PARSE_THREADS` at once), so a CPU-heavy parse (a large MIME message) never blocks
    the event loop; ``None``: always parse on the loop (cheap payloads)."""

    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    """The pydantic model that validates ``[channels.<key>]``: the type argument of
    ``ChannelAdapter[...]``, or a nested ``class Settings(AdapterSettings)``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Settings" not in cls.__dict__:
            # ``ChannelAdapter[X]`` or a generic base's ``EmailAdapter[X]``: X is the model
            for base in getattr(cls, "__orig_bases__", ()):
                origin = typing.get_origin(base)
                if isinstance(origin, type) and issubclass(origin, ChannelAdapter):
                    for arg in typing.get_args(base):
                        if isinstance(arg, typing.TypeVar):  # a generic base: its default model
                            arg = getattr(arg, "__default__", None)
                        if isinstance(arg, type) and issubclass(arg, AdapterSettings):
                            cls.Settings = arg
        adopt_legacy_thread_keys(cls, ChannelAdapter)

    def __init__(self, settings: SettingsT, context: AdapterContext) -> None:
        self.settings: SettingsT = settings
        self.context = context

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} key={self.context.key!r}>"

    # -- inbound (sans-IO) ----------------------------------------------------------------

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Check the request's signature; raise :class:`SignatureError` when it fails.

        Every adapter says how its vendor signs; one that takes no webhooks at all (mail from
        its own listener) refuses every request here.
        """

    async def check_replay(self, request: WebhookRequest) -> None:
        """Refuse a replayed request after :meth:`verify` passed (raise
        :class:`SignatureError`, answered 403, nothing stored). Adapters whose vendor signs a
        timestamp and a nonce keep the nonces in a :class:`~omnichannel_sdk.ReplayGuard`
        (``context.kv``). Default: nothing to check."""
        return None

    def handshake(self, request: WebhookRequest) -> WebhookResponse | None:
        """Answer a vendor's GET handshake (Messenger ``hub.challenge``, WeChat ``echostr``).

        Return ``None`` for "no handshake here" (answered 405); raise :class:`SignatureError`
        for a wrong token (answered 403).
        """
        return None

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> ParseResult:
        """Turn a verified request into messages and receipts.

        Raise :class:`~omnichannel_sdk.UnparseablePayloadError` when nothing in it can be
        understood (the payload is dead-lettered), or return per-item ``failures``.
        """

    async def parse_request(self, request: WebhookRequest) -> ParseResult:
        """How the hub calls :meth:`parse`: on the event loop, or for bodies larger than
        :attr:`parse_in_thread_above` in a bounded worker thread."""
        limit = self.parse_in_thread_above
        if limit is None or len(request.body) <= limit:
            return self.parse(request)
        async with _parse_slots():
            return await anyio.to_thread.run_sync(self.parse, request)

    async def complete(self, request: WebhookRequest, result: ParseResult) -> ParseResult:
        """Finish a parse with the I/O a sans-IO :meth:`parse` cannot do, before anything is
        stored: store reads and kv lookups through ``self.context``, changes to stored messages
        through ``self.context.services`` (a vendor's "message edited" that updates the stored
        message instead of adding one). Runs inside a hub only (webhooks and replay), never in
        ``omnichannel normalize``; an exception dead-letters the request like a parse error.
        Default: ``result`` unchanged."""
        return result

    def storable_body(self, request: WebhookRequest) -> bytes:
        """The body as the raw request is stored: the default keeps it as it came; an adapter
        whose vendor echoes a secret in the body (Deepgram's ``callback_secret``) removes it."""
        return request.body

    def acknowledge(self, request: WebhookRequest, result: ParseResult | None) -> WebhookResponse:
        """The answer the vendor expects once the request is stored (default: empty 200)."""
        return WebhookResponse(200, b"")

    # -- identity: who is who, and what threads a conversation ------------------------------

    def own_address(self) -> Address | None:
        """Our own address on this channel (our number, page, account), when configured: the
        sender of what we send, a participant of every conversation."""
        return None

    def customer_address(self, handle: str) -> Address:
        """A customer's :class:`Address` from a handle as a person typed it (used by
        ``hub.start_conversation``; SMS adapters apply their ``default_region``)."""
        return Address(channel=self.channel, handle=handle)

    def thread_key_for(self, customer: Address, message: InboundMessage | None = None) -> str:
        """What threads the conversation with ``customer`` on this channel key.

        Called for an inbound message (``message`` given: one that names no ``thread_key``
        itself, when no ``omni_inbound_thread_key`` hook answers; for an outbound echo
        ``customer`` is its recipient) and for a conversation we start (``message`` is
        ``None``): both must give the same key for the same customer, so the customer's answer
        joins the conversation we started. Default: customer handle ``|`` our handle (the
        message's other party, else :meth:`own_address`).
        """
        if message is not None and type(self).thread_key is not ChannelAdapter.thread_key:
            return self.thread_key(message)  # an adapter written before 0.2
        ours = ""
        if message is not None:
            other = message.recipients[:1] if message.direction == "inbound" else [message.sender]
            ours = other[0].handle if other else ""
        else:
            own = self.own_address()
            ours = own.handle if own else ""
        return f"{customer.handle}|{ours}"

    def passive_response(
        self, request: WebhookRequest, inbound: Message, reply: Message, parts: Sequence[Part]
    ) -> WebhookResponse | None:
        """The webhook answer that carries ``reply`` (for ``passive_reply`` channels), or
        ``None`` when these parts cannot ride on the answer (the hub then answers plainly)."""
        return None

    def thread_key(self, message: InboundMessage) -> str:
        """Deprecated since 0.2 (removed in 0.3): the message's own ``thread_key``, else
        :meth:`thread_key_for` of its customer. Override :meth:`thread_key_for` instead."""
        if message.thread_key:
            return message.thread_key
        return self.thread_key_for(message_customer(message), message)

    # -- outbound --------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """The configured ``api_base`` or the adapter's default, without a trailing slash."""
        base = self.settings.api_base or self.default_api_base
        if not base:
            raise UnsupportedFeatureError(f"{self.name} has no api_base configured")
        return base.rstrip("/")

    def outside_window(
        self, parts: Sequence[Part], author: Author | None, conversation: Conversation,
        metadata: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Whether a message may go out after the reply window closed.

        ``metadata`` is what the caller of ``hub.send`` gave (e.g. a requested message tag).
        Return metadata for :meth:`send` (e.g. ``{"tag": "HUMAN_AGENT"}``) to allow it, or
        ``None`` to refuse with :class:`~omnichannel_sdk.WindowClosedError`. Default: only
        template parts, where the channel has templates.
        """
        if self.capabilities.templates and parts and all(p.type == "template" for p in parts):
            return {"window": "template"}
        return None

    def outbound_metadata(self, parts: Sequence[Part], recipients: Sequence[Address]) -> dict[str, Any]:
        """What the channel knows about rendered ``parts`` before they are sent, recorded in
        the metadata of the queued message ``hub.send`` returns (SMS adapters: the encoding
        and segment count, ``{"encoding": "GSM-7" | "UCS-2", "segments": N}``).

        Synchronous, no I/O. Raise :class:`~omnichannel_sdk.RejectedError` to refuse the
        send at once (nothing is stored). Default: nothing.
        """
        return {}

    async def send(self, message: Message, parts: Sequence[Part]) -> SendResult:
        """Deliver ``message`` (already rendered to ``parts``) to the vendor.

        Raise a :class:`~omnichannel_sdk.ChannelError` subclass on failure; never return a
        success flag. ``message.id`` is the idempotency key.
        """
        raise UnsupportedFeatureError(f"{self.name} cannot send messages")

    async def reconcile(self, message: Message, parts: Sequence[Part],
                        attempted_at: datetime) -> SendResult | None:
        """Ask the vendor whether an earlier call of :meth:`send` reached it.

        Called before ``message`` is sent again when a vendor call of it started at
        ``attempted_at`` and its outcome was never recorded (the process making it died, or
        the call timed out). Return the vendor's record of that message as a
        :class:`SendResult` (the message is recorded ``sent`` with it and not sent again), or
        ``None`` when the vendor has no such message or cannot be asked (it is sent again: a
        possible duplicate, counted). A retryable :class:`~omnichannel_sdk.ChannelError`
        retries the job later. Never claim a vendor message that may be another one's.

        Default: ``None``. Adapters whose vendor de-duplicates by our key (``message.id``)
        need nothing here: sending again is harmless.
        """
        return None

    async def media_request(self, part: MediaPart) -> httpx.Request | None:
        """The request that downloads an inbound media part (with the vendor's auth).

        Default: a plain GET of ``part.url``. Return ``None`` for "nothing to download".
        """
        if not part.url or not part.url.startswith(("http://", "https://")):
            return None
        return self.context.http.build_request("GET", part.url)

    async def check_media_response(self, response: httpx.Response) -> None:
        """Refuse a media download answer that is really an error (vendors that answer 200 with
        an error document, like WeChat's ``media/get``): raise a
        :class:`~omnichannel_sdk.ChannelError` (retryable ones are retried). The response is
        streamed; ``await response.aread()`` to look at a small body. Default: accept."""
        return None  # optional: most adapters have nothing to check, start or stop

    def asgi_app(self) -> Callable[..., Awaitable[None]] | None:
        """An ASGI app the gateway mounts at ``/channels/{key}/`` (web chat), or ``None``."""
        return None

    async def run_job(self, task: str, data: Mapping[str, Any]) -> None:
        """Carry out a durable job this adapter left: a :class:`FollowUp` of a ``parse``, or
        ``context.services.defer(task, data)``. Raise a retryable
        :class:`~omnichannel_sdk.ChannelError` to be retried later; any other error ends in a
        dead letter. Jobs run at least once: be idempotent.

        Default: refuse (an adapter that defers jobs overrides this)."""
        raise UnsupportedFeatureError(f"{self.name} has no job {task!r}")

    def body_limit(self, path: str) -> int | None:
        """The largest request body the gateway lets through to :meth:`asgi_app` for ``path``
        (relative to ``/channels/{key}``), or ``None`` for the hub's ``max_channel_body_bytes``.
        The gateway enforces it while the body streams in and answers 413 beyond."""
        return None

    async def start(self) -> None:
        """Called when the hub opens (start listeners, pollers)."""
        return None

    async def stop(self) -> None:
        """Called when the hub closes."""
        return None

    # -- helpers for subclasses ------------------------------------------------------------

    async def request(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """Call the vendor through the hub's client; network trouble → :class:`TransportError`
        (:func:`transport_errors`, the one mapping of the SDK).

        The response is returned whatever its status; pass it to :meth:`raise_for_status`.
        """
        with transport_errors(self.name, "calling the vendor"):
            return await self.context.http.request(method, url, **kwargs)

    def raise_for_status(self, response: httpx.Response) -> None:
        """Map an HTTP error response to the typed errors (override for vendor codes)."""
        if response.status_code < 400:
            return
        raise self.error_for_status(response.status_code, response, None, None)

    def error_for_status(
        self,
        status: int,
        response: httpx.Response | None,
        vendor_code: str | int | None,
        detail: str | None,
    ) -> ChannelError:
        """The typed error for an HTTP status (and vendor code), used by adapters' mappers
        (:func:`~omnichannel_sdk.error_for_status`: 429 rate limited, 401/403 authentication,
        408/5xx retryable, other 4xx rejected)."""
        return error_for_status(self.name, status, response, vendor_code, detail)
