"""In-memory connections: a bounded trio stream pair and an anyio view of a trio stream.

Theory of operation: the server's I/O layer reads and writes an
:class:`anyio.abc.ByteStream`; tests hold plain trio streams. A connection in
memory is two one-way :class:`_Pipe` buffers, one per direction, each with an
optional *window*: the most bytes that may sit in it unread. A writer that
would overfill the window waits until the reader makes room, exactly like a
kernel socket buffer in front of a client that does not read. That is what lets
a test exercise the server's backpressure and write timeouts without sockets.

:func:`open_memory_connection` returns the client end as a trio stream and the
server end wrapped in :class:`AnyIOByteStream`, which translates trio's stream
contract into anyio's (``b""`` becomes :exc:`anyio.EndOfStream`, trio's
resource errors become anyio's) and answers the socket attribute queries a
server makes (peer and local address) with the fake addresses given to it.

The streams follow trio's stream *contract* (its ABCs and exception classes, which
need no trio run), but wait with anyio's primitives, so they work on trio and on
asyncio alike.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import trio

from .._server._trio_streams import Address as Address
from .._server._trio_streams import TrioByteStream


@dataclass(frozen=True)
class MemoryStreamStatistics:
    """What sits in the buffers of one end of a :func:`bounded_memory_stream_pair`.

    Attributes:
        unread_sent: Bytes this end sent that its peer has not read yet.
        unread_received: Bytes the peer sent that this end has not read yet.
        window: The per-direction limit on unread bytes, or ``None`` for no limit.
    """

    unread_sent: int
    unread_received: int
    window: int | None


class _Signal:
    """Tasks wait until the next :meth:`wake_all` (a parking lot on anyio's Event)."""

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    async def wait(self) -> None:
        # Made on first use: an anyio.Event belongs to the running backend.
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    def wake_all(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None


class _Pipe:
    """One direction of a connection: a byte buffer with an optional size limit.

    The two ends coordinate through two signals: readers wait until there is
    data or an end-of-stream, writers wait until there is room.
    """

    def __init__(self, window: int | None) -> None:
        self.buffer: bytearray = bytearray()
        self.window = window
        #: The writer sent EOF or closed: readers get ``b""`` once the buffer is empty.
        self.eof = False
        #: The reader closed: writes fail with BrokenResourceError.
        self.reader_closed = False
        self.readable: _Signal = _Signal()
        self.writable: _Signal = _Signal()

    def room(self) -> int:
        if self.window is None:
            return sys.maxsize
        return max(0, self.window - len(self.buffer))

    def take(self, max_bytes: int | None) -> bytes:
        count = len(self.buffer) if max_bytes is None else min(max_bytes, len(self.buffer))
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        if count:
            self.writable.wake_all()
        return data


class _ConflictDetector:
    """Raise BusyResourceError when two tasks use the same side of a stream at once."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._held = False

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._held:
            raise trio.BusyResourceError(f"another task is already {self._what} this stream")
        self._held = True
        try:
            yield
        finally:
            self._held = False


class BoundedMemoryStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection made by :func:`bounded_memory_stream_pair`.

    It follows trio's stream contract, including :class:`trio.BusyResourceError`
    when two tasks send (or receive) at once. Closing it makes the peer's reads
    see end-of-stream and the peer's writes fail with
    :class:`trio.BrokenResourceError`, as a dropped TCP connection would.
    """

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._incoming = incoming
        self._outgoing = outgoing
        self._closed = False
        self._eof_sent = False
        self._send_conflicts = _ConflictDetector("sending on")
        self._receive_conflicts = _ConflictDetector("receiving from")

    def statistics(self) -> MemoryStreamStatistics:
        """Bytes waiting in each direction; see :class:`MemoryStreamStatistics`."""
        return MemoryStreamStatistics(
            unread_sent=len(self._outgoing.buffer),
            unread_received=len(self._incoming.buffer),
            window=self._outgoing.window,
        )

    def _check_can_send(self) -> None:
        if self._closed or self._eof_sent:
            raise trio.ClosedResourceError("this stream was closed for sending")
        if self._outgoing.reader_closed:
            raise trio.BrokenResourceError("the peer closed the connection")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting whenever the peer's window is full."""
        with self._send_conflicts.hold():
            self._check_can_send()
            await anyio.lowlevel.checkpoint_if_cancelled()
            pipe = self._outgoing
            view = memoryview(data).cast("B")
            while view:
                room = pipe.room()
                if room == 0:
                    await pipe.writable.wait()
                    self._check_can_send()
                    continue
                chunk = view[:room]
                pipe.buffer += chunk
                view = view[len(chunk) :]
                pipe.readable.wake_all()
            await anyio.lowlevel.cancel_shielded_checkpoint()

    def set_receive_window(self, window: int | None) -> None:
        """Change how many unread bytes the peer may send this end before it waits.

        A small window makes this end a slow reader from now on; ``None`` lifts the bound.

        Raises:
            ValueError: ``window`` is smaller than 1.
        """
        if window is not None and window < 1:
            raise ValueError("the window must be at least 1 byte")
        self._incoming.window = window
        self._incoming.writable.wake_all()

    async def wait_send_all_might_not_block(self) -> None:
        """Return once there is room in the peer's window (or the peer is gone)."""
        with self._send_conflicts.hold():
            self._check_can_send()
            await anyio.lowlevel.checkpoint_if_cancelled()
            pipe = self._outgoing
            while pipe.room() == 0 and not pipe.reader_closed:
                await pipe.writable.wait()
                if self._closed or self._eof_sent:
                    raise trio.ClosedResourceError("this stream was closed for sending")
            await anyio.lowlevel.cancel_shielded_checkpoint()

    async def send_eof(self) -> None:
        """Half-close: the peer reads what was sent, then ``b""``. Idempotent."""
        with self._send_conflicts.hold():
            if self._closed:
                raise trio.ClosedResourceError("this stream is closed")
            await anyio.lowlevel.checkpoint()
            self._eof_sent = True
            self._outgoing.eof = True
            self._outgoing.readable.wake_all()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return up to ``max_bytes`` (all buffered bytes if ``None``); ``b""`` at end-of-stream."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be a positive integer")
        with self._receive_conflicts.hold():
            await anyio.lowlevel.checkpoint_if_cancelled()
            pipe = self._incoming
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("this stream is closed")
                if pipe.buffer or pipe.eof:
                    break
                await pipe.readable.wait()
            # Take the bytes only after the last cancellation point, so a
            # cancelled receive never loses data.
            data = pipe.take(max_bytes)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def aclose(self) -> None:
        """Close both directions; unread incoming bytes are dropped. Idempotent."""
        if not self._closed:
            self._closed = True
            self._outgoing.eof = True
            self._incoming.reader_closed = True
            self._incoming.buffer.clear()
            for pipe in (self._incoming, self._outgoing):
                pipe.readable.wake_all()
                pipe.writable.wake_all()
        await anyio.lowlevel.checkpoint()


def bounded_memory_stream_pair(
    *, window: int | None = None
) -> tuple[BoundedMemoryStream, BoundedMemoryStream]:
    """Make two connected in-memory streams with at most ``window`` unread bytes per direction.

    Args:
        window: The most bytes that may sit unread in each direction; a writer
            blocks while the window is full. ``None`` buffers without limit.

    Returns:
        The two ends; what one sends the other receives.

    Raises:
        ValueError: ``window`` is smaller than 1.

    Example:
        >>> import trio.testing
        >>> async def demo():
        ...     left, right = bounded_memory_stream_pair(window=4)
        ...     async with trio.open_nursery() as nursery:
        ...         nursery.start_soon(left.send_all, b"hello world")
        ...         await trio.testing.wait_all_tasks_blocked()
        ...         print(left.statistics().unread_sent)  # the sender is stuck at 4
        ...         print(await right.receive_some())
        ...         nursery.cancel_scope.cancel()
        >>> trio.run(demo)
        4
        b'hell'
    """
    if window is not None:
        window = operator.index(window)
        if window < 1:
            raise ValueError("window must be at least 1 byte (or None)")
    left_to_right, right_to_left = _Pipe(window), _Pipe(window)
    left = BoundedMemoryStream(incoming=right_to_left, outgoing=left_to_right)
    right = BoundedMemoryStream(incoming=left_to_right, outgoing=right_to_left)
    return left, right


#: The public name of the server's trio-to-anyio stream adapter.
AnyIOByteStream = TrioByteStream


def open_memory_connection(
    *,
    client_address: Address = ("127.0.0.1", 50000),
    server_address: Address = ("127.0.0.1", 8000),
    receive_window: int | None = None,
) -> tuple[BoundedMemoryStream, AnyIOByteStream]:
    """Make an in-memory connection: a trio stream for the client, an anyio stream for the server.

    Args:
        client_address: The peer address the server sees (``remote_address``);
            a string stands for a Unix socket path.
        server_address: The server's own address (``local_address``).
        receive_window: The most bytes that may sit unread in each direction.
            A small window makes a slow client: the server's ``send()`` blocks
            until the client reads. ``None`` buffers without limit.

    Returns:
        ``(client_stream, server_stream)``.

    Example:
        >>> import anyio, trio
        >>> async def demo():
        ...     client, server = open_memory_connection(receive_window=8)
        ...     await client.send_all(b"ping")
        ...     await client.send_eof()
        ...     print(await server.receive())
        ...     try:
        ...         await server.receive()
        ...     except anyio.EndOfStream:
        ...         print("end of stream")
        >>> trio.run(demo)
        b'ping'
        end of stream
    """
    client, server = bounded_memory_stream_pair(window=receive_window)
    return client, AnyIOByteStream(
        server, local_address=server_address, remote_address=client_address
    )
