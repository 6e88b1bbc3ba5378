"""A bounded pool of daemon threads for WSGI app calls, on trio and asyncio alike.

Why not ``anyio.to_thread.run_sync``: on asyncio its worker threads are not daemon
threads, so one app call that never returns (a stuck database query) would keep the
process alive after the server finished, and the grace period would mean nothing.
Here every thread is a daemon thread: past the grace period a stuck call is
abandoned (a thread cannot be killed), the server exits, and the thread ends with
the process.

The thread talks to the event loop through a :class:`Bridge`, served by the
request's own task. At most ``size`` calls run at once (an anyio
:class:`~anyio.CapacityLimiter`; a request waiting for a thread is a parked task,
not a thread), and at most ``size`` threads exist while no call was abandoned.
Threads are started on demand and then kept, each waiting on one shared job queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import trio

from ._errors import ClientDisconnected

logger = logging.getLogger("trio_asgi")

T = TypeVar("T")


def default_thread_count() -> int:
    """Four threads per CPU core, at least 4 and at most 32.

    Gunicorn's gthread worker recommends 2-4 threads per core; we take the top of
    that range since one process serves everything here, and a WSGI thread also
    waits on the client (backpressure holds the thread while a slow client reads).
    """
    return max(4, min(32, 4 * (os.cpu_count() or 1)))


class Bridge:
    """One request's line between its app thread and its own task in the event loop.

    The thread calls :meth:`call` to have the request's task run ``await afn(*args)``
    (send a chunk, receive one) and blocks until it is done; the task serves those
    calls in :meth:`serve` until the thread says, with :meth:`finish`, that the app
    call is over. So the I/O runs in the request's own task (its deadlines and
    cancellation apply; no task per call), and a call costs one wake-up each way.

    If the task stops serving (cancelled past the grace period), every call the
    thread makes from then on fails at once with :class:`ClientDisconnected`.
    """

    __slots__ = ("_closed", "_in_call", "_notify", "_pending", "_reply", "_wake")

    def __init__(self) -> None:
        self._notify = _loop_notifier()
        self._wake = anyio.Event()
        #: The thread's last message: ``(afn, args)`` for a call, ``(None, outcome)`` at the end.
        self._pending: tuple[Callable[..., Awaitable[Any]] | None, Any] | None = None
        self._reply: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
        self._closed = False
        self._in_call = False

    # --- in the app's thread ----------------------------------------------------------------

    def call(self, afn: Callable[..., Awaitable[T]], *args: object) -> T:
        """Run ``await afn(*args)`` in the request's task; block until it is done."""
        self._post((afn, args))
        ok, value = self._reply.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def finish(self, ok: bool, value: object) -> None:
        """The app call is over: hand its outcome to the request's task (no waiting)."""
        self._post((None, (ok, value)))

    def _post(self, message: tuple[Callable[..., Awaitable[Any]] | None, Any]) -> None:
        self._pending = message
        try:
            self._notify(self._wake_up)
        except RuntimeError:  # the event loop is gone (an abandoned call)
            self._pending = None
            self._reply.put((False, ClientDisconnected("the server stopped serving")))

    # --- in the event loop ------------------------------------------------------------------

    def _wake_up(self) -> None:
        if self._closed:
            self._refuse_pending()
        else:
            self._wake.set()

    def _refuse_pending(self) -> None:
        if self._in_call or (self._pending is not None and self._pending[0] is not None):
            self._reply.put((False, ClientDisconnected("the server stopped serving")))
        self._pending = None
        self._in_call = False

    async def serve(self) -> tuple[bool, Any]:
        """Serve the thread's calls until it finishes; return ``(ok, value)`` of the app call."""
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                message, self._pending = self._pending, None
                assert message is not None
                afn, payload = message
                if afn is None:
                    return payload  # type: ignore[no-any-return]
                self._in_call = True
                try:
                    value = await afn(*payload)
                except Exception as exc:
                    self._reply.put((False, exc))
                else:
                    self._reply.put((True, value))
                self._in_call = False
        finally:
            self._closed = True
            self._refuse_pending()  # cancelled: a thread waiting on us must not wait forever


def _loop_notifier() -> Callable[[Callable[[], None]], object]:
    """The running event loop's thread-safe "call this soon", which does not wait."""
    try:
        return trio.lowlevel.current_trio_token().run_sync_soon
    except RuntimeError:
        return asyncio.get_running_loop().call_soon_threadsafe


class _Job:
    __slots__ = ("args", "bridge", "func")

    def __init__(
        self, bridge: Bridge, func: Callable[..., object], args: tuple[object, ...]
    ) -> None:
        self.bridge = bridge
        self.func = func
        self.args = args

    def call(self) -> tuple[bool, object]:
        """In the worker thread: the call itself, as ``(ok, value or exception)``."""
        try:
            return True, self.func(*self.args)
        except Exception as exc:
            return False, exc
        except BaseException as exc:  # SystemExit from an app must not stop the server
            error = RuntimeError(f"the WSGI app raised {type(exc).__name__}")
            error.__cause__ = exc
            return False, error


class AppThreads:
    """Runs blocking calls on at most ``size`` daemon threads; see the module docstring."""

    __slots__ = ("_idle", "_jobs", "_limiter", "_lock", "busy", "size", "started")

    def __init__(self, size: int) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._limiter: anyio.CapacityLimiter | None = None
        #: Threads started so far.
        self.started = 0
        #: Calls running right now (including abandoned ones).
        self.busy = 0

    async def run(self, bridge: Bridge, func: Callable[..., T], *args: object) -> T:
        """Call ``func(*args)`` in a thread, serving its ``bridge`` calls meanwhile.

        Cancelling abandons the call (a thread cannot be stopped): its next call
        through ``bridge`` raises :class:`ClientDisconnected`.
        """
        if self._limiter is None:
            # Made on first use: a limiter belongs to the event loop that runs it.
            self._limiter = anyio.CapacityLimiter(self.size)
        async with self._limiter:
            self._submit(_Job(bridge, func, args))
            ok, value = await bridge.serve()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _submit(self, job: _Job) -> None:
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
            ok, value = job.call()
            # Idle before the waiting task learns the result: the next job it lets in
            # must find this thread idle, or a thread too many would start.
            with self._lock:
                self.busy -= 1
                self._idle += 1
            job.bridge.finish(ok, value)
            del job, value  # hold nothing of the request while idle
