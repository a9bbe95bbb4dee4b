"""Stores: SQLite (embedded default) and PostgreSQL behind one async interface."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import IngestItem, IngestOutcome, Job, RawPayload, StatusOutcome, Store
from ._sql import SqlStore

__all__ = [
    "IngestItem",
    "IngestOutcome",
    "Job",
    "RawPayload",
    "SqlStore",
    "StatusOutcome",
    "Store",
    "store_from_url",
]


def store_from_url(url: str) -> SqlStore:
    """A store for ``sqlite:///…`` or ``postgresql://…`` (``postgres://`` also accepted)."""
    if url.startswith("sqlite:"):
        from ._sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .._extras import require_extra

        require_extra("postgres", "a PostgreSQL store", field="store")
        from ._postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigurationError(f"unsupported store URL scheme in {url.split(':', 1)[0]!r}",
                             field="store")
