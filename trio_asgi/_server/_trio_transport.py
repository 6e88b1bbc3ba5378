"""The hot path on trio: a connection's socket read and written directly.

Under trio, anyio's socket stream is a wrapper over a trio socket, which is a
wrapper over the kernel socket; every ``send`` and ``receive`` passes through
both, and each is a full trio checkpoint (a trip through the scheduler) even
when the kernel took or had the bytes at once. :class:`TrioSocketTransport`
implements :class:`~trio_asgi._server._transport.Transport` on the non-blocking
socket itself, nothing of anyio's stream in it:

- an operation the kernel completes at once returns without a trip through the
  scheduler; every :data:`YIELD_EVERY`-th one still checkpoints, so a client
  that always has bytes ready (a deep pipeline) cannot monopolise the loop or
  defer a cancellation for long;
- an operation that has to wait does so in ``trio.lowlevel.wait_readable`` /
  ``wait_writable`` under a cancel-scope deadline, as before;
- a read that would wait first lets one scheduler pass go by and polls again (a
  *late poll*), while such polls keep finding bytes: trio's epoll registrations are
  one-shot, so every wait costs an ``epoll_ctl()`` and a wake-up, and under load the
  client's next request is usually there by the next pass.

Closing is trio's (``notify_closing``, then ``close``); TLS, in-memory streams and
asyncio stay on anyio's stream: see :func:`~._fast_paths.open_transport`.
"""

from __future__ import annotations

import math
import os
import socket

import trio

from .._errors import ClientDisconnected
from ._transport import (
    GONE_ERRORS,
    READ_SIZE,
    WRITE_SLICE,
    YIELD_EVERY,
    FileShrunk,
    ReadTimeout,
    client_gone,
    map_transport_errors,
    peek,
    peek_closed,
    stalled,
)
from ._write_turns import BULK_WRITE, spend_turn

#: The most one ``sendfile`` call is asked to send (the kernel takes what fits anyway).
SENDFILE_SLICE = 4 * WRITE_SLICE

#: After a late poll that found nothing, this many reads wait in epoll without one.
LATE_POLL_BACKOFF = 8


