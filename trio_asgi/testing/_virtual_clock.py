"""Virtual time on asyncio: an event loop that jumps its clock whenever every task waits.

Theory of operation: asyncio's loop asks its selector to block, with the time until
the next timer as the timeout, exactly when nothing is ready to run. At that moment
every task waits for a timer or for I/O. :class:`VirtualClockEventLoop` polls the
real selector without waiting (so real I/O is never missed), and if nothing is
ready it moves its clock forward to the next timer instead of sleeping. That is
trio's ``MockClock(autojump_threshold=0)``: a test that waits for a 30-second
timeout takes no time, and a run depends only on its inputs.

:func:`wait_all_tasks_blocked` is the one idle point both backends share: on trio it
is :func:`trio.testing.wait_all_tasks_blocked`; on this loop, waiters are woken at
the moment the clock would otherwise jump, so waiting never moves the clock (as on
trio, where idle waiters come before the autojump). anyio's own version polls with
``sleep(0.1)`` on asyncio, which under a virtual clock would let 0.1 s pass.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import trio
import trio.testing

from .._server._fast_paths import running_on_trio

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike


class _AutojumpSelector(selectors.BaseSelector):
    """A real selector that never blocks for a timeout: it tells the loop it is idle."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()
        self.loop: VirtualClockEventLoop | None = None

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._inner.select(0)
        if events or (timeout is not None and timeout <= 0) or self.loop is None:
            return events
        # Nothing ready, nothing due: every task waits.
        if self.loop._idle(timeout):
            return []
        # No timer at all and nobody to wake: only real I/O (a thread calling
        # call_soon_threadsafe, a socket) can end this wait, so wait for it for real.
        return self._inner.select(None)


class VirtualClockEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock is virtual and jumps when every task waits.

    ``loop.time()`` starts at 0.0 and moves only when no callback is ready and no I/O
    is ready: it then jumps straight to the next timer, so timeouts fire at once and
    in order, without real sleeping. Ready callbacks and ready I/O always run before
    the clock moves. Waiting for something that no timer will end (an event nobody
    sets, with no deadline) blocks for real, as on trio's ``MockClock``; and as there,
    a worker thread still busy does not hold the clock back from the next timer.

    Use it wherever asyncio takes a loop factory: ``asyncio.Runner(loop_factory=...)``,
    or anyio's pytest plugin, with ``("asyncio", {"loop_factory": VirtualClockEventLoop})``
    as the ``anyio_backend``.

    Example:
        >>> import asyncio
        >>> async def main():
        ...     loop = asyncio.get_running_loop()
        ...     await asyncio.sleep(3600)
        ...     return loop.time()
        >>> with asyncio.Runner(loop_factory=VirtualClockEventLoop) as runner:
        ...     runner.run(main())
        3600.0
    """

    def __init__(self) -> None:
        selector = _AutojumpSelector()
        super().__init__(selector)
        self._virtual_time = 0.0
        self._idle_waiters: list[asyncio.Future[None]] = []
        selector.loop = self

    def time(self) -> float:
        """The virtual time, in seconds since the loop was made."""
        return self._virtual_time

    async def wait_all_tasks_blocked(self) -> None:
        """Return once every other task waits (for a timer, I/O or another task).

        The clock does not move while a task waits here: the waiters are woken at the
        moment it would otherwise jump.
        """
        waiter: asyncio.Future[None] = self.create_future()
        self._idle_waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._idle_waiters:  # cancelled before it was woken
                self._idle_waiters.remove(waiter)

    def _idle(self, timeout: float | None) -> bool:
        """Called by the selector when nothing can run. Returns False to block for real."""
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            return True
        if timeout is None:
            return False
        # Jump to the next timer's own time, not to time() + timeout, so a deadline
        # computed as now + delay is reached exactly (no float drift). The loop has
        # dropped cancelled timers from the head of its heap before asking.
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled", [])
        now = self._virtual_time
        if scheduled and scheduled[0].when() - now <= timeout:
            self._virtual_time = max(now, scheduled[0].when())
        else:  # the loop caps its wait (at a day): jump that far, then ask again
            self._virtual_time = now + timeout
        return True


async def wait_all_tasks_blocked() -> None:
    """Wait until every other task is blocked, on trio or asyncio, without moving a virtual clock.

    On trio this is :func:`trio.testing.wait_all_tasks_blocked` (under
    ``MockClock(autojump_threshold=0)`` the clock does not move either). On a
    :class:`VirtualClockEventLoop` it waits for the loop to go idle. On any other
    asyncio loop it is :func:`anyio.wait_all_tasks_blocked`.
    """
    if running_on_trio():
        await trio.testing.wait_all_tasks_blocked()
        return
    loop = asyncio.get_running_loop()
    if isinstance(loop, VirtualClockEventLoop):
        await loop.wait_all_tasks_blocked()
    else:
        await anyio.wait_all_tasks_blocked()
