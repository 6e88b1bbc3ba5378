"""One connection's byte stream: the transport contract, its errors, and anyio's version.

Everything that touches the socket of a connection goes through a :class:`Transport`.
There are three implementations: :class:`AnyioTransport` (any anyio byte stream: TLS,
streams handed to :func:`~trio_asgi.serve`, in-memory streams, and every stream when
``TRIO_ASGI_FAST_PATH=0``), :class:`~._trio_transport.TrioSocketTransport` and
:class:`~._asyncio_transport.AsyncioTransport` (the fast paths, see
:mod:`._fast_paths`). ``tests/server/test_transport_contract.py`` runs every one of
them, on every loop it serves, against the rules written in :class:`Transport`.
"""

from __future__ import annotations

import math
import os
import socket
from types import TracebackType
from typing import Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import trio

from .._errors import ClientDisconnected
from ._write_turns import BULK_WRITE, spend_turn

#: The most a read of the trio and anyio transports returns.
READ_SIZE = 65536
#: The most any read returns: the asyncio fast path hands on one read of the loop whole.
MAX_READ = 4 * READ_SIZE
#: The unit of write progress that moves a write's deadline (see :class:`Transport`).
WRITE_SLICE = 65536
#: At most this many operations in a row complete without a checkpoint (the fast paths).
YIELD_EVERY = 16
#: How early a deadline may fire, by the coarsest loop clock served: uvloop counts
#: milliseconds, so its timers are due by a clock that may be up to 1 ms behind ours.
CLOCK_RESOLUTION = 0.001

#: recv() flags that look at waiting input without taking it and without blocking.
PEEK_FLAGS = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)

#: What a transport's stream or socket raises when the peer is gone or the connection
#: was closed under us. OSError covers resets, broken pipes and closed descriptors.
GONE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)

#: The same for a write to an event-loop transport: asyncio's and uvloop's raise
#: RuntimeError for one that is closed or half-closed (kept out of GONE_ERRORS, where it
#: would hide bugs behind "the client is gone").
LOOP_WRITE_GONE_ERRORS: tuple[type[BaseException], ...] = (*GONE_ERRORS, RuntimeError)

#: OSErrors that mean "not now", never "gone": the fast paths catch them at the syscall.
_RETRY_ERRORS = (BlockingIOError, InterruptedError)
#: What the error map lets through unchanged although it is in GONE_ERRORS.
_UNMAPPED = (ClientDisconnected, *_RETRY_ERRORS)


class ReadTimeout(Exception):
    """The client sent nothing before the deadline."""


class FileShrunk(Exception):
    """A file sent with :meth:`Transport.send_file` ended before ``count`` bytes."""

    def __init__(self) -> None:
        super().__init__("the file ended before the bytes the response announced")


