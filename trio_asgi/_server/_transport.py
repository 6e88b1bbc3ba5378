"""One connection's byte stream, with deadlines and one way of failing.

Everything that touches the socket of a connection goes through :class:`Transport`,
so transport errors become our errors at exactly one boundary: a read returns
``b""`` when the client is gone, a write raises :class:`~trio_asgi.ClientDisconnected`.
Deadlines are cancel scopes; nothing here is shielded.
"""

from __future__ import annotations

import math
import socket
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._errors import ClientDisconnected

if TYPE_CHECKING:
    import trio

READ_SIZE = 65536
#: A write timeout bounds the wait for progress, not the whole write: each slice of a
#: large write must be taken within the timeout, so a slow but steady reader of a big
#: body is not cut off, while a client that stops reading still is.
WRITE_SLICE = 65536

#: recv() flags that look at waiting input without taking it and without blocking.
_PEEK_FLAGS = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)

#: What a stream raises when the peer is gone or the stream was closed under us.
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


class ReadTimeout(Exception):
    """The client sent nothing before the deadline."""


class Transport:
    __slots__ = ("broken", "idle_scope", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        #: The peer is gone or a write failed: no more writes will be tried.
        self.broken = False
        #: The scope of a :meth:`read_idle` that is waiting, for :meth:`cancel_idle_read`.
        self.idle_scope: anyio.CancelScope | trio.CancelScope | None = None

    async def read_idle(self, deadline: float) -> bytes | None:
        """Wait for bytes of a next request, as :meth:`read` does.

        Returns:
            None if ``deadline`` passed or :meth:`cancel_idle_read` was called first.
        """
        scope = self.idle_scope = anyio.CancelScope(deadline=deadline)
        try:
            with scope:
                return await self.read()
        finally:
            self.idle_scope = None
        return None

    def cancel_idle_read(self) -> None:
        """End a waiting :meth:`read_idle` now, as if its deadline had passed (shutdown)."""
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    def end_idle_read_by(self, deadline: float) -> None:
        """Bring a waiting :meth:`read_idle`'s deadline forward to ``deadline`` (shutdown)."""
        if self.idle_scope is not None:
            self.idle_scope.deadline = min(self.idle_scope.deadline, deadline)

    async def read(self, deadline: float = math.inf) -> bytes:
        """Up to READ_SIZE bytes; ``b""`` once the client closed or the connection broke.

        (The asyncio fast path hands over one read of the event loop whole, up to
        256 KiB: see :meth:`._asyncio_transport._ConnectionProtocol.take`.)

        Raises:
            ReadTimeout: nothing arrived before ``deadline`` (an absolute anyio time).
        """
        try:
            if deadline == math.inf:
                return await self.stream.receive(READ_SIZE)
            with anyio.CancelScope(deadline=deadline) as scope:
                return await self.stream.receive(READ_SIZE)
        except _GONE:
            return b""
        assert scope.cancelled_caught
        raise ReadTimeout

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """Hand ``data`` to the socket; returns when it has been taken.

        Raises:
            ClientDisconnected: the client is gone, or did not read for ``timeout`` seconds.
        """
        if self.broken:
            raise self._gone()
        try:
            if timeout is None:
                await self.stream.send(data)
                return
            with anyio.move_on_after(timeout) as scope:
                if len(data) <= WRITE_SLICE:
                    await self.stream.send(data)
                    return
                for start in range(0, len(data), WRITE_SLICE):
                    scope.deadline = anyio.current_time() + timeout
                    await self.stream.send(data[start : start + WRITE_SLICE])
                return
        except _GONE as exc:
            raise self._gone() from exc
        except BaseException:
            # Cancelled midway: part of ``data`` may be on the wire, ending mid-message,
            # so nothing written after it could be read right.
            self.broken = True
            raise
        assert scope.cancelled_caught
        raise self._stalled(timeout)

    def _gone(self) -> ClientDisconnected:
        """Mark the transport broken; the error for a write to a client that is gone."""
        self.broken = True
        return ClientDisconnected("the client is gone")

    def _stalled(self, timeout: float | None) -> ClientDisconnected:
        """Mark the transport broken; the error for a client that stopped reading."""
        self.broken = True
        return ClientDisconnected(f"the client did not read for {timeout} seconds")

    def peer_closed(self) -> bool:
        """Whether the client has already closed (FIN or RST), asked without waiting.

        For a ``receive()`` from an already-cancelled scope (Starlette's
        ``is_disconnected()``), where :meth:`read` is cancelled before it reads: the
        socket is peeked instead, taking nothing. False when it cannot tell: bytes are
        waiting (maybe a pipelined request), or the stream has no socket.
        """
        sock: object = self.stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if sock is None:
            return False
        try:
            if isinstance(sock, socket.socket):
                return sock.recv(1, _PEEK_FLAGS) == b""
            # asyncio hands out a read-only view of its socket: peek through a temporary
            # socket object on the same descriptor, detached (never closed) afterwards.
            peeker = socket.socket(fileno=sock.fileno())  # type: ignore[attr-defined]
            try:
                return peeker.recv(1, _PEEK_FLAGS) == b""
            finally:
                peeker.detach()
        except BlockingIOError:
            return False
        except (OSError, ValueError):  # reset, or the descriptor is already closed
            return True

    async def write_quietly(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """:meth:`write`, for a last word (an error reply): a client already gone is fine."""
        try:
            await self.write(data, timeout)
        except ClientDisconnected:
            pass

    async def close(self) -> None:
        """Close without waiting on the peer (never blocks, also when cancelled)."""
        self.broken = True
        if getattr(self.stream, "is_tls", False):
            # Closing TLS sends close_notify, which waits on a peer that does not read.
            await anyio.aclose_forcefully(self.stream)
            return
        # A socket stream closes at once and checkpoints after, on both backends: no
        # forced cancellation, whose Cancelled per connection made 10,000 closes at once
        # keep the loop busy for seconds.
        await self.stream.aclose()

    async def linger_close(self, timeout: float = 1.0, limit: int = 256 * 1024) -> None:  # noqa: ASYNC109
        """Close after telling the peer we are done, reading (and dropping) what it still sends.

        Closing a socket with unread input makes the kernel send RST, which can destroy
        a response the client has not read yet (an error reply, say). So: shut down our
        side, then read for a moment, bounded in time and bytes, before closing.
        """
        try:
            if not self.broken:
                await self.stream.send_eof()
                with anyio.move_on_after(timeout):
                    while limit > 0:
                        chunk = await self.stream.receive(READ_SIZE)
                        limit -= len(chunk)
        except (*_GONE, NotImplementedError):
            pass
        finally:
            await self.close()  # also when cancelled: closing never waits
