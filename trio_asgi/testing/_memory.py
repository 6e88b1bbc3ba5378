"""An in-memory listener: the real server, fed by trio memory streams instead of sockets.

It is a ``trio.abc.Listener`` (the interface :func:`trio_asgi.serve` adopts), but it
waits with anyio's primitives, so the server can run on it on trio or on asyncio.
"""

from __future__ import annotations

import itertools
from collections import deque

import anyio.lowlevel
import trio

from ._streams import BoundedMemoryStream, _Signal, bounded_memory_stream_pair


class MemoryServerStream(trio.abc.HalfCloseableStream):
    """The server's end of an in-memory connection, with the addresses the scope reports."""

    def __init__(
        self,
        send_stream: trio.abc.SendStream,
        receive_stream: trio.abc.ReceiveStream,
        *,
        local_address: tuple[str, int],
        remote_address: tuple[str, int],
    ) -> None:
        self._stapled = trio.StapledStream(send_stream, receive_stream)
        self.local_address = local_address
        self.remote_address = remote_address

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stapled.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stapled.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stapled.send_eof()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stapled.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self._stapled.aclose()


class MemoryListener(trio.abc.Listener[MemoryServerStream]):
    """A ``trio.abc.Listener`` whose connections are made by :meth:`connect`, in memory.

    Pass it to :func:`trio_asgi.serve` as ``listeners=[listener]``; every
    :meth:`connect` gives the test the client's end of a new connection.

    Args:
        address: The server address the scope reports.
        receive_window: When set, each direction of a connection holds at most this
            many unread bytes and a writer waits for room, like a socket buffer in front
            of a peer that does not read (see :func:`bounded_memory_stream_pair`); both
            halves of the returned client stream are then the same
            :class:`~trio_asgi.testing.BoundedMemoryStream`. ``None``: unbounded.
    """

    def __init__(
        self, *, address: tuple[str, int] = ("127.0.0.1", 8000), receive_window: int | None = None
    ) -> None:
        # A queue rather than a memory channel: an anyio channel left unclosed warns when
        # collected, and a listener that is never served is never closed.
        self._pending: deque[MemoryServerStream] = deque()
        self._arrived = _Signal()
        self._closed = False
        self._ports = itertools.count(50000)
        self.receive_window = receive_window
        self.server_address = address
        #: How the server describes this listener in ``Server.addresses``.
        self.address: str = f"memory:{address[0]}:{address[1]}"

    async def open_stream(
        self, *, receive_window: int | None, client_address: tuple[str, int] | None = None
    ) -> BoundedMemoryStream:
        """Open a connection whose window is chosen here; returns the client's end."""
        client, server = bounded_memory_stream_pair(window=receive_window)
        remote_address = client_address or ("127.0.0.1", next(self._ports))
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.BrokenResourceError("the listener is closed")
        self._pending.append(
            MemoryServerStream(
                server, server, local_address=self.server_address, remote_address=remote_address
            )
        )
        self._arrived.wake_all()
        await anyio.lowlevel.cancel_shielded_checkpoint()
        return client

    async def connect(
        self, *, client_address: tuple[str, int] | None = None
    ) -> trio.StapledStream[trio.abc.SendStream, trio.abc.ReceiveStream]:
        """Open a connection with the listener's ``receive_window``; returns the client's end."""
        client = await self.open_stream(
            receive_window=self.receive_window, client_address=client_address
        )
        return trio.StapledStream(client, client)

    async def accept(self) -> MemoryServerStream:
        await anyio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._closed:
                raise trio.ClosedResourceError("listener closed")
            if self._pending:
                break
            await self._arrived.wait()
        # Taken after the last cancellation point: a cancelled accept loses no connection.
        stream = self._pending.popleft()
        await anyio.lowlevel.cancel_shielded_checkpoint()
        return stream

    async def aclose(self) -> None:
        self._closed = True
        self._arrived.wake_all()
        await anyio.lowlevel.checkpoint()
