"""Two small synchronisation pieces for a WebSocket's tasks, cheap when nobody waits.

A WebSocket echo costs the server a few dozen microseconds per message, and
anyio's general tools took a large share of it: a memory object stream's
``receive()`` and a ``Lock``'s ``acquire()`` each make a full trip through the
scheduler even when the item or the lock is there, and every wait allocates.
:class:`MessageQueue` and :class:`FairLock` do what the session needs and no
more: they wait only when they must, on a :class:`Wakeup` made only then. They work
on every anyio backend; the wake-up is the backend's own way to park one task:
on trio ``wait_task_rescheduled`` / ``reschedule``, on asyncio (and uvloop) a bare
future. Either skips what an :class:`anyio.Event` adds on top (its backend lookup,
and trio's ``Event`` and ``ParkingLot`` or asyncio's ``Event`` with its waiter list).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import anyio
import trio

from . import _fast_paths

T = TypeVar("T")


class Wakeup(Protocol):
    """A one-shot signal for one waiting task (what the session uses of an Event)."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> None: ...


class TrioWakeup:
    """:class:`Wakeup` for one trio task, parked and rescheduled directly.

    Like :class:`anyio.Event`: ``wait`` returns (after a checkpoint) at once if
    already set, and is cancellable; unlike it, only one task may wait at a time.
    """

    __slots__ = ("_is_set", "_task")

    def __init__(self) -> None:
        self._is_set = False
        self._task: trio.lowlevel.Task | None = None

    def set(self) -> None:
        self._is_set = True
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self) -> None:
        if self._is_set:
            await trio.lowlevel.checkpoint()
            return
        assert self._task is None, "one waiter at a time"
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED


class AsyncioWakeup:
    """:class:`Wakeup` for one asyncio task, waiting on a bare future (as :class:`TrioWakeup`)."""

    __slots__ = ("_future", "_is_set")

    def __init__(self) -> None:
        self._is_set = False
        self._future: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._is_set = True
        future = self._future
        if future is not None:
            self._future = None
            if not future.done():  # a cancelled wait leaves a cancelled future
                future.set_result(None)

    def is_set(self) -> bool:
        return self._is_set

    async def wait(self) -> None:
        if self._is_set:
            await anyio.lowlevel.checkpoint()
            return
        assert self._future is None, "one waiter at a time"
        future = self._future = asyncio.get_running_loop().create_future()
        try:
            await future
        finally:
            self._future = None


def wakeup_factory() -> Callable[[], Wakeup]:
    """What makes wake-ups for the calling task's backend: :class:`TrioWakeup` on trio,
    :class:`AsyncioWakeup` on asyncio; :class:`anyio.Event` with ``TRIO_ASGI_FAST_PATH=0``."""
    if not _fast_paths.ENABLED:
        return anyio.Event
    return TrioWakeup if _fast_paths.running_on_trio() else AsyncioWakeup


class QueueClosed(Exception):
    """No more items: the producer closed the queue and it is drained (``get``),
    or the consumer closed it (``put``)."""


class MessageQueue(Generic[T]):
    """A bounded FIFO from one producer task to one consumer task.

    ``put`` waits while ``capacity`` items are unread, so a consumer that falls
    behind slows the producer down (backpressure) instead of growing the queue.
    """

    __slots__ = (
        "_capacity",
        "_consumer_gone",
        "_items",
        "_max_bytes",
        "_new_wakeup",
        "_producer_done",
        "_readable",
        "_room",
        "_size_of",
        "bytes",
    )

    def __init__(
        self,
        capacity: int,
        max_bytes: int | None = None,
        size_of: Callable[[T], int] | None = None,
    ) -> None:
        """A queue of at most ``capacity`` items and, with ``size_of``, ``max_bytes`` bytes.

        One item is always let in when the queue is empty, whatever its size.
        """
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._max_bytes = max_bytes if max_bytes is not None and size_of is not None else None
        self._size_of = size_of
        #: The size of the queued items, by ``size_of`` (0 without it).
        self.bytes = 0
        self._items: deque[T] = deque()
        self._producer_done = False
        self._consumer_gone = False
        self._readable: Wakeup | None = None
        self._room: Wakeup | None = None
        self._new_wakeup = wakeup_factory()

    def get_nowait(self) -> T | None:
        """The next item, or None if there is none yet.

        Raises:
            QueueClosed: the queue is drained and the producer closed it.
        """
        if self._items:
            item = self._items.popleft()
            if self._size_of is not None:
                self.bytes -= self._size_of(item)
            if self._room is not None:
                self._room.set()
                self._room = None
            return item
        if self._producer_done or self._consumer_gone:
            raise QueueClosed
        return None

    async def get(self) -> T:
        """The next item, waiting for one if need be.

        Raises:
            QueueClosed: the queue is drained and the producer closed it.
        """
        while True:
            item = self.get_nowait()
            if item is not None:
                return item
            if self._readable is None:
                self._readable = self._new_wakeup()
            await self._readable.wait()

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the queue is full.

        Raises:
            QueueClosed: the consumer is gone (or the producer closed the queue).
        """
        size = self._size_of(item) if self._size_of is not None else 0
        while self._full(size) and not self._closed():
            if self._room is None:
                self._room = self._new_wakeup()
            await self._room.wait()
        if self._closed():
            raise QueueClosed
        self._items.append(item)
        self.bytes += size
        if self._readable is not None:
            self._readable.set()
            self._readable = None

    def close_producer(self) -> None:
        """No more items will come: ``get`` drains what is queued, then raises QueueClosed."""
        self._producer_done = True
        self._wake_all()

    def close_consumer(self) -> None:
        """Nobody will read: ``put`` raises QueueClosed, and queued items are dropped."""
        self._consumer_gone = True
        self._items.clear()
        self.bytes = 0
        self._wake_all()

    def _full(self, size: int) -> bool:
        items = self._items
        if not items:
            return False
        max_bytes = self._max_bytes
        return len(items) >= self._capacity or (
            max_bytes is not None and self.bytes + size > max_bytes
        )

    def _closed(self) -> bool:
        return self._producer_done or self._consumer_gone

    def _wake_all(self) -> None:
        for event in (self._readable, self._room):
            if event is not None:
                event.set()
        self._readable = self._room = None


class FairLock:
    """A first-come, first-served lock that is taken without a checkpoint when free.

    Ownership passes straight to the next waiter on release, so a task that
    releases and at once asks again queues behind the others.
    """

    __slots__ = ("_held", "_new_wakeup", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[Wakeup] = deque()
        self._new_wakeup = wakeup_factory()

    async def __aenter__(self) -> None:
        if not self._held:
            self._held = True
            return
        turn = self._new_wakeup()
        self._waiters.append(turn)
        try:
            await turn.wait()
        except BaseException:
            if turn.is_set():
                self._release()  # the lock was handed to us as we were cancelled: pass it on
            else:
                self._waiters.remove(turn)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # stays held: it now belongs to that waiter
        else:
            self._held = False
