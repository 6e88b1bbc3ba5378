"""The hot path on asyncio and uvloop: a connection's event-loop transport driven directly.

Under asyncio, anyio's TCP socket stream is an ``asyncio.Transport`` with a small
protocol behind it, and its stream methods pay per call for generality we do not
need: ``receive()`` resumes reading before every wait and pauses it after (two
``epoll_ctl`` syscalls per request on the selector loop), ``send()`` always
checkpoints and waits on an event. So for a socket the server accepted itself,
:func:`open_asyncio_stream` asks the loop for a transport with our own
:class:`_ConnectionProtocol` behind it (``loop.connect_accepted_socket``, public API),
and :class:`AsyncioTransport` implements :class:`~._transport.Transport` on the two:

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
- EOF and ``connection_lost`` become ``b""`` for a read, :class:`~trio_asgi.ClientDisconnected`
  for a write, and the end of :meth:`AsyncioTransport.wait_peer_closed`;
- an operation that completes at once does not go through the scheduler; every
  :data:`~._transport.YIELD_EVERY`-th one still checkpoints, as on the trio fast path.

A waiting read is one future that the protocol completes, its deadline a timer of the
loop that completes the same future. The rest of the server sees an anyio byte stream,
:class:`AsyncioSocketStream`, for the connection's addresses; ``open_transport`` takes
the transport out of it. Per idle connection this is a transport, a protocol, a stream
adapter and no event or deque: anyio's stream and protocol cost 3 KiB more.
Unix sockets on asyncio stay on anyio's stream and the generic transport.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

import anyio
import anyio.abc
import anyio.lowlevel

from .._errors import ClientDisconnected
from ._transport import (
    LOOP_WRITE_GONE_ERRORS,
    READ_SIZE,
    WRITE_SLICE,
    YIELD_EVERY,
    FileShrunk,
    ReadTimeout,
    client_gone,
    copy_file,
    peek_closed,
    stalled,
)
from ._write_turns import BULK_WRITE, spend_turn

#: Reading is paused while at least this many received bytes wait for :meth:`read`.
READ_LIMIT = READ_SIZE


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else anyio.current_time() + timeout


def _wake(waiter: asyncio.Future[None] | None) -> None:
    """Complete a waiting read's, drain's or close watch's future (if it still waits)."""
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
        "watcher",
        "write_paused",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: What the loop read and :meth:`take` did not hand on yet. A list, not a deque:
        #: it holds a few chunks at most (READ_LIMIT bounds it), and an empty deque
        #: costs 600 bytes per idle connection where an empty list costs 56.
        self.chunks: list[bytes] = []
        #: Bytes in ``chunks`` not read yet.
        self.buffered = 0
        #: The client sent FIN: nothing more will arrive.
        self.eof = False
        #: The connection is gone (reset, or closed by us): nothing can be written.
        self.lost = False
        #: Bytes stayed in the transport's buffer (the kernel did not take them yet).
        self.write_paused = False
        #: The futures a waiting read, drain or wait_peer_closed awaits (one of each).
        self.reader: asyncio.Future[None] | None = None
        self.drainer: asyncio.Future[None] | None = None
        self.watcher: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        # Zero limits: paused exactly while anything waits in user space, which the
        # drain in AsyncioTransport.write depends on.
        self.transport.set_write_buffer_limits(0, 0)

    def take(self) -> bytes:
        """Buffered bytes (there must be some); resumes reading below the limit.

        One read of the loop as it came (up to 256 KiB on both loops): it is in memory
        already, and cutting it into READ_SIZE pieces would copy every byte once more
        (a 1 MiB upload read in 64 KiB slices cost 0.2 ms more, measured). Several small
        reads are joined up to READ_SIZE.
        """
        chunks = self.chunks
        data = chunks.pop(0)
        if len(data) < READ_SIZE:
            # Pipelined input that arrived in several pieces: up to READ_SIZE of it.
            while chunks and len(data) + len(chunks[0]) <= READ_SIZE:
                data += chunks.pop(0)
        before = self.buffered
        self.buffered = before - len(data)
        if before >= READ_LIMIT > self.buffered and not (self.eof or self.lost):
            assert self.transport is not None
            self.transport.resume_reading()
        return data

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        before = self.buffered
        self.buffered = before + len(data)
        if before < READ_LIMIT <= self.buffered:
            assert self.transport is not None
            self.transport.pause_reading()  # the bound: the kernel holds the rest
        _wake(self.reader)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.reader)
        _wake(self.watcher)
        return True  # keep the transport open: the response may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        _wake(self.reader)
        _wake(self.drainer)
        _wake(self.watcher)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        _wake(self.drainer)


