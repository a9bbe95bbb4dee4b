"""Optional dependencies: what to install when a feature's extra is missing.

The core installs light (SQLite, the in-memory bus, httpx). PostgreSQL, NATS, the aiohttp
transport and the ``serve`` command each live behind an extra of ``omnichannel-sdk``; using one
without its extra fails with one error that names the extra to install.
"""

from __future__ import annotations

import importlib.util

from ._errors import ConfigurationError

__all__ = ["EXTRAS", "missing_extra", "require_extra"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("asyncpg",),
    "nats": ("nats",),
    "aiohttp": ("aiohttp",),
    "serve": ("uvicorn",),
    "testing": ("respx",),
}
"""Each extra and the modules it brings."""


def missing_extra(extra: str, what: str, cause: BaseException | None = None, *,
                  field: str | None = None) -> ConfigurationError:
    """The error for using ``what`` without the ``extra`` installed."""
    detail = f" ({cause})" if cause is not None else ""
    return ConfigurationError(
        f"{what} needs the [{extra}] extra: pip install 'omnichannel-sdk[{extra}]'{detail}",
        field=field)


def require_extra(extra: str, what: str, *, field: str | None = None) -> None:
    """Raise :func:`missing_extra`'s error unless every module of ``extra`` is importable."""
    for module in EXTRAS[extra]:
        if importlib.util.find_spec(module) is None:
            raise missing_extra(extra, what, field=field)
