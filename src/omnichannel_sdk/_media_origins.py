"""Where media (and an adapter's credentials) may be fetched from: declared origins only."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["has_control", "host_allowed", "media_origin_allowed"]


def host_allowed(url: str, hosts: frozenset[str]) -> bool:
    """Whether ``url`` is https on the default port to one of ``hosts`` (or a subdomain of
    one). Kept for plugins; the media download uses :func:`media_origin_allowed`."""
    return media_origin_allowed(url, hosts)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _origin(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``url`` with the scheme's default port filled in."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower().rstrip(".")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def media_origin_allowed(url: str, hosts: frozenset[str], exact: frozenset[str] = frozenset(),
                         *, http_loopback: bool = False) -> bool:
    """Whether media (and an adapter's credentials) may be fetched from ``url``.

    Allowed: an exact origin (scheme + host + port) in ``exact`` (the adapter's ``api_base``,
    entries of ``media_hosts`` written as ``https://host:port``), or https on port 443 to one
    of the host names in ``hosts`` or a subdomain. Plain http only to a loopback exact origin,
    and only with ``http_loopback`` (a test setting). Any other scheme, port or host: refused.
    """
    origin = _origin(url)
    if origin is None:
        return False
    scheme, host, port = origin
    for entry in exact:
        if _origin(entry) == origin:
            return scheme == "https" or (http_loopback and host in _LOOPBACK)
    if scheme != "https" or port != 443:
        return False
    return any(host == h or host.endswith("." + h) for h in hosts if "://" not in h)


def has_control(text: str) -> bool:
    """Whether ``text`` holds an ASCII or C1 control character."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
