"""The hot path on asyncio and uvloop: a connection's event-loop transport driven directly.

Under asyncio, anyio's TCP socket stream is an ``asyncio.Transport`` with a small
protocol behind it, and its stream methods pay per call for generality we do not
need: ``receive()`` resumes reading before every wait and pauses it after (two
``epoll_ctl`` syscalls per request on the selector loop), ``send()`` always
checkpoints and waits on an event. :class:`AsyncioTransport` keeps
:class:`~trio_asgi._server._transport.Transport`'s contract exactly and puts its
own :class:`_ConnectionProtocol` behind the same event-loop transport:

- reading stays on while fewer than :data:`READ_LIMIT` bytes wait in our buffer and
  is paused above it, so a client that pipelines without end makes us hold at most
  ``READ_LIMIT`` plus one read of the loop (256 KiB on both loops), never more;
- ``write()`` calls ``transport.write()``, which sends at once when the transport's
  buffer is empty; with write-buffer limits of zero, the protocol is paused exactly
  when something stayed in user space, and :meth:`AsyncioTransport.write` then waits
  for ``resume_writing``, i.e. until the kernel took everything. Large writes go in
  :data:`~._transport.WRITE_SLICE` pieces (a shorter tail joins the last one), each
  of which must drain within the write timeout, so the transport never buffers
  more than two slices;
- EOF and ``connection_lost`` become ``b""`` for a read and
  :class:`~trio_asgi.ClientDisconnected` for a write;
- an operation that completes at once does not go through the scheduler; every
  :data:`YIELD_EVERY`-th one still checkpoints, as on the trio fast path.

Deadlines are anyio cancel scopes, as everywhere else; a waiting read or drain is
one future that the protocol completes.

How we reach the transport: anyio does not expose a stream's event-loop transport,
only its socket, and the transport owns that socket (it is registered with the
loop; nobody else may read it). So we take the transport from anyio's stream
(``SocketStream._transport``, a private attribute stable across anyio 3 and 4) and
hand it our protocol through the public ``set_protocol()``, moving over whatever
anyio's protocol had already buffered. This is the one private access, and
:func:`asyncio_transport_for` checks every assumption it makes (the stream's
class, the transport's methods, the protocol found through the public
``get_protocol()``); when one does not hold, the connection falls back to the
generic :class:`~._transport.Transport`, and ``test_asyncio_transport.py`` asserts
that the fast path is really taken on both loops, so an anyio change that breaks
it fails a test instead of silently costing speed. Unix sockets on asyncio are
plain sockets in anyio (no event-loop transport) and stay on the generic path.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

from ._transport import READ_SIZE, WRITE_SLICE, ReadTimeout, Transport

#: Reading is paused while at least this many received bytes wait for :meth:`read`.
READ_LIMIT = READ_SIZE
#: At most this many operations in a row complete without a checkpoint.
YIELD_EVERY = 16


class _LoopTransport(Protocol):
    """What we use of an event-loop transport (asyncio's and uvloop's both have it)."""

    def write(self, data: bytes | memoryview, /) -> None: ...
    def write_eof(self) -> None: ...
    def is_closing(self) -> bool: ...
    def is_reading(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def set_write_buffer_limits(self, high: int | None = ..., low: int | None = ...) -> None: ...
    def set_protocol(self, protocol: asyncio.BaseProtocol, /) -> None: ...
    def get_protocol(self) -> asyncio.BaseProtocol: ...


_TRANSPORT_METHODS = tuple(name for name in _LoopTransport.__dict__ if not name.startswith("_"))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Complete a waiting read's or drain's future (if it still waits)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _ConnectionProtocol(asyncio.Protocol):
    """Buffers what the loop reads (bounded) and wakes the one waiting reader or writer."""

    __slots__ = (
        "buffered",
        "chunks",
        "drainer",
        "eof",
        "lost",
        "reader",
        "transport",
        "write_paused",
    )

    def __init__(self, transport: _LoopTransport) -> None:
        self.transport = transport
        self.chunks: deque[bytes] = deque()
        #: Bytes in ``chunks`` not read yet.
        self.buffered = 0
        #: The client sent FIN: nothing more will arrive.
        self.eof = False
        #: The connection is gone (reset, or closed by us): nothing can be written.
        self.lost = False
        #: Bytes stayed in the transport's buffer (the kernel did not take them yet).
        self.write_paused = False
        #: The future a waiting read or drain awaits (one of each at most).
        self.reader: asyncio.Future[None] | None = None
        self.drainer: asyncio.Future[None] | None = None

    def take(self) -> bytes:
        """Buffered bytes (there must be some); resumes reading below the limit.

        One read of the loop as it came (up to 256 KiB on both loops): it is in memory
        already, and cutting it into READ_SIZE pieces would copy every byte once more
        (a 1 MiB upload read in 64 KiB slices cost 0.2 ms more, measured). Several small
        reads are joined up to READ_SIZE.
        """
        chunks = self.chunks
        data = chunks.popleft()
        if len(data) < READ_SIZE:
            # Pipelined input that arrived in several pieces: up to READ_SIZE of it.
            while chunks and len(data) + len(chunks[0]) <= READ_SIZE:
                data += chunks.popleft()
        before = self.buffered
        self.buffered = before - len(data)
        if before >= READ_LIMIT > self.buffered and not (self.eof or self.lost):
            self.transport.resume_reading()
        return data

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        before = self.buffered
        self.buffered = before + len(data)
        if before < READ_LIMIT <= self.buffered:
            self.transport.pause_reading()  # the bound: the kernel holds the rest
        _wake(self.reader)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.reader)
        return True  # keep the transport open: the response may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        _wake(self.reader)
        _wake(self.drainer)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        _wake(self.drainer)


def asyncio_transport_for(stream: anyio.abc.ByteStream) -> AsyncioTransport | None:
    """An :class:`AsyncioTransport` for anyio's asyncio TCP stream; None if it cannot apply.

    Bytes anyio already received are handed over. From then on only the returned
    transport reads and writes: the stream's own ``send``/``receive`` no longer see
    the connection's bytes (closing through the stream still works).
    """
    kind = type(stream)
    if kind.__name__ != "SocketStream" or kind.__module__ != "anyio._backends._asyncio":
        return None
    transport: Any = getattr(stream, "_transport", None)
    if not all(callable(getattr(transport, name, None)) for name in _TRANSPORT_METHODS):
        return None
    if transport.is_closing():
        return None  # already gone: anyio's stream reports that as well as we would
    anyio_protocol = transport.get_protocol()
    queue = getattr(anyio_protocol, "read_queue", None)
    if not isinstance(queue, deque):
        return None
    protocol = _ConnectionProtocol(transport)
    # What anyio's protocol already received (the loop reads from the moment of accept).
    for chunk in queue:
        protocol.chunks.append(chunk)
        protocol.buffered += len(chunk)
    queue.clear()
    protocol.eof = bool(getattr(anyio_protocol, "is_at_eof", False))
    protocol.write_paused = transport.get_write_buffer_size() > 0
    transport.set_protocol(protocol)
    # Zero limits: paused exactly while anything waits in user space (anyio sets the
    # same, but our drain logic depends on it).
    transport.set_write_buffer_limits(0, 0)
    if protocol.buffered >= READ_LIMIT:
        transport.pause_reading()
    elif not protocol.eof and not transport.is_reading():
        transport.resume_reading()  # anyio pauses reading between its receive() calls
    return AsyncioTransport(stream, transport, protocol)


class AsyncioTransport(Transport):
    """:class:`Transport` over anyio's TCP socket stream on asyncio or uvloop."""

    __slots__ = ("_idle", "_loop", "_protocol", "_transport", "_unyielded")

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        transport: _LoopTransport,
        protocol: _ConnectionProtocol,
    ) -> None:
        super().__init__(stream)
        self._loop = asyncio.get_running_loop()
        self._transport = transport
        self._protocol = protocol
        self._unyielded = 0
        #: A read_idle() is waiting: cancel_idle_read() may end it.
        self._idle = False

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet: under READ_LIMIT plus one read of the loop."""
        return self._protocol.buffered

    async def _completed_at_once(self) -> None:
        """After an operation that did not wait: checkpoint if we have not for a while."""
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await anyio.lowlevel.checkpoint()

    async def _wait_readable(self, deadline: float) -> bytes | None:
        """Wait until bytes, EOF or loss (the caller saw an empty buffer); None at ``deadline``.

        Also None once :meth:`cancel_idle_read` ends the wait. The deadline is a timer
        of the loop that completes the same future the protocol does, not an anyio
        cancel scope: a scope's bookkeeping on entry and exit (the task's state in a
        weak dictionary, a timer, parent and child scopes) cost about a tenth of a
        keep-alive request, and every request waits once. Cancellation from outside
        still reaches the ``await``, as anywhere else.
        """
        self._unyielded = 0
        protocol = self._protocol
        if protocol.reader is not None:
            raise anyio.BusyResourceError("reading from")
        loop = self._loop
        waiter = protocol.reader = loop.create_future()
        timer = None if deadline == math.inf else loop.call_at(deadline, _wake, waiter)
        try:
            await waiter
        finally:
            protocol.reader = None
            if timer is not None:
                timer.cancel()
        if protocol.buffered:
            return protocol.take()
        if protocol.eof or protocol.lost:
            return b""
        return None  # the deadline passed, or cancel_idle_read()

    async def read(self, deadline: float = math.inf) -> bytes:
        protocol = self._protocol
        if protocol.buffered:
            data = protocol.take()
            await self._completed_at_once()
            return data
        if protocol.eof or protocol.lost:
            return b""
        received = await self._wait_readable(deadline)
        if received is None:
            raise ReadTimeout
        return received

    async def read_idle(self, deadline: float) -> bytes | None:
        protocol = self._protocol
        if protocol.buffered:
            data = protocol.take()
            await self._completed_at_once()
            return data
        if protocol.eof or protocol.lost:
            return b""
        self._idle = True
        try:
            return await self._wait_readable(deadline)
        finally:
            self._idle = False

    def cancel_idle_read(self) -> None:
        if self._idle:  # not a read(): that one keeps waiting for its body bytes
            _wake(self._protocol.reader)

    def end_idle_read_by(self, deadline: float) -> None:
        if self._idle:
            # Bound to this read's future: a later read is not woken by it.
            self._loop.call_at(deadline, _wake, self._protocol.reader)

    def peer_closed(self) -> bool:
        protocol = self._protocol
        if protocol.buffered:
            return False  # bytes are waiting: maybe a pipelined request
        if protocol.eof or protocol.lost:
            return True
        # The loop may not have read a FIN or reset that is already there: peek.
        return super().peer_closed()

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        if self.broken or self._protocol.lost:
            raise self._gone()
        if len(data) >= 2 * WRITE_SLICE:
            await self._write_slices(data, timeout)
            return
        transport = self._transport
        try:
            transport.write(data)
        except RuntimeError as exc:  # the transport closed (after our write_eof, say)
            raise self._gone() from exc
        if self._protocol.write_paused:
            self._unyielded = 0
            await self._drain(timeout)
        elif transport.is_closing():  # the send failed: the transport dropped the data
            raise self._gone()
        else:
            await self._completed_at_once()

    async def _write_slices(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """Write a large ``data`` one WRITE_SLICE at a time, each drained within ``timeout``.

        A tail shorter than a slice goes with the slice before it: a 64 KiB body chunk
        plus its chunked framing is one write (one send), not a slice and a crumb.
        """
        transport = self._transport
        view = memoryview(data)
        size = len(view)
        start = 0
        while start < size:
            end = start + WRITE_SLICE
            if size - end < WRITE_SLICE:
                end = size
            try:
                transport.write(view[start:end])
            except RuntimeError as exc:
                raise self._gone() from exc
            if self._protocol.write_paused:
                self._unyielded = 0
                try:
                    await self._drain(timeout)
                except BaseException:
                    # Cancelled between slices: the bytes on the wire end mid-message,
                    # so nothing written after them could be read right.
                    if end < size:
                        self.broken = True
                    raise
            elif transport.is_closing():
                raise self._gone()
            start = end
        await self._completed_at_once()

    async def _drain(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait until the transport's buffer went to the kernel (at most ``timeout`` seconds)."""
        protocol = self._protocol
        if protocol.drainer is not None:
            raise anyio.BusyResourceError("writing to")
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        with anyio.CancelScope(deadline=deadline) as scope:
            while protocol.write_paused and not protocol.lost:
                waiter = protocol.drainer = self._loop.create_future()
                try:
                    await waiter
                finally:
                    protocol.drainer = None
        if protocol.lost or self._transport.is_closing():
            raise self._gone()
        if scope.cancelled_caught:
            raise self._stalled(timeout)

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        # As the base class, but reading through our protocol: anyio's stream no
        # longer sees the connection's bytes.
        try:
            if not self.broken:
                self._transport.write_eof()
                with anyio.move_on_after(timeout):
                    while limit > 0:
                        chunk = await self.read()
                        if not chunk:
                            break
                        limit -= len(chunk)
        except (OSError, RuntimeError, NotImplementedError):
            pass
        finally:
            await self.close()  # also when cancelled: closing never waits
