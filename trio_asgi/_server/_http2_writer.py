"""The one task that writes an HTTP/2 connection's output.

Every stream task and the reader queue frames in the sans-IO core
(:class:`~.._protocol._http2.H2ServerConnection`); only :class:`H2Writer` takes
``data_to_send()`` and hands it to the transport, so frames are never interleaved
mid-write and the core's output bound (``max_pending_output``) is the only buffer.
Senders wait for a *drain*: a write that began after their bytes were queued.

The writing task exists only while the connection has output or an open stream: an
idle connection (no stream, nothing queued) keeps no task, event or cancel scope for
its writer (about 3.5 KiB of an idle connection on trio, 7 KiB on asyncio, where
anyio's events and task-group tasks are larger). :meth:`H2Writer.wake` starts the task
in the connection's group when none runs; the task ends once all is written and no
stream is open, so a busy connection keeps one task and starts none per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import anyio

from .._errors import ClientDisconnected
from .._protocol._http2 import H2ServerConnection
from ._transport import Transport

#: The name of the writing task (a fixed string, not one built per task).
WRITER_TASK: Final = "trio_asgi HTTP/2 writer"


class H2Writer:
    """Drains the core's output to the transport; wakes senders once their bytes went."""

    __slots__ = (
        "_busy",
        "_core",
        "_drained",
        "_on_broken",
        "_queued",
        "_ready",
        "_running",
        "_scope",
        "_spawn",
        "_stopped",
        "_timeout",
        "_transport",
        "broken",
        "bytes_written",
        "taken",
        "written",
    )

    def __init__(
        self,
        core: H2ServerConnection,
        transport: Transport,
        timeout: float | None,
        on_broken: Callable[[], None],
    ) -> None:
        self._core = core
        self._transport = transport
        self._timeout = timeout
        self._on_broken = on_broken
        #: :meth:`wake` was called since the task last took the core's output.
        self._queued = False
        #: The events exist only while somebody waits on them.
        self._ready: anyio.Event | None = None
        self._drained: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._spawn: Callable[..., object] | None = None
        self._busy: Callable[[], bool] = _never
        #: The writing task was started and has not ended.
        self._running = False
        #: Batches taken from the core, and batches written: a sender whose bytes were
        #: queued when ``taken`` was n waits until ``written`` is n + 1.
        self.taken = 0
        self.written = 0
        self.broken = False
        self.bytes_written = 0

    def start(self, spawn: Callable[..., object], busy: Callable[[], bool]) -> None:
        """Write from now on: ``spawn(async_fn, name=...)`` starts the writing task in the
        connection's group; the task stays while ``busy()`` (a stream is open)."""
        self._spawn = spawn
        self._busy = busy
        self.wake()

    def wake(self) -> None:
        """Output is (maybe) queued in the core: write it."""
        self._queued = True
        if self._running:
            if self._ready is not None:
                self._ready.set()
        elif self._spawn is not None and not self.broken:
            self._running = True
            self._spawn(self.run, name=WRITER_TASK)

    async def wait_written(self) -> None:
        """Return once what is queued now has been handed to the transport.

        Raises:
            ClientDisconnected: the transport failed (or stalled past the write timeout).
        """
        target = self.taken + 1
        self.wake()
        while self.written < target and not self.broken:
            if self._drained is None:
                self._drained = anyio.Event()
            await self._drained.wait()
        if self.broken:
            raise ClientDisconnected("the client is gone")

    def stop(self) -> None:
        """No more writes (the connection is closing): senders still waiting are told so."""
        if self._scope is not None:
            self._scope.cancel()
        self.broken = True
        self._finish_batch()

    async def run(self) -> None:
        """The writing task: each batch of output, until stopped, cancelled, the transport
        fails, or all is written and no stream is open."""
        try:
            with anyio.CancelScope() as self._scope:
                await self._write_batches()
        finally:
            self._scope = None
            self._running = False
            # Not kept once set: a later task's wait_stopped() must not find it set.
            stopped, self._stopped = self._stopped, None
            if stopped is not None:
                stopped.set()

    async def wait_stopped(self) -> None:
        """Return once the writing task has ended (after :meth:`stop`, promptly: it cancels).

        A write cancelled by :meth:`stop` still holds the transport until its task runs
        again; closing the transport (a half-close first) must wait for that.
        """
        if self._running:
            if self._stopped is None:
                self._stopped = anyio.Event()
            await self._stopped.wait()

    async def _write_batches(self) -> None:
        core = self._core
        while not self.broken:
            if not self._queued:
                if not self._busy():
                    return  # idle: the next wake() starts a task again
                self._ready = anyio.Event()
                try:
                    await self._ready.wait()
                finally:
                    self._ready = None
                continue
            self._queued = False
            data = core.data_to_send()
            self.taken += 1
            if data:
                try:
                    await self._transport.write(data, self._timeout)
                except ClientDisconnected:
                    self.broken = True
                    self._finish_batch()
                    self._on_broken()
                    return
                self.bytes_written += len(data)
            self._finish_batch()

    def _finish_batch(self) -> None:
        self.written = self.taken
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.set()


def _never() -> bool:
    return False
