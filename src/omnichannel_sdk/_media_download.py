"""Inbound media fetched into the blob store: declared hosts only, redirects followed one hop at
a time (each hop checked, credentials never sent to another host), size-capped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._error_mapping import transport_errors
from ._errors import MediaError
from ._media_origins import has_control, media_origin_allowed
from ._models import MediaPart
from ._redact import redact_url

if TYPE_CHECKING:
    from ._blobs import BlobStore

__all__ = ["download_media"]


async def download_media(http: Callable[[], httpx.AsyncClient], blobs: BlobStore, adapter: Any,
                         part: MediaPart, *, http_loopback: bool = False) -> MediaPart:
    """Fetch ``part`` into ``blobs`` through the hub's current client ``http()``: declared
    hosts only, size-capped (``http_loopback``: loopback origins allowed, for tests)."""
    if part.url is not None and has_control(part.url):
        raise MediaError(f"{adapter.name}: media URL with control characters refused")
    try:
        request = await adapter.media_request(part)
    except (httpx.InvalidURL, ValueError) as exc:  # a vendor URL httpx cannot even build
        raise MediaError(f"{adapter.name}: bad media URL: {type(exc).__name__}") from None
    if request is None:
        raise MediaError("nothing to download")
    configured = frozenset(getattr(adapter.settings, "media_hosts", None) or ())
    hosts = adapter.capabilities.media_hosts | configured
    exact = frozenset(h for h in configured if "://" in h)
    if adapter.settings.api_base:
        exact = exact | {adapter.settings.api_base}
    loopback = http_loopback
    url = str(request.url)
    limit = adapter.settings.media_max_bytes
    for _ in range(5):  # follow redirects ourselves so every hop is checked
        if not media_origin_allowed(url, hosts, exact, http_loopback=loopback):
            # credentials go to the exact declared origins only: https, the right port
            raise MediaError(f"{adapter.name}: media origin of {redact_url(url)!r} "
                             "is not declared by the adapter")
        with transport_errors(adapter.name, "downloading media"):
            response = await http().send(request, stream=True)
        try:
            if response.is_redirect and "location" in response.headers:
                url = str(response.url.join(response.headers["location"]))
                # credentials never follow a redirect to another host
                request = http().build_request("GET", url)
                continue
            if response.status_code >= 400:
                raise adapter.error_for_status(response.status_code, response, None,
                                               "media download")
            await adapter.check_media_response(response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise MediaError(f"{adapter.name}: media of {declared} bytes exceeds {limit}")
            info = await blobs.put_stream(response.aiter_bytes(), max_bytes=limit)
            content_type = part.content_type or response.headers.get("content-type")
            return part.model_copy(update={
                "blob_key": info.key, "sha256": info.sha256, "size": info.size,
                "content_type": content_type.split(";")[0].strip() if content_type else None})
        finally:
            await response.aclose()
    raise MediaError(f"{adapter.name}: too many redirects")
