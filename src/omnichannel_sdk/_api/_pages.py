"""Cursor pagination over the store (keyset: stable however large the table)."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from .._models import Conversation, DeadLetter
from .._store import SqlStore
from .._store._conversation_rows import CONVERSATION_COLUMNS, conversation_from_row
from ._problems import ApiProblem
from ._schemas import FieldProblem

__all__ = ["conversations_page", "dead_letters_page", "decode_cursor", "encode_cursor"]


def encode_cursor(updated_us: int, conversation_id: str) -> str:
    """An opaque cursor naming the last conversation of a page."""
    return base64.urlsafe_b64encode(orjson.dumps([updated_us, conversation_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position a cursor names; 422 (field ``cursor``) when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated, conversation_id = orjson.loads(raw)
        if isinstance(updated, int) and not isinstance(updated, bool) and isinstance(conversation_id, str):
            return updated, conversation_id
    except (ValueError, TypeError):
        pass
    raise ApiProblem(422, "invalid", "the request is invalid",
                     [FieldProblem(field="cursor", message="not a cursor this API gave")])


async def conversations_page(
    store: SqlStore, *, channel_key: str | None, status: str | None, contact_id: str | None,
    limit: int, cursor: str | None,
) -> tuple[list[Conversation], str | None]:
    """A page of conversations, most recently active first, and the next page's cursor."""
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("channel_key", channel_key), ("status", status), ("contact_id", contact_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if cursor is not None:
        updated, last_id = decode_cursor(cursor)
        args.extend([updated, last_id])
        a, b = len(args) - 1, len(args)
        where.append(f"(updated_us < ${a} OR (updated_us = ${a} AND id < ${b}))")
    args.append(limit + 1)
    sql = f"SELECT {CONVERSATION_COLUMNS}, updated_us, id FROM conversations"  # noqa: S608 - columns and placeholders only
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY updated_us DESC, id DESC LIMIT ${len(args)}"
    rows = await store._read(lambda tx: tx.fetchall(sql, *args))
    items = [conversation_from_row(r) for r in rows[:limit]]
    more = len(rows) > limit
    return items, encode_cursor(int(rows[limit - 1][3]), str(rows[limit - 1][4])) if more else None


async def dead_letters_page(store: SqlStore, *, limit: int, after: str | None
                            ) -> tuple[list[DeadLetter], str | None]:
    """A page of dead letters not yet replayed, oldest first."""
    letters = [x for x in await store.list_dead_letters() if after is None or x.id > after]
    page = letters[:limit]
    return page, page[-1].id if len(letters) > limit else None
