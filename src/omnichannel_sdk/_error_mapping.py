"""HTTP trouble mapped to the typed errors, in one place (as httpx maps its transports' errors).

Two kinds of trouble reach an adapter: no answer at all (a timeout, a refused connection, a
broken stream: any :class:`httpx.HTTPError`), and an error answer (a status of 400 or more).
:func:`transport_errors` turns the first into a retryable :class:`TransportError` wherever the
SDK calls out (``ChannelAdapter.request``, media downloads); :func:`error_for_status` turns the
second into the leaf of :class:`ChannelError` the outbox acts on. Adapters map their vendor's
own codes first and fall back to these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from ._errors import (
    AuthenticationError,
    ChannelError,
    ProviderError,
    RateLimitedError,
    RejectedError,
    TransportError,
)
from ._retry_after import parse_retry_after

__all__ = ["error_for_status", "transport_error", "transport_errors"]


def transport_error(adapter: str, exc: httpx.HTTPError, doing: str) -> ChannelError:
    """The typed error for ``exc`` raised while ``doing`` something (``"calling the vendor"``).

    Every :class:`httpx.HTTPError` maps: timeouts and the other request errors (connect, read,
    write, protocol, decoding, too many redirects) are a retryable :class:`TransportError`; an
    :class:`httpx.HTTPStatusError` (``response.raise_for_status()``) is
    :func:`error_for_status` of its response. The message names the kind of trouble, never the
    URL (it may carry a credential).
    """
    if isinstance(exc, httpx.HTTPStatusError):
        return error_for_status(adapter, exc.response.status_code, exc.response, None, doing)
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
    return TransportError(f"{adapter}: {kind} {doing}")


@contextlib.contextmanager
def transport_errors(adapter: str, doing: str) -> Iterator[None]:
    """Inside the block, any :class:`httpx.HTTPError` is raised as :func:`transport_error`
    (chained, so the traceback keeps httpx's own error)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise transport_error(adapter, exc, doing) from exc


def error_for_status(
    adapter: str,
    status: int,
    response: httpx.Response | None,
    vendor_code: str | int | None,
    detail: str | None,
) -> ChannelError:
    """The typed error for an HTTP error ``status`` (and the vendor's code):

    ====================  ===================================================
    status                raised
    ====================  ===================================================
    429                   :class:`RateLimitedError` with ``Retry-After``
    401, 403              :class:`AuthenticationError`
    408, 5xx              retryable :class:`ProviderError`
    any other 4xx         :class:`RejectedError`
    ====================  ===================================================
    """
    what = f"{adapter}: HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after")) if response else None
        return RateLimitedError(what, retry_after=retry_after, vendor_code=vendor_code,
                                status_code=status)
    if status in (401, 403):
        return AuthenticationError(what, vendor_code=vendor_code, status_code=status)
    if status >= 500 or status == 408:
        return ProviderError(what, vendor_code=vendor_code, retryable=True, status_code=status)
    return RejectedError(what, vendor_code=vendor_code, status_code=status)
