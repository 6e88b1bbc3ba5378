"""MessageQueue and FairLock, the WebSocket session's cheap handoffs, on both backends."""

from __future__ import annotations

import anyio
import pytest

from trio_asgi._server import _fast_paths
from trio_asgi._server._handoff import (
    AsyncioWakeup,
    FairLock,
    MessageQueue,
    QueueClosed,
    TrioWakeup,
    wakeup_factory,
)

pytestmark = pytest.mark.anyio


async def test_items_come_out_in_order_without_waiting() -> None:
    queue: MessageQueue[int] = MessageQueue(3)
    for item in (1, 2, 3):
        await queue.put(item)
    with anyio.CancelScope() as scope:
        scope.cancel()
        # Queued items are returned without a checkpoint, even in a cancelled scope.
        assert [await queue.get() for _ in range(3)] == [1, 2, 3]
    assert queue.get_nowait() is None


async def test_a_full_queue_holds_the_producer_back() -> None:
    queue: MessageQueue[int] = MessageQueue(2)
    progress: list[int] = []

    async def produce() -> None:
        for item in range(5):
            await queue.put(item)
            progress.append(item)

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        assert progress == [0, 1]  # blocked on the third item: the bound holds
        assert await queue.get() == 0
        await anyio.wait_all_tasks_blocked()
        assert progress == [0, 1, 2]
        assert [await queue.get() for _ in range(4)] == [1, 2, 3, 4]


async def test_a_waiting_consumer_is_woken_by_put() -> None:
    queue: MessageQueue[str] = MessageQueue(1)
    got: list[str] = []

    async def consume() -> None:
        got.append(await queue.get())

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        await queue.put("hello")
    assert got == ["hello"]


async def test_closing_the_producer_side_drains_then_ends() -> None:
    queue: MessageQueue[int] = MessageQueue(4)
    await queue.put(7)
    queue.close_producer()
    assert await queue.get() == 7
    with pytest.raises(QueueClosed):
        await queue.get()
    with pytest.raises(QueueClosed):
        await queue.put(8)


async def test_closing_the_producer_side_wakes_a_waiting_consumer() -> None:
    queue: MessageQueue[int] = MessageQueue(1)
    outcome: list[str] = []

    async def consume() -> None:
        try:
            await queue.get()
        except QueueClosed:
            outcome.append("closed")

    async with anyio.create_task_group() as group:
        group.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        queue.close_producer()
    assert outcome == ["closed"]


async def test_a_gone_consumer_drops_items_and_frees_a_blocked_producer() -> None:
    queue: MessageQueue[int] = MessageQueue(1)
    await queue.put(1)
    outcome: list[str] = []

    async def produce() -> None:
        try:
            await queue.put(2)
        except QueueClosed:
            outcome.append("dropped")

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        queue.close_consumer()
    assert outcome == ["dropped"]
    with pytest.raises(QueueClosed):
        queue.get_nowait()


async def test_a_cancelled_get_leaves_the_queue_usable() -> None:
    queue: MessageQueue[int] = MessageQueue(1)
    with anyio.move_on_after(0):
        await queue.get()
    await queue.put(5)
    assert await queue.get() == 5


def test_a_queue_needs_room_for_one_item() -> None:
    with pytest.raises(ValueError, match="capacity"):
        MessageQueue[int](0)


async def test_a_free_lock_is_taken_without_a_checkpoint() -> None:
    lock = FairLock()
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with lock:  # would raise Cancelled if taking it were a checkpoint
            pass
    assert not scope.cancelled_caught


async def test_the_lock_goes_to_waiters_in_arrival_order() -> None:
    lock = FairLock()
    order: list[str] = []

    async def take(name: str) -> None:
        async with lock:
            order.append(name)
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group, lock:
        for name in ("a", "b", "c"):
            group.start_soon(take, name)
            await anyio.wait_all_tasks_blocked()
        order.append("holder")
    assert order == ["holder", "a", "b", "c"]


async def test_a_cancelled_waiter_does_not_keep_the_lock() -> None:
    lock = FairLock()
    taken: list[str] = []

    async def take(name: str) -> None:
        async with lock:
            taken.append(name)

    async with anyio.create_task_group() as group, lock:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(take, "cancelled")
            await anyio.wait_all_tasks_blocked()
            doomed.cancel_scope.cancel()
        group.start_soon(take, "next")
        await anyio.wait_all_tasks_blocked()
    assert taken == ["next"]
    async with lock:  # free again
        pass


async def test_a_waiter_cancelled_as_the_lock_reaches_it_passes_it_on() -> None:
    lock = FairLock()
    taken: list[str] = []

    async def take(name: str) -> None:
        async with lock:
            taken.append(name)

    async with anyio.create_task_group() as group, anyio.create_task_group() as doomed:
        await lock.__aenter__()
        doomed.start_soon(take, "first")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(take, "second")
        await anyio.wait_all_tasks_blocked()
        await lock.__aexit__(None, None, None)  # hands the lock to "first"...
        doomed.cancel_scope.cancel()  # ...which is cancelled before it runs
    assert taken in (["second"], ["first", "second"])
    async with lock:
        pass


async def test_a_byte_bound_holds_the_producer_back_but_always_lets_one_in() -> None:
    queue: MessageQueue[bytes] = MessageQueue(100, max_bytes=10, size_of=len)
    await queue.put(b"x" * 25)  # larger than the bound, but the queue was empty
    assert queue.bytes == 25
    done = anyio.Event()

    async def producer() -> None:
        await queue.put(b"y" * 3)
        await queue.put(b"z" * 7)
        done.set()

    async with anyio.create_task_group() as nursery:
        nursery.start_soon(producer)
        await anyio.wait_all_tasks_blocked()
        assert queue.bytes == 25
        assert not done.is_set()
        assert queue.get_nowait() == b"x" * 25
        await done.wait()
    assert queue.bytes == 10  # 3 + 7: exactly the bound
    assert await queue.get() == b"y" * 3
    assert queue.bytes == 7


# --- the wake-up each backend gets ---------------------------------------------------------


async def test_the_wake_up_is_the_backends_own_parking(
    anyio_backend: str,
) -> None:
    """Each backend's own parking; anyio's Event with the fast paths off (the switch)."""
    expected: type[object] = TrioWakeup if anyio_backend == "trio" else AsyncioWakeup
    if not _fast_paths.ENABLED:
        expected = anyio.Event
    assert wakeup_factory() is expected
    assert MessageQueue[int](1)._new_wakeup is expected


async def test_a_wake_up_set_before_the_wait_still_checkpoints() -> None:
    wakeup = wakeup_factory()()
    wakeup.set()
    assert wakeup.is_set()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await wakeup.wait()  # returns at once, but a cancelled scope sees the checkpoint
    assert scope.cancelled_caught


async def test_a_cancelled_wake_up_wait_leaves_no_waiter_behind() -> None:
    wakeup = wakeup_factory()()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await wakeup.wait()
    assert scope.cancelled_caught
    wakeup.set()  # a parked task left behind would be rescheduled twice here
    await wakeup.wait()
    assert wakeup.is_set()
