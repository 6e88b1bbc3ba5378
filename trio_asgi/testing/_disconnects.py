"""Clients that leave: :func:`disconnects` draws the point, :meth:`Disconnect.play` leaves there.

A client may go at any moment: in the middle of its request, right after it, after the
first bytes of the response, or after shutting down its write side. An app must notice
(``http.disconnect`` from ``receive()``, an ``OSError`` from ``send()``) and finish;
:func:`~trio_asgi.testing.open_test_server` fails the test with
:class:`~trio_asgi.testing.HungRequest` when it does not within ``disconnect_timeout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from hypothesis import strategies as st

from ._connection import TestConnection
from ._repr import CompactRepr

#: Virtual seconds the client waits for the response bytes it means to read.
_READ_WAIT = 1.0


@dataclass(frozen=True, repr=False)
class Disconnect(CompactRepr):
    """Where a client leaves.

    Attributes:
        sent: How many bytes of the request go out first (``None``: all of them;
            more than the request also means all).
        read: How many response bytes the client reads before it leaves (it leaves
            earlier if the server sends fewer within a second).
        half_close: Shut down the write side first (``send_eof``), then leave.
    """

    sent: int | None
    read: int
    half_close: bool

    async def play(self, client: TestConnection, request: bytes) -> bytes:
        """Send ``request`` (or its first ``sent`` bytes), read, then drop the connection.

        Returns:
            The response bytes read before leaving.
        """
        data = request if self.sent is None else request[: self.sent]
        if data and not await client.send(data):
            return b""
        if self.half_close:
            await client.send_eof()
        received = bytearray()
        with anyio.move_on_after(_READ_WAIT):
            while len(received) < self.read:
                chunk = await client.receive_some()
                if not chunk:
                    break
                received += chunk
        await client.close()
        return bytes(received)


def disconnects(*, max_read: int = 4096) -> st.SearchStrategy[Disconnect]:
    """Points where a client leaves: mostly after a whole request, before or after
    reading the response's first bytes; sometimes in the middle of the request.

    Args:
        max_read: The most response bytes read before leaving.

    Example:
        >>> from hypothesis import given
        >>> @given(disconnects())
        ... def test_points(leave):
        ...     assert leave.read >= 0
        >>> test_points()
    """
    return st.builds(
        Disconnect,
        sent=st.one_of(st.none(), st.none(), st.integers(0, 1024)),
        read=st.one_of(st.sampled_from([0, 1]), st.integers(0, max_read)),
        half_close=st.booleans(),
    )