class TrioSocketTransport:
    """:class:`~._transport.Transport` over a plain TCP or Unix socket, on trio."""

    __slots__ = (
        "_broken",
        "_late_polls",
        "_sock",
        "_speculate",
        "_turn_left",
        "_unyielded",
        "idle_scope",
        "write_timed_out",
    )

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._broken = False
        self.write_timed_out = False
        self._unyielded = 0
        #: Bytes of large writes this connection's turn still allows (see _write_turns).
        self._turn_left = 0
        #: Try recv() before waiting: the last read filled the buffer, so more is
        #: likely waiting in the kernel (or nothing was read yet on this connection).
        self._speculate = True
        #: Below zero: waits left before a late poll is tried again (see _late_poll).
        self._late_polls = -LATE_POLL_BACKOFF
        #: The scope of a :meth:`read_idle` that is waiting, for :meth:`cancel_idle_read`.
        self.idle_scope: trio.CancelScope | None = None

    @property
    def broken(self) -> bool:
        return self._broken

    def mark_broken(self) -> None:
        self._broken = True

    async def _late_poll(self) -> bytes | None:
        """Let one scheduler pass go by, then recv(): None if there is still nothing.

        Also None at once, without the pass, while backing off.

        Waiting costs trio an epoll_ctl() to re-arm the socket (its registrations are
        one-shot) and a wake-up. Under load the peer's next bytes have usually arrived
        by the next pass, and one recv() takes them; a late poll that finds nothing
        makes the next LATE_POLL_BACKOFF waits go straight to epoll.
        """
        if self._late_polls < 0:
            self._late_polls += 1
            return None
        await trio.lowlevel.checkpoint()
        data = self._recv_now()
        self._late_polls = 0 if data is not None else -LATE_POLL_BACKOFF
        return data

    async def _completed_at_once(self) -> None:
        """After an operation that did not wait: checkpoint if we have not for a while."""
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    def _recv_now(self) -> bytes | None:
        """What the kernel has for us now (``b""``: gone); None if nothing yet."""
        try:
            data = self._sock.recv(READ_SIZE)
        except BlockingIOError:
            self._speculate = False
            return None
        except GONE_ERRORS:  # the error map's classes, caught without a `with` per call
            return b""
        # A short read took all there was: the peer (an HTTP client waiting for our
        # answer, a WebSocket client waiting for an echo) has most likely sent nothing
        # more yet, and a recv() before the next wait would be a wasted syscall.
        self._speculate = len(data) == READ_SIZE
        return data

    async def _recv_when_ready(self) -> bytes:
        self._unyielded = 0
        data = await self._late_poll()
        if data is not None:
            return data
        while True:
            try:
                await trio.lowlevel.wait_readable(self._sock)
            except trio.ClosedResourceError:
                return b""
            data = self._recv_now()
            if data is not None:
                return data

    async def read(self, deadline: float = math.inf) -> bytes:
        if self._speculate:
            data = self._recv_now()
            if data is not None:
                await self._completed_at_once()
                return data
        if deadline == math.inf:
            return await self._recv_when_ready()
        with trio.CancelScope(deadline=deadline) as scope:
            return await self._recv_when_ready()
        assert scope.cancelled_caught
        raise ReadTimeout

    async def read_idle(self, deadline: float) -> bytes | None:
        if self._speculate:
            data = self._recv_now()
            if data is not None:
                await self._completed_at_once()
                return data
        # The scope is made only when the kernel had nothing at once; the late poll runs
        # inside it, so cancel_idle_read ends it too. The wait repeats _recv_when_ready
        # on purpose: one coroutine frame less for every idle connection to keep.
        self._unyielded = 0
        scope = self.idle_scope = trio.CancelScope(deadline=deadline)
        try:
            with scope:
                data = await self._late_poll()
                if data is not None:
                    return data
                while True:
                    try:
                        await trio.lowlevel.wait_readable(self._sock)
                    except trio.ClosedResourceError:
                        return b""
                    data = self._recv_now()
                    if data is not None:
                        return data
        finally:
            self.idle_scope = None
        return None

    def cancel_idle_read(self) -> None:
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        if self._broken:
            raise client_gone()
        bulk = len(data) >= BULK_WRITE
        if bulk:  # large writes checkpoint by taking turns (see _write_turns)
            self._turn_left = await spend_turn(self._turn_left, len(data))
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except GONE_ERRORS as exc:  # the error map's classes, without a `with` per call
            self._broken = True
            raise client_gone() from exc
        if sent == len(data):
            if not bulk:
                await self._completed_at_once()
            return
        self._turn_left = 0  # waiting for the client ends the turn
        self._unyielded = 0
        await self._write_rest(memoryview(data)[sent:], timeout)

    async def _write_rest(self, view: memoryview, timeout: float | None) -> None:  # noqa: ASYNC109
        """Wait for room and write the rest; each WRITE_SLICE must go within ``timeout``."""
        sock = self._sock
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        progress = 0  # bytes taken since the deadline last moved
        try:
            with map_transport_errors(), trio.CancelScope(deadline=deadline) as scope:
                while view:
                    await trio.lowlevel.wait_writable(sock)
                    try:
                        sent = sock.send(view)
                    except BlockingIOError:
                        continue
                    view = view[sent:]
                    progress += sent
                    if timeout is not None and progress >= WRITE_SLICE:
                        progress = 0
                        scope.deadline = trio.current_time() + timeout
                return
        except BaseException:
            # Gone, or cancelled midway: the bytes on the wire end mid-message, so
            # nothing written after them could be read right.
            self._broken = True
            raise
        assert scope.cancelled_caught
        self._broken = self.write_timed_out = True
        raise stalled(timeout)

    async def send_file(self, fd: int, offset: int, count: int, timeout: float | None) -> None:  # noqa: ASYNC109
        """``os.sendfile`` into the socket; waits for room under the write deadline rule."""
        if self._broken:
            raise client_gone()
        sock = self._sock
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        progress = 0  # bytes taken since the deadline last moved
        try:
            with map_transport_errors(), trio.CancelScope(deadline=deadline) as scope:
                while count > 0:
                    try:
                        sent = os.sendfile(sock.fileno(), fd, offset, min(count, SENDFILE_SLICE))
                    except BlockingIOError:
                        await trio.lowlevel.wait_writable(sock)
                        continue
                    if not sent:
                        raise FileShrunk  # noqa: TRY301 - the except below marks the transport broken
                    offset += sent
                    count -= sent
                    progress += sent
                    if progress >= WRITE_SLICE:
                        progress = 0
                        if timeout is not None:
                            scope.deadline = trio.current_time() + timeout
                        await trio.lowlevel.checkpoint()  # a fast reader: let others run
                await self._completed_at_once()
                return
        except BaseException:
            self._broken = True  # gone, cancelled midway, or short: the body ends short
            raise
        self._broken = self.write_timed_out = True
        raise stalled(timeout)

    async def write_quietly(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        try:
            await self.write(data, timeout)
        except ClientDisconnected:
            pass

    def peer_closed(self) -> bool:
        return peek_closed(self._sock)

    async def wait_peer_closed(self) -> None:
        # Readable means bytes, FIN or RST: peek tells the last two apart from the first.
        # Bytes that are not the end hide whether it follows: then wait forever.
        while True:
            try:
                await trio.lowlevel.wait_readable(self._sock)
            except trio.ClosedResourceError:
                return  # closed under us: nobody is there any more
            waiting = peek(self._sock)
            if waiting == b"":
                return
            if waiting is not None:
                await trio.sleep_forever()

    async def close(self) -> None:
        self._broken = True
        sock = self._sock
        if sock.fileno() != -1:
            trio.lowlevel.notify_closing(sock)  # a task waiting on it wakes, not a reused fd
            sock.close()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        try:
            if not self._broken:
                with map_transport_errors():
                    self._sock.shutdown(socket.SHUT_WR)
                with trio.move_on_after(timeout):
                    while limit > 0:
                        chunk = await self.read()
                        if not chunk:
                            break
                        limit -= len(chunk)
        except ClientDisconnected:
            pass
        finally:
            await self.close()  # also when cancelled: closing never waits