class _TransportErrorMap:
    """The one boundary where transport errors become :class:`~trio_asgi.ClientDisconnected`.

    A single instance serves every ``with``: entering and leaving it allocates nothing.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None or isinstance(exc, _UNMAPPED) or not isinstance(exc, GONE_ERRORS):
            return
        raise client_gone() from exc


_ERROR_MAP = _TransportErrorMap()


def map_transport_errors() -> _TransportErrorMap:
    """``with map_transport_errors():`` turns a gone peer into ClientDisconnected.

    Everything in :data:`GONE_ERRORS` becomes :class:`~trio_asgi.ClientDisconnected`
    (with the original as ``__cause__``); ``BlockingIOError`` and ``InterruptedError``
    pass (they mean "try again"), as do cancellation and everything else. A read turns
    the ClientDisconnected into ``b""``; a write marks its transport broken and raises it.
    The fast paths' per-request syscalls catch :data:`GONE_ERRORS` with ``except`` and
    raise :func:`client_gone` themselves: the same mapping, without a ``with`` per call.
    """
    return _ERROR_MAP


def client_gone() -> ClientDisconnected:
    """The error for an operation on a connection whose peer is gone.

    Raised ``from`` the transport error by :func:`map_transport_errors`, and by the fast
    paths' non-blocking syscalls, which catch :data:`GONE_ERRORS` with ``except``
    instead (free until something is raised, where a ``with`` per call is not).
    """
    return ClientDisconnected("the client is gone")


def stalled(timeout: float | None) -> ClientDisconnected:
    """The error for a client that did not read for ``timeout`` seconds."""
    return ClientDisconnected(f"the client did not read for {timeout} seconds")


def peek(sock: socket.socket) -> bytes | None:
    """Look at a socket's input without taking it or waiting.

    Returns:
        ``b""`` if the peer closed (FIN) or reset (RST) it, or it is closed already;
        a waiting byte (maybe a pipelined request, and the end, if any, behind it);
        None if nothing arrived yet.
    """
    try:
        with map_transport_errors():
            return sock.recv(1, PEEK_FLAGS)
    except _RETRY_ERRORS:
        return None
    except (ClientDisconnected, ValueError):  # reset, or the descriptor is closed
        return b""


def peek_closed(sock: socket.socket) -> bool:
    """Whether the peer closed or reset ``sock``: False when it cannot tell (see :func:`peek`)."""
    return peek(sock) == b""


class Transport(Protocol):
    """One connection's byte stream, with deadlines and one way of failing.

    Reading:
        :meth:`read` returns 1 to :data:`MAX_READ` bytes, or ``b""`` once the peer closed
        or reset the connection (never an exception for a gone peer). A deadline is an
        absolute time on the loop's clock (``anyio.current_time()``); at the deadline
        :meth:`read` raises :exc:`ReadTimeout` and :meth:`read_idle` returns None, as it
        also does when :meth:`cancel_idle_read` is called (shutdown ending idle waits;
        a :meth:`read` waiting for a body is not ended). One read at a time.

    Writing:
        :meth:`write` returns once all of ``data`` is handed to the kernel. Its
        ``timeout`` bounds progress, not the whole write: the deadline is ``timeout``
        after the write starts, and moves to ``timeout`` later each time the kernel has
        taken another slice (:data:`WRITE_SLICE` bytes; the trio fast path counts them
        as they go, the others per slice handed over), so a slow but steady reader of a
        big body is served while one that stopped reading is cut off. Where an implementation
        hands bytes to a buffer of its own first (asyncio's transport, anyio's
        ``send()``), it hands over one slice at a time, a tail shorter than a slice going
        with the slice before it: at most ``2 * WRITE_SLICE - 1`` bytes wait in user
        space. A write that fails (peer gone, or no progress within ``timeout``) marks
        the transport broken and raises :class:`~trio_asgi.ClientDisconnected`; so does
        every write after it. No progress within ``timeout`` also sets
        :attr:`write_timed_out` (the peer stalled; it did not leave). A write cancelled
        from outside marks the transport broken when part of ``data`` may have been
        handed over and part not (the stream would end mid-message); cancelled before
        handing anything over, or once all of it was and only the wait for the kernel
        was left, the transport stays usable.

    Deadlines:
        A deadline fires at its time or after it, or up to :data:`CLOCK_RESOLUTION`
        before it by the loop's own clock (uvloop's timers are due by a millisecond
        clock). Operations that complete at once do not checkpoint, except every
        :data:`YIELD_EVERY`-th one on the fast paths, so a peer that always has bytes
        ready cannot monopolise the loop.

    Closing:
        :meth:`close` never waits on the peer, also when cancelled; :meth:`linger_close`
        half-closes first and drops what the peer still sends, bounded in time and
        bytes. :meth:`peer_closed` and :meth:`wait_peer_closed` take no bytes.
    """

    @property
    def broken(self) -> bool:
        """The peer is gone or a write failed: no more writes will be tried."""
        ...

    def mark_broken(self) -> None:
        """No more writes: the stream may have ended mid-message, or the peer is gone."""
        ...

    @property
    def write_timed_out(self) -> bool:
        """A write (or file send) broke it by making no progress within its ``timeout``."""
        ...

    async def read(self, deadline: float = math.inf) -> bytes:
        """Bytes from the peer; ``b""`` once it closed or the connection broke.

        Raises:
            ReadTimeout: nothing arrived before ``deadline``.
        """
        ...

    async def read_idle(self, deadline: float) -> bytes | None:
        """:meth:`read` between requests: None at ``deadline`` or on :meth:`cancel_idle_read`."""
        ...

    def cancel_idle_read(self) -> None:
        """End a waiting :meth:`read_idle` now, as if its deadline had passed (shutdown)."""
        ...

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """Hand ``data`` to the kernel; ``timeout`` bounds each slice's progress.

        Raises:
            ClientDisconnected: the peer is gone, or did not read for ``timeout`` seconds.
        """
        ...

    async def send_file(self, fd: int, offset: int, count: int, timeout: float | None) -> None:  # noqa: ASYNC109
        """Send ``count`` bytes of the file ``fd`` from ``offset``, as :meth:`write` would.

        The same deadline rule (``timeout`` per :data:`WRITE_SLICE` of progress), the
        same failure (broken, :class:`~trio_asgi.ClientDisconnected`), the same
        backpressure. Plain sockets on the fast paths use ``sendfile`` (the bytes never
        enter user space); elsewhere (TLS) a slice at a time is read and written, never
        the whole file. The file position of ``fd`` is not used.

        Raises:
            FileShrunk: the file ended first (the transport is broken then: the
                response ends short).
        """
        ...

    async def write_quietly(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """:meth:`write`, for a last word (an error reply): a peer already gone is fine."""
        ...

    def peer_closed(self) -> bool:
        """Whether the peer already closed or reset, asked without waiting or taking bytes.

        False when it cannot tell (bytes are waiting, maybe a pipelined request).
        """
        ...

    async def wait_peer_closed(self) -> None:
        """Return once the peer closed (FIN) or reset (RST) the connection; take no bytes.

        With bytes waiting that are not the end, it cannot tell and waits forever: run
        it in a scope you cancel (to read the request on, or when the response is done).
        """
        ...

    async def close(self) -> None:
        """Close without waiting on the peer (never blocks, also when cancelled)."""
        ...

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        """Half-close, drop what the peer still sends (``timeout``, ``limit`` bytes), close.

        Closing a socket with unread input makes the kernel send RST, which can destroy a
        response the client has not read yet (an error reply, say).
        """
        ...


class AnyioTransport:
    """:class:`Transport` over any anyio byte stream: the generic path."""

    __slots__ = (
        "_ahead",
        "_at_end",
        "_broken",
        "_turn_left",
        "idle_scope",
        "stream",
        "write_timed_out",
    )

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self._broken = False
        self.write_timed_out = False
        #: Bytes of large writes this connection's turn still allows (see _write_turns).
        self._turn_left = 0
        #: A read returned the end (EOF or reset), or we closed: the peer is gone.
        self._at_end = False
        #: Bytes :meth:`wait_peer_closed` read ahead, for the next read.
        self._ahead = b""
        #: The scope of a :meth:`read_idle` that is waiting, for :meth:`cancel_idle_read`.
        self.idle_scope: anyio.CancelScope | None = None

    @property
    def broken(self) -> bool:
        return self._broken

    def mark_broken(self) -> None:
        self._broken = True

    async def read_idle(self, deadline: float) -> bytes | None:
        scope = self.idle_scope = anyio.CancelScope(deadline=deadline)
        try:
            with scope:
                return await self.read()
        finally:
            self.idle_scope = None
        return None

    def cancel_idle_read(self) -> None:
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    async def read(self, deadline: float = math.inf) -> bytes:
        if self._ahead:
            data, self._ahead = self._ahead, b""
            await anyio.lowlevel.checkpoint()
            return data
        try:
            with map_transport_errors():
                if deadline == math.inf:
                    return await self.stream.receive(READ_SIZE)
                with anyio.CancelScope(deadline=deadline) as scope:
                    return await self.stream.receive(READ_SIZE)
        except ClientDisconnected:
            self._at_end = True
            return b""
        assert scope.cancelled_caught
        raise ReadTimeout

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        if self._broken:
            raise client_gone()
        try:
            with map_transport_errors():
                if len(data) >= 2 * WRITE_SLICE:
                    scope = await self._send_slices(data, timeout)
                    if scope is None:
                        return
                elif timeout is None:
                    await self._send(data)
                    return
                else:
                    with anyio.move_on_after(timeout) as scope:
                        await self._send(data)
                        return
        except BaseException:
            # Gone, or cancelled midway (anyio cannot say how much went): what is on the
            # wire may end mid-message, so nothing written after it could be read right.
            self._broken = True
            raise
        assert scope.cancelled_caught
        self._broken = self.write_timed_out = True
        raise stalled(timeout)

    async def _send_slices(self, data: bytes, timeout: float | None) -> anyio.CancelScope | None:  # noqa: ASYNC109
        """Send a large ``data`` a slice at a time; the timed-out scope, or None when sent."""
        size = len(data)
        start = 0
        with anyio.CancelScope() as scope:
            while start < size:
                end = start + WRITE_SLICE
                if size - end < WRITE_SLICE:
                    end = size
                if timeout is not None:
                    scope.deadline = anyio.current_time() + timeout
                await self._send(data[start:end])
                start = end
            return None
        return scope

    async def _send(self, data: bytes) -> None:
        if len(data) >= BULK_WRITE:  # large writes take turns (see _write_turns)
            self._turn_left = await spend_turn(self._turn_left, len(data))
        await self.stream.send(data)

    async def send_file(self, fd: int, offset: int, count: int, timeout: float | None) -> None:  # noqa: ASYNC109
        await copy_file(self, fd, offset, count, timeout)

    async def write_quietly(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        try:
            await self.write(data, timeout)
        except ClientDisconnected:
            pass

    def peer_closed(self) -> bool:
        if self._at_end:
            return True
        if self._ahead:
            return False
        try:
            sock: object = self.stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        except AttributeError:
            # anyio's stream on uvloop once the loop closed the connection (reset, or
            # our close): uvloop no longer has a socket to hand out.
            return True
        if sock is None:
            return False
        if isinstance(sock, socket.socket):
            return peek_closed(sock)
        # asyncio hands out a read-only view of its socket: peek through a temporary
        # socket object on the same descriptor, detached (never closed) afterwards.
        try:
            peeker = socket.socket(fileno=sock.fileno())  # type: ignore[attr-defined]
        except (OSError, ValueError):
            return True
        try:
            return peek_closed(peeker)
        finally:
            peeker.detach()

    async def wait_peer_closed(self) -> None:
        # Any anyio stream (TLS too, where the raw socket's bytes say nothing): read one
        # chunk ahead and keep it for the next read. A chunk that is not the end means
        # the peer's state cannot be told: wait forever, reading no more (bounded).
        if not self._ahead:
            data = await self.read()
            if not data:
                return
            self._ahead = data
        await anyio.sleep_forever()

    async def close(self) -> None:
        self._broken = self._at_end = True
        if getattr(self.stream, "is_tls", False):
            # Closing TLS sends close_notify, which waits on a peer that does not read.
            await anyio.aclose_forcefully(self.stream)
            return
        # A socket stream closes at once and checkpoints after, on both backends: no
        # forced cancellation, whose Cancelled per connection made 10,000 closes at once
        # keep the loop busy for seconds.
        await self.stream.aclose()

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        try:
            if not self._broken:
                with map_transport_errors():
                    await self.stream.send_eof()
                with anyio.move_on_after(timeout):
                    while limit > 0:
                        chunk = await self.read()
                        if not chunk:
                            break
                        limit -= len(chunk)
        except (ClientDisconnected, NotImplementedError):
            pass
        finally:
            await self.close()  # also when cancelled: closing never waits


async def copy_file(
    transport: Transport,
    fd: int,
    offset: int,
    count: int,
    timeout: float | None,  # noqa: ASYNC109
) -> None:
    """:meth:`Transport.send_file` as reads and writes: one :data:`WRITE_SLICE` at a time.

    For streams that must see the bytes (TLS). A slice is read with ``pread`` in the
    loop's thread: from the page cache that is microseconds, the cost of a thread hop
    more.
    """
    while count > 0:
        data = os.pread(fd, min(count, WRITE_SLICE), offset)
        if not data:
            transport.mark_broken()
            raise FileShrunk
        await transport.write(data, timeout)
        offset += len(data)
        count -= len(data)
