"""Reassembly of concatenated inbound SMS that a vendor delivers part by part (Vonage).

Parts are kept in the hub's shared key-value store, so they may arrive in any order and on any
gateway process. The process that stores the last missing part assembles the message (a
``kv_add`` lock makes exactly one do it). A background task flushes groups whose parts stopped
coming after ``timeout`` seconds: what arrived is stored, flagged ``complete: false`` with the
missing part numbers, so nothing verified is lost. A part that turns up after its group was
stored becomes a message of its own, flagged ``late``; a vendor retry of a stored part is
dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from omnichannel_sdk import KeyValueStore

__all__ = ["ConcatAssembler", "ConcatPart"]

log = logging.getLogger("omnichannel_sms.concat")

_KEEP_PARTS = 7 * 86400.0
_KEEP_DONE = 2 * 86400.0  # longer than the vendor's day of retries


@dataclass
class ConcatPart:
    """One part of a concatenated SMS, as much of it as reassembly needs."""

    sender: str
    """The customer's E.164 number."""
    ref: str
    """The sender's concatenation reference (``concat-ref``)."""
    number: int
    """This part's position, from 1 (``concat-part``)."""
    total: int
    """How many parts the whole has (``concat-total``)."""
    message_id: str
    """The vendor id of this part."""
    text: str
    """This part's text."""
    recipient: str | None = None
    """Our number."""
    timestamp: str | None = None
    """The vendor's time of this part."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Vendor fields of this part worth keeping."""


Ingest = Callable[[list[ConcatPart], dict[str, Any]], Awaitable[None]]
"""Stores a group of parts as one message: ``(parts in order, concat metadata)``."""


class ConcatAssembler:
    """Collects parts under ``sms-concat:{channel_key}:`` and hands whole groups to ``ingest``."""

    def __init__(self, kv: KeyValueStore, channel_key: str, ingest: Ingest, timeout: float) -> None:
        self.kv = kv
        self.prefix = f"sms-concat:{channel_key}:"
        self.ingest = ingest
        self.timeout = timeout
        self._tasks: set[asyncio.Task[Any]] = set()

    def _group(self, part: ConcatPart) -> str:
        return f"{self.prefix}{part.sender}:{part.ref}:{part.total}:"

    def submit(self, part: ConcatPart, spawner: Callable[[Any], asyncio.Task[Any]] | None = None,
               ) -> asyncio.Task[Any]:
        """Collect ``part`` in the background (for the synchronous webhook parser), through
        ``spawner`` (the hub's tracked background work) when given."""
        coroutine = self.add(part)
        if spawner is not None:
            task = spawner(coroutine)
        else:
            task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("collecting an SMS part failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for parts being collected right now."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def add(self, part: ConcatPart) -> None:
        """Store ``part``; assemble its group when it was the last one missing."""
        group = self._group(part)
        done = await self.kv.kv_get(group + "done")
        if done is not None:
            if part.number in orjson.loads(done):
                return  # a vendor retry of a part already stored
            await self.ingest([part], {"ref": part.ref, "total": part.total, "parts": [part.number],
                                       "complete": False, "late": True,
                                       "missing": _missing([part.number], part.total)})
            return
        await self.kv.kv_set(f"{group}p{part.number:05d}", orjson.dumps(asdict(part)).decode(),
                             ttl=_KEEP_PARTS)
        await self.kv.kv_add(group + "first", repr(time.time()), ttl=_KEEP_PARTS)
        stored = await self.kv.kv_scan(group + "p")
        if len({key for key, _ in stored}) >= part.total:
            await self._store(group, stored, complete=True)

    async def _store(self, group: str, stored: list[tuple[str, str]], *, complete: bool) -> None:
        parts: dict[int, ConcatPart] = {}
        for _, value in stored:
            data = orjson.loads(value)
            parts.setdefault(int(data["number"]), ConcatPart(**data))
        ordered = [parts[n] for n in sorted(parts)]
        if not ordered:
            return
        numbers = [p.number for p in ordered]
        if not await self.kv.kv_add(group + "done", orjson.dumps(numbers).decode(), ttl=_KEEP_DONE):
            return  # another process stores this group
        total = ordered[0].total
        meta = {"ref": ordered[0].ref, "total": total, "parts": numbers,
                "complete": complete and numbers == list(range(1, total + 1)),
                "missing": _missing(numbers, total)}
        try:
            await self.ingest(ordered, meta)
        except BaseException:
            await self.kv.kv_delete(group + "done")  # the flush tries again
            raise
        for key, _ in stored:
            await self.kv.kv_delete(key)
        await self.kv.kv_delete(group + "first")

    async def flush(self, now: float | None = None) -> int:
        """Store every group whose first part is older than ``timeout``; returns how many."""
        now = time.time() if now is None else now
        groups: dict[str, dict[str, Any]] = {}
        for key, value in await self.kv.kv_scan(self.prefix):
            group, _, leaf = key.rpartition(":")
            entry = groups.setdefault(group + ":", {"parts": []})
            if leaf == "first":
                entry["first"] = value
            elif leaf == "done":
                entry["done"] = True
            elif leaf.startswith("p"):
                entry["parts"].append((key, value))
        flushed = 0
        for group, entry in groups.items():
            if entry.get("done") or not entry["parts"]:
                continue
            try:
                first = float(entry.get("first") or 0)
            except ValueError:
                first = 0.0
            if now - first >= self.timeout:
                await self._store(group, entry["parts"], complete=False)
                flushed += 1
        return flushed

    async def run(self, interval: float | None = None) -> None:
        """Flush forever (the adapter's background task)."""
        pause = interval if interval is not None else max(0.05, min(self.timeout / 4, 30.0))
        while True:
            await asyncio.sleep(pause)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("flushing concatenated SMS parts failed")

    async def close(self) -> None:
        """Let parts being collected finish."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5)


def _missing(numbers: list[int], total: int) -> list[int]:
    have = set(numbers)
    return [n for n in range(1, total + 1) if n not in have]
