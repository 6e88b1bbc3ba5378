"""The one task that writes an HTTP/2 connection's output.

Every stream task and the reader queue frames in the sans-IO core
(:class:`~.._protocol._http2.H2ServerConnection`); only :class:`H2Writer` takes
``data_to_send()`` and hands it to the transport, so frames are never interleaved
mid-write and the core's output bound (``max_pending_output``) is the only buffer.
Senders wait for a *drain*: a write that began after their bytes were queued.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from .._errors import ClientDisconnected
from .._protocol._http2 import H2ServerConnection
from ._transport import Transport


class H2Writer:
    """Drains the core's output to the transport; wakes senders once their bytes went."""

    __slots__ = (
        "_core",
        "_drained",
        "_on_broken",
        "_ready",
        "_scope",
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
        self._ready = anyio.Event()
        self._drained = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        #: Set when :meth:`run` has returned: no write of ours is in progress any more.
        self._stopped = anyio.Event()
        #: Batches taken from the core, and batches written: a sender whose bytes were
        #: queued when ``taken`` was n waits until ``written`` is n + 1.
        self.taken = 0
        self.written = 0
        self.broken = False
        self.bytes_written = 0

    def wake(self) -> None:
        """Output is (maybe) queued in the core: write it."""
        self._ready.set()

    async def wait_written(self) -> None:
        """Return once what is queued now has been handed to the transport.

        Raises:
            ClientDisconnected: the transport failed (or stalled past the write timeout).
        """
        target = self.taken + 1
        self.wake()
        while self.written < target and not self.broken:
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
        """Until stopped, cancelled or the transport fails: write each batch of output."""
        try:
            with anyio.CancelScope() as self._scope:
                await self._write_batches()
        finally:
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`run` has returned (after :meth:`stop`, promptly: it cancels).

        A write cancelled by :meth:`stop` still holds the transport until its task runs
        again; closing the transport (a half-close first) must wait for that.
        """
        await self._stopped.wait()

    async def _write_batches(self) -> None:
        core = self._core
        while not self.broken:
            await self._ready.wait()
            self._ready = anyio.Event()
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
        drained, self._drained = self._drained, anyio.Event()
        drained.set()
