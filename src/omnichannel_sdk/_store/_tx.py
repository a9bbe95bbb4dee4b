"""What the SQL store logic is written against: a tiny transaction protocol, the base its parts
share, and how values are kept in rows.

Statements use ``$n`` placeholders (PostgreSQL style); the SQLite backend rewrites them. Times
are integer microseconds since the epoch (UTC) in both databases; models are stored as JSON
beside the columns that are queried.
"""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .._models import Message
    from ._base import IngestOutcome, StatusOutcome

__all__ = ["UNREAD", "FeedLog", "SqlBase", "Tx", "Unread", "dump", "from_us", "now_us", "to_us"]

T = TypeVar("T")


class Unread(enum.Enum):
    """A value not read yet (beside ``None``: read, and absent)."""

    UNREAD = enum.auto()


UNREAD = Unread.UNREAD


def to_us(value: datetime | None) -> int | None:
    """A datetime as integer microseconds since the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1_000_000)


def from_us(value: int | None) -> datetime | None:
    """Integer microseconds since the epoch as an aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def now_us() -> int:
    """The current time in microseconds."""
    return time.time_ns() // 1000


def dump(model: Any) -> str:
    """A model as the JSON the store keeps (the model's own serializer: ``model_dump_json``'s
    JSON without its per-call argument handling)."""
    return str(model.__pydantic_serializer__.to_json(model).decode())


class Tx(Protocol):
    """The few operations the shared logic needs from a database transaction."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    async def fetchone(self, sql: str, *args: Any) -> Sequence[Any] | None:
        """The first row, or ``None``."""

    async def fetchall(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Every row."""


class FeedLog(Protocol):
    """What the store's writes append to the durable feed's log inside their transactions
    (:class:`~omnichannel_sdk._store._feed.StoreFeedLog`)."""

    async def append_ingest(self, tx: Tx, outcomes: Sequence[IngestOutcome]) -> None:
        """The events of stored inbound messages."""

    async def append_status(self, tx: Tx, outcomes: Sequence[StatusOutcome]) -> None:
        """The events of applied receipts."""

    async def append_queued(self, tx: Tx, message: Message) -> None:
        """The event of a queued outbound message."""

    async def append_sent(self, tx: Tx, message: Message, previous: str) -> None:
        """The events of a vendor's acceptance."""

    async def append_failed(self, tx: Tx, message: Message) -> None:
        """The event of a send given up."""


class SqlBase(abc.ABC):
    """What every part of the SQL store relies on: ``_write`` and ``_read`` transactions."""

    lock_clause = ""
    """Appended to reads that precede a write of the same row (``FOR UPDATE`` where needed)."""

    feed_log: FeedLog | None = None
    """The durable feed's log, when the hub keeps it in this store: writes append their events
    to it inside their own transactions."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` in a write transaction (retried or batched as the backend needs)."""

    @abc.abstractmethod
    async def _read(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` against a consistent read view."""
