"""Which :class:`~._transport.Transport` serves a connection: a fast path or anyio's stream.

The I/O layer is one code path on anyio. Only the innermost step, moving bytes
between a socket and our buffers, has a runtime-specific version where anyio's
generic one costs a measurable share of a request (see docs/benchmarks.md):
:class:`~._trio_transport.TrioSocketTransport` on trio and
:class:`~._asyncio_transport.AsyncioTransport` on asyncio and uvloop. Each implements
the :class:`~._transport.Transport` contract, and ``test_transport_contract.py`` runs
all three (with anyio's generic one) on every loop.

``TRIO_ASGI_FAST_PATH=0`` in the environment turns the fast paths off, so the
benchmark can measure what they save (and a regression can be bisected).
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
import trio

from ._asyncio_group import open_asyncio_group
from ._asyncio_transport import AsyncioSocketStream
from ._transport import AnyioTransport, Transport
from ._trio_transport import TrioSocketTransport

#: What a connection task is started with (an accepted socket or stream).
_Accepted = TypeVar("_Accepted")

#: Read once at import: the benchmark sets it per server process.
ENABLED = os.environ.get("TRIO_ASGI_FAST_PATH", "1") != "0"


def open_transport(stream: anyio.abc.ByteStream) -> Transport:
    """The transport for a connection's stream: a fast path when one applies.

    The trio fast path applies to anyio's own socket streams (TCP and Unix) under
    trio; the asyncio one is already inside the streams that
    :func:`~._accept.open_accepted` makes for TCP sockets under asyncio or uvloop.
    Anything else (TLS, a stream or listener handed to ``serve()``, a wrapped trio
    stream, an in-memory stream) goes through anyio's stream interface.
    """
    if isinstance(stream, AsyncioSocketStream):
        return stream.transport
    if ENABLED and isinstance(stream, anyio.abc.SocketStream):
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
        if isinstance(sock, socket.socket) and running_on_trio():
            return TrioSocketTransport(sock)
    return AnyioTransport(stream)


class GroupScope(Protocol):
    """What the server uses of a task group's cancel scope (trio's and anyio's have it)."""

    deadline: float

    @property
    def cancelled_caught(self) -> bool: ...

    def cancel(self) -> None: ...


class ConnectionGroup:
    """The task group that owns the connection tasks, whichever kind it is."""

    __slots__ = ("_start_soon", "cancel_scope")

    def __init__(self, start_soon: Callable[..., object], cancel_scope: GroupScope) -> None:
        self._start_soon = start_soon
        self.cancel_scope = cancel_scope

    def start(
        self,
        handler: Callable[[_Accepted], Coroutine[Any, Any, None]],
        accepted: _Accepted,
    ) -> None:
        """Start ``handler(accepted)`` as a task of the group."""
        self._start_soon(handler, accepted, name=_CONNECTION_TASK)


#: The name of every connection task (a fixed string, not one built per task).
_CONNECTION_TASK = "trio_asgi connection"


@asynccontextmanager
async def open_connection_group() -> AsyncIterator[ConnectionGroup]:
    """Open the task group for connection tasks: trio's own nursery when on trio.

    anyio's TaskGroup on trio wraps every task it starts (a task handle with its own
    cancel scope, a wrapper coroutine, a name built from the function): about 1.5 KiB
    per idle connection, a fifth of all it costs (measured with tracemalloc). A trio
    nursery owns its tasks in the same way, without the wrapping.
    """
    if ENABLED and running_on_trio():
        async with trio.open_nursery() as nursery:
            yield ConnectionGroup(nursery.start_soon, nursery.cancel_scope)
    elif ENABLED:  # asyncio and uvloop: the same saving (see _asyncio_group)
        async with open_asyncio_group() as own:
            yield ConnectionGroup(own.start_soon, own.cancel_scope)
    else:
        async with anyio.create_task_group() as group:
            yield ConnectionGroup(group.start_soon, group.cancel_scope)


def running_on_trio() -> bool:
    """Whether the current task runs under trio (not asyncio)."""
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True
