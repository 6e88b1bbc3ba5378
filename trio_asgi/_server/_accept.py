"""Accepting connections: every pending one per wake-up on the sockets we own.

Why batches: under load, one turn of the event loop (asyncio) or one scheduler
batch (trio) serves every busy connection, a few milliseconds at 64 busy
connections. An accept loop that takes one connection per turn (and anyio's
``accept()`` takes several turns per connection: a checkpoint, the accept, the
transport's set-up) makes the 64th connection of a burst wait for its first
response for hundreds of milliseconds; measured with 64 new keep-alive
connections against a busy server: up to 450 ms on asyncio, 210 ms on trio,
where the steady state is 5 ms. :class:`SocketAcceptor` waits for the listening
socket to become readable, takes everything pending (up to :data:`ACCEPT_BATCH`)
with non-blocking ``accept()`` calls, and leaves wrapping each socket in a
stream to the connection's own task.

Listeners handed to :func:`~trio_asgi.serve` (anyio's, trio's, TLS ones) keep
their own ``accept()``, one connection per call, through :class:`StreamAcceptor`
and :class:`~._trio_streams.TrioListener`.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from typing import Protocol, TypeAlias

import anyio
import anyio.abc

from . import _fast_paths
from ._asyncio_transport import open_asyncio_stream

#: What an accept loop hands a connection task: a ready stream, or a socket we
#: accepted ourselves that the task wraps (so the accept loop never waits on it).
Accepted: TypeAlias = anyio.abc.ByteStream | socket.socket

#: The most connections one wake-up of an accept loop takes. asyncio takes up to
#: the listen backlog per readable event; a bound keeps one burst from holding
#: the accept loop for long while the connections it starts wait to run.
ACCEPT_BATCH = 128

#: accept() errors that are about one connection that went away before we took
#: it, not about the listener: accept(2) on Linux reports the pending network
#: errors of the new connection, and says to treat them like EAGAIN.
_PER_CONNECTION_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
    )
    if hasattr(errno, name)
)


class Acceptor(Protocol):
    """What an accept loop needs from a listener."""

    async def accept_batch(self) -> Sequence[Accepted]:
        """Wait for at least one connection; return all that can be had without waiting.

        Raises:
            anyio.BrokenResourceError: accepting failed; when the cause (``__cause__``)
                has an errno in ``_listeners.CAPACITY_ERRNOS`` it is worth retrying later.
        """
        ...

    async def aclose(self) -> None: ...


class SocketAcceptor:
    """A listening socket the server owns (bound from the config, or given as a socket)."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock

    async def accept_batch(self) -> list[Accepted]:
        while True:
            await anyio.wait_readable(self.sock)
            accepted: list[Accepted] = []
            while len(accepted) < ACCEPT_BATCH:
                try:
                    client, _ = self.sock.accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _PER_CONNECTION_ERRNOS:
                        continue
                    if accepted:
                        break  # serve these; the next call meets the error again
                    raise anyio.BrokenResourceError from exc
                accepted.append(client)
            if accepted:
                return accepted
            # Readable but nothing to take: another process sharing the socket
            # (SO_REUSEPORT, a pre-fork supervisor) got there first.

    async def aclose(self) -> None:
        # The server closes listeners after their accept loops ended; should anything
        # still wait on the socket, it gets ClosedResourceError instead of a reused fd.
        if self.sock.fileno() != -1:
            anyio.notify_closing(self.sock)
            self.sock.close()


class StreamAcceptor:
    """An anyio listener given to :func:`~trio_asgi.serve`: one connection per call."""

    __slots__ = ("listener",)

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self.listener = listener

    async def accept_batch(self) -> list[Accepted]:
        return [await self.listener.accept()]

    async def aclose(self) -> None:
        await self.listener.aclose()


async def open_accepted(accepted: Accepted) -> anyio.abc.ByteStream | None:
    """The stream for an accepted connection (wrapping a socket we accepted ourselves).

    Owns ``accepted``: if wrapping fails or is cancelled, the socket is closed.
    Returns ``None`` for a client that is already gone (it reset the connection
    between our accept() and now): nothing to serve and nothing worth a log line.
    A TCP socket under asyncio or uvloop gets the asyncio fast path's own stream
    (unless ``TRIO_ASGI_FAST_PATH=0``), anything else anyio's.
    """
    if not isinstance(accepted, socket.socket):
        return accepted
    try:
        if accepted.family == socket.AF_UNIX:
            return await anyio.abc.UNIXSocketStream.from_socket(accepted)
        # Responses are written whole; waiting for more to coalesce only adds latency.
        accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _fast_paths.ENABLED and not _fast_paths.running_on_trio():
            return await open_asyncio_stream(accepted)
        return await anyio.abc.SocketStream.from_socket(accepted)
    except (OSError, ValueError):
        # anyio raises ValueError for a socket that is no longer connected.
        accepted.close()
        return None
    except BaseException:
        accepted.close()
        raise
