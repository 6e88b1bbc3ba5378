"""Which :class:`~._transport.Transport` serves a connection: a fast path or anyio's stream.

The I/O layer is one code path on anyio. Only the innermost step, moving bytes
between a socket and our buffers, has a runtime-specific version where anyio's
generic one costs a measurable share of a request (see docs/benchmarks.md):
:class:`~._trio_transport.TrioSocketTransport` on trio and
:class:`~._asyncio_transport.AsyncioTransport` on asyncio and uvloop. Each keeps the
:class:`~._transport.Transport` contract, and the server tests run on all of them.

``TRIO_ASGI_FAST_PATH=0`` in the environment turns the fast paths off, so the
benchmark can measure what they save (and a regression can be bisected).
"""

from __future__ import annotations

import os
import socket

import anyio.abc
import trio

from ._asyncio_transport import asyncio_transport_for
from ._transport import Transport
from ._trio_transport import TrioSocketTransport

#: Read once at import: the benchmark sets it per server process.
ENABLED = os.environ.get("TRIO_ASGI_FAST_PATH", "1") != "0"


def open_transport(stream: anyio.abc.ByteStream) -> Transport:
    """The transport for a connection's stream: a fast path when one applies.

    The trio fast path applies to anyio's own socket streams (TCP and Unix) under
    trio, the asyncio one to anyio's TCP streams under asyncio or uvloop. Anything
    else (TLS, a wrapped trio stream, an in-memory stream) goes through anyio's
    stream interface.
    """
    if ENABLED and isinstance(stream, anyio.abc.SocketStream):
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if isinstance(sock, socket.socket) and _running_on_trio():
            return TrioSocketTransport(stream, sock)
        fast = asyncio_transport_for(stream)
        if fast is not None:
            return fast
    return Transport(stream)


def _running_on_trio() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True
