"""The event queue of the publisher's pump and the in-memory bus: asyncio.Queue's meaning."""

from __future__ import annotations

import asyncio

import pytest

from omnichannel_sdk._event_queue import EventQueue

pytestmark = pytest.mark.anyio


async def test_items_come_out_in_order_and_a_waiting_consumer_is_woken() -> None:
    queue: EventQueue[int] = EventQueue()
    assert queue.empty() and queue.qsize() == 0 and not queue.full()
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiter.done()  # nothing queued: it waits
    for i in range(5):
        queue.put_nowait(i)
    assert await asyncio.wait_for(waiter, 5) == 0
    assert [await queue.get() for _ in range(4)] == [1, 2, 3, 4]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_full_queue_refuses_like_asyncio() -> None:
    queue: EventQueue[str] = EventQueue(maxsize=2)
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert queue.full()
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("c")
    assert queue.get_nowait() == "a"
    queue.put_nowait("c")
    assert [queue.get_nowait(), queue.get_nowait()] == ["b", "c"]


async def test_join_waits_for_every_item_to_be_done() -> None:
    queue: EventQueue[int] = EventQueue()
    await asyncio.wait_for(queue.join(), 1)  # nothing put: at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()  # one of two handled
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    queue.put_nowait(3)  # a later item: a new join waits again
    again = asyncio.ensure_future(queue.join())
    await asyncio.sleep(0)
    assert not again.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(again, 1)
    with pytest.raises(ValueError, match="too many"):
        queue.task_done()


async def test_a_cancelled_consumer_does_not_swallow_an_item() -> None:
    queue: EventQueue[str] = EventQueue()
    first = asyncio.ensure_future(queue.get())
    second = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    first.cancel()  # cancelled while waiting
    await asyncio.sleep(0)
    queue.put_nowait("x")
    assert await asyncio.wait_for(second, 1) == "x"
    assert first.cancelled()

    # woken and cancelled before it ran: the wake-up passes to the next consumer
    third = asyncio.ensure_future(queue.get())
    fourth = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("y")
    third.cancel()
    assert await asyncio.wait_for(fourth, 1) == "y"
    with pytest.raises(asyncio.CancelledError):
        await third
    assert queue.empty()


async def test_a_burst_is_taken_without_waiting_between_items() -> None:
    queue: EventQueue[int] = EventQueue()
    for i in range(100):
        queue.put_nowait(i)
    # every get finds an item: it finishes at its first step, never suspending (no future)
    for i in range(100):
        step = queue.get()
        with pytest.raises(StopIteration) as done:
            step.send(None)
        assert done.value.value == i
    assert queue.empty() and not queue._getters