async def open_asyncio_stream(sock: socket.socket) -> AsyncioSocketStream:
    """The stream of a TCP socket we accepted, with :class:`AsyncioTransport` inside.

    Raises:
        OSError: the loop could not take the socket (the client is gone already).
    """
    sock.getpeername()  # OSError if the client is gone already (reset since accept)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_accepted_socket(_ConnectionProtocol, sock)
    return AsyncioSocketStream(AsyncioTransport(transport, protocol, sock))


class AsyncioSocketStream(anyio.abc.ByteStream):
    """The anyio face of an :class:`AsyncioTransport`, for what asks for a stream.

    The server reads the connection's addresses from it (``extra()``) and closes it
    should its handler fail; the bytes go through :attr:`transport` (``receive`` and
    ``send`` work too, as any anyio stream's, for completeness).
    """

    def __init__(self, transport: AsyncioTransport) -> None:
        self.transport = transport

    async def receive(self, max_bytes: int = 65536) -> bytes:
        data = await self.transport.read()
        if not data:
            raise anyio.EndOfStream
        if len(data) > max_bytes:
            self.transport.unread(data[max_bytes:])
            data = data[:max_bytes]
        return data

    async def send(self, item: bytes) -> None:
        try:
            await self.transport.write(item, None)
        except ClientDisconnected as exc:
            raise anyio.BrokenResourceError from exc

    async def send_eof(self) -> None:
        self.transport.send_eof()

    async def aclose(self) -> None:
        await self.transport.close()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attrs = anyio.abc.SocketAttribute
        info = self.transport.loop_transport.get_extra_info
        return {
            attrs.family: lambda: info("socket").family,
            attrs.local_address: lambda: info("sockname")[:2],
            attrs.local_port: lambda: info("sockname")[1],
            attrs.raw_socket: lambda: info("socket"),
            attrs.remote_address: lambda: info("peername")[:2],
            attrs.remote_port: lambda: info("peername")[1],
        }


