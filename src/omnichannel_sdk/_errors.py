"""The one exception tree of omnichannel_sdk.

Every error the SDK raises on purpose derives from :class:`OmnichannelError`::

    OmnichannelError
    ├── ConfigurationError          bad config: names the channel key and the field
    ├── PluginError                 a plugin misbehaves (duplicate adapter name, bad registration)
    ├── NotFoundError               unknown conversation, message, channel key
    ├── MergeConflictError          a merge proposal already decided, a merge already undone
    ├── PayloadError                a vendor payload we cannot accept (carries ``adapter``)
    │   ├── SignatureError          signature / handshake token missing or wrong (HTTP 403)
    │   └── UnparseablePayloadError verified, but not understood (dead-lettered, HTTP 200)
    ├── MediaError                  a media download refused (host not declared, too large)
    ├── UnsupportedFeatureError     a part or action the channel cannot carry at all
    ├── WindowClosedError           the channel's reply window is closed, no fallback allowed
    ├── OptedOutError               the contact opted out on this channel
    ├── RetryLaterError             a request cannot be handled yet (answered 503 + Retry-After)
    ├── StoreError                  the store failed a read or a write
    │   ├── StoreDataError          the store cannot hold this data (NUL on PostgreSQL): dead letter
    │   └── StoreUnavailableError   transient trouble (connection lost, lock timeout); also a
    │                               RetryLaterError, so a webhook is answered 503 + Retry-After
    └── ChannelError                sending failed (carries ``vendor_code`` and ``retryable``)
        ├── TransportError          network trouble before a vendor answer (retryable)
        └── ProviderError           the vendor answered with an error
            ├── AuthenticationError credentials refused (not retryable)
            ├── RateLimitedError    throttled; ``retry_after`` seconds when the vendor says
            └── RejectedError       the vendor refused this message (not retryable)

Plugins subclass the leaves; they never invent new roots. No message of any of these ever
contains a vendor secret.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ChannelError",
    "CliError",
    "ConfigurationError",
    "MediaError",
    "MergeConflictError",
    "NotFoundError",
    "OmnichannelError",
    "OptedOutError",
    "PayloadError",
    "PluginError",
    "ProviderError",
    "RateLimitedError",
    "RejectedError",
    "RetryLaterError",
    "SignatureError",
    "StoreDataError",
    "StoreError",
    "StoreUnavailableError",
    "TransportError",
    "UnparseablePayloadError",
    "UnsupportedFeatureError",
    "WindowClosedError",
]


class OmnichannelError(Exception):
    """Base class of every error raised by omnichannel_sdk."""


class ConfigurationError(OmnichannelError):
    """The configuration is invalid.

    ``channel_key`` and ``field`` say where (either may be ``None`` for hub-wide settings).
    """

    def __init__(self, message: str, *, channel_key: str | None = None, field: str | None = None):
        self.channel_key = channel_key
        self.field = field
        where = ".".join(p for p in ("channels" if channel_key else None, channel_key, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class PluginError(OmnichannelError):
    """A plugin registered something invalid (e.g. two adapters with one name)."""


class NotFoundError(OmnichannelError):
    """A conversation, message, contact or channel key does not exist."""


class MergeConflictError(OmnichannelError):
    """A contact merge cannot be done as asked: the proposal was already confirmed or rejected,
    the merge was already undone, or a later merge must be undone first (HTTP 409)."""


class PayloadError(OmnichannelError):
    """A vendor payload could not be accepted. ``adapter`` names the adapter that said so."""

    def __init__(self, message: str, *, adapter: str | None = None):
        self.adapter = adapter
        self.detail = message
        super().__init__(f"[{adapter}] {message}" if adapter else message)


class SignatureError(PayloadError):
    """The request's signature or handshake token is missing or wrong (answered 403)."""


class UnparseablePayloadError(PayloadError):
    """The request was verified but could not be parsed; it goes to the dead-letter store."""


class MediaError(OmnichannelError):
    """A media download was refused: undeclared host, too large, or the vendor failed."""


class UnsupportedFeatureError(OmnichannelError):
    """The channel cannot carry this part or feature at all, not even degraded."""


class WindowClosedError(OmnichannelError):
    """The channel's reply window is closed and no allowed fallback (template, tag) applies."""

    def __init__(self, message: str, *, expired_at: object = None):
        self.expired_at = expired_at
        super().__init__(message)


class OptedOutError(OmnichannelError):
    """The contact opted out on this channel; nothing was sent."""


class RetryLaterError(OmnichannelError):
    """A webhook cannot be handled yet (a signing certificate is still being fetched): the
    gateway answers 503 with ``Retry-After`` so the vendor delivers it again. Nothing is stored."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class StoreError(OmnichannelError):
    """The store failed a read or a write. The backends translate their drivers' errors
    (sqlite3, asyncpg) into the two subclasses in one place (``_store/_errors.py``)."""


class StoreDataError(StoreError):
    """The store cannot hold this data (U+0000 in text on PostgreSQL, a lone surrogate, a
    number out of range). Trying again cannot help: a webhook that hits it is dead-lettered
    with its raw request kept, and answered as the vendor expects."""


class StoreUnavailableError(StoreError, RetryLaterError):
    """Transient store trouble (connection lost, database locked, lock or statement timeout).
    A webhook that hits it is answered 503 with ``Retry-After`` (it is a
    :class:`RetryLaterError`), so the vendor delivers it again; nothing was acknowledged."""

    def __init__(self, message: str, *, retry_after: float | None = 5.0):
        super().__init__(message, retry_after=retry_after)


class ChannelError(OmnichannelError):
    """Sending through a vendor failed.

    :param vendor_code: the vendor's own error code, as a string, when it gave one.
    :param retryable: whether trying the same request again later may succeed.
    """

    retryable_default = False

    def __init__(
        self,
        message: str,
        *,
        vendor_code: str | int | None = None,
        retryable: bool | None = None,
        status_code: int | None = None,
    ):
        self.vendor_code = None if vendor_code is None else str(vendor_code)
        self.retryable = self.retryable_default if retryable is None else retryable
        self.status_code = status_code
        super().__init__(message)


class TransportError(ChannelError):
    """The vendor could not be reached (connection refused, timeout, reset)."""

    retryable_default = True


class ProviderError(ChannelError):
    """The vendor answered with an error."""


class AuthenticationError(ProviderError):
    """The vendor refused our credentials (HTTP 401/403, expired token)."""


class RateLimitedError(ProviderError):
    """The vendor throttled us. ``retry_after`` is in seconds, when the vendor said."""

    retryable_default = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RejectedError(ProviderError):
    """The vendor refused this particular message (bad number, policy); do not retry."""


class CliError(Exception):
    """A problem the ``omnichannel`` command's user can fix, printed as one line (exit status
    2). Not an :class:`OmnichannelError`: nothing in the library raises it."""
