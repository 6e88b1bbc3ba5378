"""A bounded pool of daemon threads for WSGI app calls, on trio and asyncio alike.

Why not ``anyio.to_thread.run_sync``: on asyncio its worker threads are not daemon
threads, so one app call that never returns (a stuck database query) would keep the
process alive after the server finished, and the grace period would mean nothing.
Here every thread is a daemon thread: past the grace period a stuck call is
abandoned (a thread cannot be killed), the server exits, and the thread ends with
the process.

At most ``size`` calls run at once (an anyio :class:`~anyio.CapacityLimiter`; a
request waiting for a thread is a parked task, not a thread), and at most ``size``
threads exist while no call was abandoned. Threads are started on demand and then
kept, each waiting on one shared job queue.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

logger = logging.getLogger("trio_asgi")

T = TypeVar("T")


def default_thread_count() -> int:
    """Four threads per CPU core, at least 4 and at most 32.

    Gunicorn's gthread worker recommends 2-4 threads per core; we take the top of
    that range since one process serves everything here, and a WSGI thread also
    waits on the client (backpressure holds the thread while a slow client reads).
    """
    return max(4, min(32, 4 * (os.cpu_count() or 1)))


class _Job(Generic[T]):
    __slots__ = ("args", "done", "error", "func", "token", "value")

    def __init__(self, func: Callable[..., T], args: tuple[object, ...]) -> None:
        self.func = func
        self.args = args
        self.done = anyio.Event()
        self.token = anyio.lowlevel.current_token()
        self.value: T | None = None
        self.error: BaseException | None = None

    def call(self) -> None:
        """In the worker thread: the call itself."""
        try:
            self.value = self.func(*self.args)
        except Exception as exc:
            self.error = exc
        except BaseException as exc:  # SystemExit from an app must not stop the server
            self.error = RuntimeError(f"the WSGI app raised {type(exc).__name__}")
            self.error.__cause__ = exc

    def report(self) -> None:
        """In the worker thread, once it counts as idle again: wake the waiting task."""
        try:
            anyio.from_thread.run_sync(self.done.set, token=self.token)
        except RuntimeError:
            pass  # the event loop is gone (an abandoned call): nobody waits for the result


class AppThreads:
    """Runs blocking calls on at most ``size`` daemon threads; see the module docstring."""

    __slots__ = ("_idle", "_jobs", "_limiter", "_lock", "busy", "size", "started")

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[_Job[object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._limiter: anyio.CapacityLimiter | None = None
        #: Threads started so far.
        self.started = 0
        #: Calls running right now (including abandoned ones).
        self.busy = 0

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Call ``func(*args)`` in a thread; cancelling the wait abandons the call."""
        if self._limiter is None:
            # Made on first use: a limiter belongs to the event loop that runs it.
            self._limiter = anyio.CapacityLimiter(self.size)
        async with self._limiter:
            job: _Job[T] = _Job(func, args)
            self._submit(job)  # type: ignore[arg-type]
            await job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[return-value]

    def _submit(self, job: _Job[object]) -> None:
        with self._lock:
            self.busy += 1
            spawn = self._idle == 0
            if spawn:
                self.started += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="trio-asgi WSGI", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            job.call()
            # Idle before the waiting task learns the result: the next job it lets in
            # must find this thread idle, or a thread too many would start.
            with self._lock:
                self.busy -= 1
                self._idle += 1
            job.report()
