"""The connections group on asyncio and uvloop: a task group that keeps less per task.

anyio's ``TaskGroup`` on asyncio wraps every task it starts: a task handle with an
event (and that event's deque and future), a wrapper coroutine, a task state and a
cancel scope of its own, a name built from the function. For a server that holds
thousands of idle keep-alive connections that was about 2 KiB of each one's
8 KiB (measured with tracemalloc; ``tests/server/test_idle_memory.py``).
:class:`AsyncioConnectionGroup` owns its tasks the same way with less: a plain
``asyncio.Task`` per connection, and one anyio :class:`~anyio.CancelScope` that the
task enters at its top, so that cancelling the group is anyio's cancellation
(delivered until the task leaves the scope, held back by shielded scopes inside,
such as the error reply of a cancelled request), not a bare ``Task.cancel()``.

What it keeps of a task group's contract:

- every task has an owner: the group holds each task until it is done, and leaving
  the ``async with`` waits for all of them;
- the group's :attr:`~AsyncioConnectionGroup.cancel_scope` covers the body of the
  ``async with`` and the wait at its end; its deadline (the graceful-shutdown
  grace period) or its cancellation, or a cancellation from outside, cancels every
  task, and the group then waits for them to finish;
- a task that fails (anything but its own cancellation) cancels the group, and the
  group raises the failures in a :class:`BaseExceptionGroup` once all tasks ended.
  Connection tasks catch their own errors (``Server._handle_connection``), so this is
  for what must not be caught there (``KeyboardInterrupt``, ``SystemExit``, a bug).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import anyio

#: What a connection task is started with (an accepted socket or stream).
_Arg = TypeVar("_Arg")


class AsyncioConnectionGroup:
    """The tasks of one server's connections on asyncio; open it with :func:`open_asyncio_group`."""

    __slots__ = ("_cancelling", "_failures", "_tasks", "cancel_scope")

    def __init__(self) -> None:
        #: Covers the body of the ``async with`` and the wait for the tasks at its end.
        self.cancel_scope = anyio.CancelScope()
        #: Each running task and the scope it runs in (cancelling the group cancels these).
        self._tasks: dict[asyncio.Task[None], anyio.CancelScope] = {}
        self._failures: list[BaseException] = []
        #: Set once the group cancels its tasks: tasks started later begin cancelled (their
        #: first wait raises, as in a cancelled task group).
        self._cancelling = False

    def start_soon(
        self,
        handler: Callable[[_Arg], Coroutine[Any, Any, None]],
        arg: _Arg,
        *,
        name: str,
    ) -> None:
        """Start ``handler(arg)`` as a task of the group."""
        scope = anyio.CancelScope()
        if self._cancelling:
            scope.cancel()  # delivered at the task's first wait
        task = asyncio.get_running_loop().create_task(self._run(scope, handler, arg), name=name)
        if not task.done():  # an eager task factory may have run it to its end already
            self._tasks[task] = scope

    async def _run(
        self,
        scope: anyio.CancelScope,
        handler: Callable[[_Arg], Coroutine[Any, Any, None]],
        arg: _Arg,
    ) -> None:
        """A task's body: ``handler(arg)`` in the task's scope; its end is accounted here.

        Here rather than in a done callback: a callback is a bound method and a list on
        every task, for as long as the task runs.
        """
        try:
            with scope:
                await handler(arg)
        except asyncio.CancelledError:
            raise  # not the scope's own: the loop's (it is closing), say
        except BaseException as exc:
            # Kept for the group to raise, not left in the task: nobody awaits it.
            self._failures.append(exc)
            self.cancel_scope.cancel()
        finally:
            self._tasks.pop(cast("asyncio.Task[None]", asyncio.current_task()), None)

    def _cancel_tasks(self) -> None:
        self._cancelling = True
        for scope in self._tasks.values():
            scope.cancel()

    async def _wait_tasks(self) -> None:
        """Until every task ended (cancellable: the caller decides).

        ``asyncio.wait`` puts a done callback on each task, but only for this wait at
        the end: an idle connection does not carry one. A task cancelled before it ever
        ran never reaches its ``finally``: being done, it is not waited for.
        """
        while running := [task for task in self._tasks if not task.done()]:
            await asyncio.wait(running)


@asynccontextmanager
async def open_asyncio_group() -> AsyncIterator[AsyncioConnectionGroup]:
    """A group for connection tasks; leaving it waits for them (see the module's docstring)."""
    group = AsyncioConnectionGroup()
    try:
        with group.cancel_scope:
            yield group
            await group._wait_tasks()
    finally:
        # Cancelled (the grace period ran out, a task failed, or from outside), or the
        # body raised: what still runs is cancelled, and then waited for, as a task
        # group does. The tasks end promptly once cancelled (closing never waits).
        group._cancel_tasks()
        with anyio.CancelScope(shield=True):
            await group._wait_tasks()
    if group._failures:
        raise BaseExceptionGroup("a connection task failed", group._failures)