class AsyncioTransport:
    """:class:`~._transport.Transport` over an event-loop transport with our protocol."""

    __slots__ = (
        "_broken",
        "_idle",
        "_protocol",
        "_sock",
        "_turn_left",
        "_unyielded",
        "loop_transport",
        "write_timed_out",
    )

    def __init__(
        self, transport: asyncio.Transport, protocol: _ConnectionProtocol, sock: socket.socket
    ) -> None:
        self.loop_transport = transport
        self._protocol = protocol
        #: The socket the loop's transport owns: only ever peeked at (peer_closed).
        self._sock = sock
        self._broken = False
        self.write_timed_out = False
        self._unyielded = 0
        #: Bytes of large writes this connection's turn still allows (see _write_turns).
        self._turn_left = 0
        #: A read_idle() is waiting: cancel_idle_read() may end it.
        self._idle = False

    @property
    def broken(self) -> bool:
        return self._broken

    def mark_broken(self) -> None:
        self._broken = True

    @property
    def buffered(self) -> int:
        """Bytes received and not read yet: under READ_LIMIT plus one read of the loop."""
        return self._protocol.buffered

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of what :meth:`read` returns next."""
        protocol = self._protocol
        protocol.chunks.insert(0, data)
        protocol.buffered += len(data)

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
        loop = asyncio.get_running_loop()
        waiter = protocol.reader = loop.create_future()
        timer = None if deadline == math.inf else loop.call_at(deadline, _wake, waiter)
        try:
            await waiter
        finally:
            protocol.reader = None
            if timer is not None:
                timer.cancel()
        return self._after_wait()

    def _after_wait(self) -> bytes | None:
        """What a wait that ended brought: bytes, ``b""`` (EOF or loss), or None (deadline)."""
        protocol = self._protocol
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
        # The wait repeats _wait_readable on purpose: one coroutine frame less (256
        # bytes) for every idle connection to keep.
        self._unyielded = 0
        if protocol.reader is not None:
            raise anyio.BusyResourceError("reading from")
        loop = asyncio.get_running_loop()
        waiter = protocol.reader = loop.create_future()
        timer = None if deadline == math.inf else loop.call_at(deadline, _wake, waiter)
        self._idle = True
        try:
            await waiter
        finally:
            self._idle = False
            protocol.reader = None
            if timer is not None:
                timer.cancel()
        return self._after_wait()

    def cancel_idle_read(self) -> None:
        if self._idle:  # not a read(): that one keeps waiting for its body bytes
            _wake(self._protocol.reader)

    def peer_closed(self) -> bool:
        protocol = self._protocol
        if protocol.buffered:
            return False  # bytes are waiting: maybe a pipelined request
        if protocol.eof or protocol.lost:
            return True
        # The loop may not have read a FIN or reset that is already there: peek.
        return peek_closed(self._sock)

    async def wait_peer_closed(self) -> None:
        # The loop reads on (up to READ_LIMIT), so a FIN or a reset reaches the protocol;
        # bytes read meanwhile stay buffered for the next read. Reading paused at the
        # limit, the end cannot be seen: the wait then lasts until cancelled.
        protocol = self._protocol
        if protocol.watcher is not None:
            raise anyio.BusyResourceError("watching")
        while not (protocol.eof or protocol.lost):
            waiter = protocol.watcher = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                protocol.watcher = None

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        if self._broken or self._protocol.lost:
            self._broken = True
            raise client_gone()
        if len(data) >= 2 * WRITE_SLICE:
            await self._write_slices(data, timeout)
            return
        bulk = len(data) >= BULK_WRITE
        if bulk:  # large writes checkpoint by taking turns (see _write_turns)
            protocol = self._protocol
            self._turn_left = await spend_turn(self._turn_left, len(data))
            if protocol.lost:  # while waiting in line
                self._broken = True
                raise client_gone()
        self._hand_over(data)
        if self._protocol.write_paused:
            self._unyielded = 0
            self._turn_left = 0  # waiting for the client ends the turn
            await self._drain(timeout)
        elif not bulk:
            await self._completed_at_once()

    def _hand_over(self, data: bytes | memoryview) -> None:
        """``transport.write(data)``; the loop sends at once what the kernel takes."""
        transport = self.loop_transport
        try:
            transport.write(data)
        except LOOP_WRITE_GONE_ERRORS as exc:  # the error map's, without a `with` per call
            self._broken = True
            raise client_gone() from exc
        if transport.is_closing() and not self._protocol.write_paused:
            # The send failed: the transport dropped the data and is closing.
            self._broken = True
            raise client_gone()

    async def _write_slices(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """Write a large ``data`` one WRITE_SLICE at a time, each drained within ``timeout``.

        A tail shorter than a slice goes with the slice before it: a 64 KiB body chunk
        plus its chunked framing is one write (one send), not a slice and a crumb.
        """
        view = memoryview(data)
        size = len(view)
        start = 0
        while start < size:
            end = start + WRITE_SLICE
            if size - end < WRITE_SLICE:
                end = size
            try:
                self._turn_left = await spend_turn(self._turn_left, end - start)
            except BaseException:
                if start:  # cancelled waiting for a turn, after part of ``data`` went
                    self._broken = True
                raise
            if self._protocol.lost:
                self._broken = True
                raise client_gone()
            self._hand_over(view[start:end])
            if self._protocol.write_paused:
                self._unyielded = 0
                self._turn_left = 0
                try:
                    await self._drain(timeout)
                except BaseException:
                    # Cancelled between slices: the bytes on the wire end mid-message,
                    # so nothing written after them could be read right.
                    if end < size:
                        self._broken = True
                    raise
            start = end

    async def _drain(self, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait until the transport's buffer went to the kernel (at most ``timeout`` seconds)."""
        protocol = self._protocol
        if protocol.drainer is not None:
            raise anyio.BusyResourceError("writing to")
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        loop = asyncio.get_running_loop()
        with anyio.CancelScope(deadline=deadline) as scope:
            while protocol.write_paused and not protocol.lost:
                waiter = protocol.drainer = loop.create_future()
                try:
                    await waiter
                finally:
                    protocol.drainer = None
        if protocol.lost or self.loop_transport.is_closing():
            self._broken = True
            raise client_gone()
        if scope.cancelled_caught:
            self._broken = self.write_timed_out = True
            raise stalled(timeout)

    async def send_file(self, fd: int, offset: int, count: int, timeout: float | None) -> None:  # noqa: ASYNC109
        """The file through ``loop.sendfile``: ``os.sendfile`` on the selector loops.

        One :data:`~._transport.WRITE_SLICE` per call, each under ``timeout``, so the
        deadline rule is :meth:`write`'s. uvloop has no ``loop.sendfile``: there a slice
        at a time is read and written (:func:`~._transport.copy_file`). ``loop.sendfile``
        moves the file position; it is put back.
        """
        if self._broken or self._protocol.lost:
            self._broken = True
            raise client_gone()
        loop = asyncio.get_running_loop()
        if not isinstance(loop, asyncio.BaseEventLoop):  # uvloop
            await copy_file(self, fd, offset, count, timeout)
            return
        position = os.lseek(fd, 0, os.SEEK_CUR)
        file = open(fd, "rb", buffering=0, closefd=False)  # noqa: SIM115, ASYNC230 - no I/O
        try:
            with file:
                while count > 0:
                    with anyio.CancelScope(deadline=_deadline(timeout)) as scope:
                        try:
                            sent = await loop.sendfile(
                                self.loop_transport, file, offset, min(count, WRITE_SLICE)
                            )
                        except LOOP_WRITE_GONE_ERRORS as exc:
                            raise client_gone() from exc
                    if scope.cancelled_caught:
                        self.write_timed_out = True
                        raise stalled(timeout)  # noqa: TRY301 - the except below marks the transport broken
                    if not sent:
                        raise FileShrunk  # noqa: TRY301
                    offset += sent
                    count -= sent
        except BaseException:
            self._broken = True  # gone, cancelled midway, or short: the body ends short
            raise
        finally:
            os.lseek(fd, position, os.SEEK_SET)
        await self._completed_at_once()

    async def write_quietly(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        try:
            await self.write(data, timeout)
        except ClientDisconnected:
            pass

    def send_eof(self) -> None:
        """Half-close our side: the peer reads EOF after what we wrote."""
        try:
            self.loop_transport.write_eof()
        except LOOP_WRITE_GONE_ERRORS as exc:
            raise client_gone() from exc

    async def close(self) -> None:
        self._broken = True
        # abort(), not close(): close() would wait for unsent bytes to go, i.e. on the
        # peer. A write returns only once the kernel took everything, so at most the
        # tail of a write that failed or was cancelled is dropped.
        self.loop_transport.abort()
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        try:
            if not self._broken:
                self.send_eof()
                with anyio.move_on_after(timeout):
                    while limit > 0:
                        chunk = await self.read()
                        if not chunk:
                            break
                        limit -= len(chunk)
        except ClientDisconnected:
            pass
        finally:
            await self.close()  # also when cancelled: closing never waits
