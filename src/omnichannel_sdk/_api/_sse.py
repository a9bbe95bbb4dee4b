"""``GET /api/v1/events``: Server-Sent Events of the feed, resumable with ``Last-Event-ID``.

A stream reads the feed's log a page at a time (``[api] sse_buffer`` events at most) and writes
each page before it reads the next, so a slow client holds no more than one page in memory and
only slows itself. Idle streams get a keep-alive comment every ``[api] sse_keepalive`` seconds
(proxies close silent connections). Streams do not acknowledge: they are readers, not consumers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .._events import event_adapter
from ._operation import ApiContext
from ._problems import ApiProblem, problem_response
from ._schemas import FieldProblem

__all__ = ["event_stream", "format_event"]


def format_event(seq: int, type_: str, data: bytes) -> bytes:
    """One Server-Sent Event (the JSON holds no newline, so one ``data:`` line)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, type_.encode(), data)


def _resume_point(request: Request) -> int | None:
    for name, raw in (("Last-Event-ID", request.headers.get("last-event-id")),
                      ("after", request.query_params.get("after"))):
        if raw is None:
            continue
        raw = raw.strip()
        if not raw.isdigit() or len(raw) > 18:
            raise ApiProblem(422, "invalid", "the request is invalid",
                             [FieldProblem(field=name, message="the seq of an event (an integer)")])
        return int(raw)
    return None


async def event_stream(api: ApiContext, request: Request) -> Response:
    """The streaming answer (or a problem: bad resume point 422, too many streams 429)."""
    after = _resume_point(request)
    feed = api.hub._feed
    if api.streams >= api.settings.sse_max_clients:
        return problem_response(ApiProblem(429, "too_many_streams",
                                           f"{api.settings.sse_max_clients} event streams are open",
                                           headers={"retry-after": "5"}))
    start = await feed.last_seq() if after is None else after
    api.streams += 1

    async def body() -> AsyncIterator[bytes]:
        try:
            seq = start
            yield b"retry: 2000\n: connected\n\n"
            quiet_since = time.monotonic()
            while api.hub.is_open:
                events = await feed.after(seq, api.settings.sse_buffer)
                for event in events:
                    assert event.seq is not None
                    seq = event.seq
                    yield format_event(seq, event.type, event_adapter.dump_json(event))
                if events:
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since >= api.settings.sse_keepalive:
                    yield b": keep-alive\n\n"
                    quiet_since = time.monotonic()
                await feed.wait(api.settings.sse_keepalive)
        finally:
            api.streams -= 1

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
