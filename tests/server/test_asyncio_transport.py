"""The asyncio fast path (AsyncioTransport) over real sockets, on asyncio and on uvloop.

The server socket tests already run through it on asyncio, and the transport contract
test runs it with the others; these are the cases that are its own: which streams
take it, the bound on what it buffers, waiting for the kernel on a write, and how a
wait ends (deadline, shutdown, reset).
Each test runs on both loops (``anyio_backend`` below). Synchronisation is by
events and ``wait_all_tasks_blocked``; the only real-time waits are the short
timeouts whose expiry is under test.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from trio_asgi import ClientDisconnected, Server
from trio_asgi._server._accept import open_accepted
from trio_asgi._server._asyncio_transport import READ_LIMIT, AsyncioSocketStream, AsyncioTransport
from trio_asgi._server._fast_paths import open_transport
from trio_asgi._server._transport import CLOCK_RESOLUTION, AnyioTransport, ReadTimeout
from trio_asgi._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

TIMEOUT = 5
#: A write timeout that expires for real (kept short: it is waited for).
SHORT = 0.2
#: Far more than the kernel buffers of both ends hold once the client's is small.
BIG = 16 * 1024 * 1024
#: The most one read of the event loop delivers (asyncio's and uvloop's max_size).
LOOP_READ = 256 * 1024


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    """This module is about asyncio's event-loop transports: the stdlib loop and uvloop."""
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return "asyncio"


@asynccontextmanager
async def connection() -> AsyncIterator[tuple[anyio.abc.SocketStream, AsyncioTransport]]:
    """A client stream and the server side of its connection, as our fast path."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            accepted, _ = listening.accept()
            server_stream = await open_accepted(accepted)
            assert server_stream is not None
            transport = open_transport(server_stream)
            assert isinstance(transport, AsyncioTransport)
            try:
                yield client, transport
            finally:
                await transport.close()


def small_receive_buffer(client: anyio.abc.SocketStream) -> None:
    """Shrink the client's receive buffer, so a server write fills it soon."""
    raw = client.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


async def read_exactly(client: anyio.abc.SocketStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await client.receive()
    return bytes(data)


# --- choosing the path ------------------------------------------------------------------------


async def test_sockets_we_accept_take_the_fast_path_and_other_streams_do_not(
    tmp_path: Path,
) -> None:
    # Checked on purpose: a change that loses the fast path must fail here, not
    # silently fall back to the slower generic path.
    async with connection() as (client, transport):
        assert type(transport) is AsyncioTransport
        # anyio's own streams (a listener handed to serve(), the client side) stay on
        # anyio's stream: the fast path never reaches into them.
        assert type(open_transport(client)) is AnyioTransport
    path = str(tmp_path / "s")
    async with (
        await anyio.create_unix_listener(path) as listener,
        await anyio.connect_unix(path) as unix_client,
        await listener.accept() as server_side,
    ):
        assert type(open_transport(server_side)) is AnyioTransport
        assert type(open_transport(unix_client)) is AnyioTransport


async def test_the_stream_of_the_fast_path_is_an_anyio_stream() -> None:
    # What the rest of the server asks of a stream: addresses, and bytes both ways.
    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            stream = AsyncioSocketStream(transport)
            assert stream.extra(SocketAttribute.remote_address) == client.extra(
                SocketAttribute.local_address
            )
            assert stream.extra(SocketAttribute.local_port) == client.extra(
                SocketAttribute.remote_port
            )
            assert stream.extra(SocketAttribute.family) == socket.AF_INET
            await client.send(b"abcdef")
            assert await stream.receive(2) == b"ab"
            assert await stream.receive() == b"cdef"  # the rest was put back
            await stream.send(b"answer")
            assert await read_exactly(client, 6) == b"answer"
            await stream.send_eof()
            with pytest.raises(anyio.EndOfStream):
                await client.receive()
            await client.aclose()
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()


# --- reading ----------------------------------------------------------------------------------


async def test_read_deadlines_then_reading_goes_on() -> None:
    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            with pytest.raises(ReadTimeout):
                await transport.read(anyio.current_time() + SHORT)
            assert await transport.read_idle(anyio.current_time() + SHORT) is None
            await client.send(b"next")
            assert await transport.read_idle(anyio.current_time() + TIMEOUT) == b"next"
            await client.send(b"more")
            assert await transport.read(anyio.current_time() + TIMEOUT) == b"more"


async def test_cancel_idle_read_ends_a_waiting_read_idle_at_once() -> None:
    results: list[bytes | None] = []

    async def read_idle(transport: AsyncioTransport) -> None:
        results.append(await transport.read_idle(anyio.current_time() + 60))

    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            async with anyio.create_task_group() as group:
                group.start_soon(read_idle, transport)
                await anyio.wait_all_tasks_blocked()
                transport.cancel_idle_read()
            assert results == [None]
            transport.cancel_idle_read()  # nothing waits: nothing happens
            await client.send(b"x")
            assert await transport.read_idle(anyio.current_time() + 60) == b"x"


async def test_cancel_idle_read_leaves_a_body_read_waiting() -> None:
    # Shutdown ends idle waits only: a request whose body is on its way is in flight.
    results: list[bytes] = []

    async def read(transport: AsyncioTransport) -> None:
        results.append(await transport.read(anyio.current_time() + 60))

    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            async with anyio.create_task_group() as group:
                group.start_soon(read, transport)
                await anyio.wait_all_tasks_blocked()
                transport.cancel_idle_read()
                await anyio.wait_all_tasks_blocked()
                assert results == []
                await client.send(b"body")
            assert results == [b"body"]


async def test_a_cancelled_wait_leaves_the_transport_readable() -> None:
    # The deadline is the loop's timer, not a cancel scope: cancelling the reader from
    # outside must still end the wait, drop the timer and free the reader slot.
    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            with anyio.move_on_after(SHORT) as scope:
                await transport.read_idle(anyio.current_time() + 60)
            assert scope.cancelled_caught
            with anyio.move_on_after(SHORT) as scope:
                await transport.read(anyio.current_time() + 60)
            assert scope.cancelled_caught
            await client.send(b"after")
            assert await transport.read_idle(anyio.current_time() + TIMEOUT) == b"after"


async def test_a_half_closed_client_reads_as_gone_and_still_gets_the_answer() -> None:
    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            await client.send(b"request")
            await client.send_eof()
            assert await transport.read() == b"request"
            assert await transport.read() == b""
            assert transport.peer_closed()
            await transport.write(b"answer", SHORT)
            assert await read_exactly(client, 6) == b"answer"


async def test_a_flood_of_pipelined_bytes_is_bounded_in_memory() -> None:
    total = 4 * 1024 * 1024
    flood = bytes(range(256)) * (total // 256)
    received = bytearray()
    peak = 0

    with anyio.fail_after(TIMEOUT * 2):
        async with connection() as (client, transport), anyio.create_task_group() as group:
            group.start_soon(client.send, flood)
            while len(received) < total:
                # Let the loop move every byte it will before looking: only the
                # bound, not our reading, stops the client here.
                await anyio.wait_all_tasks_blocked()
                peak = max(peak, transport.buffered)
                assert transport.buffered < READ_LIMIT + LOOP_READ
                data = await transport.read()
                assert 0 < len(data) <= LOOP_READ  # one read of the loop, not cut up
                received += data
    assert peak >= READ_LIMIT  # the client did fill us up to the bound
    assert received == flood  # pausing and resuming lost and reordered nothing


# --- writing ----------------------------------------------------------------------------------


async def test_write_returns_only_once_the_kernel_took_the_bytes() -> None:
    body = bytes(range(256)) * (BIG // 256) + b"tail"  # not a whole number of slices
    written = anyio.Event()

    async def write(transport: AsyncioTransport) -> None:
        await transport.write(body, None)
        written.set()

    with anyio.fail_after(TIMEOUT * 2):
        async with connection() as (client, transport):
            async with anyio.create_task_group() as group:
                group.start_soon(write, transport)
                await anyio.wait_all_tasks_blocked()
                # The kernel's buffers (a few MiB on loopback) cannot hold 16 MiB.
                assert not written.is_set()
                assert await read_exactly(client, len(body)) == body
            assert written.is_set()
            await transport.write(b"after", SHORT)  # a small write goes at once
            assert await read_exactly(client, 5) == b"after"


@pytest.mark.parametrize("size", [BIG, 32 * 1024], ids=["one-big-write", "small-writes"])
async def test_a_client_that_stops_reading_times_the_write_out(size: int) -> None:
    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport):
            small_receive_buffer(client)
            started = anyio.current_time()
            with pytest.raises(ClientDisconnected, match="did not read"):  # noqa: PT012
                while True:  # until the kernel's buffers are full
                    started = anyio.current_time()
                    await transport.write(b"x" * size, SHORT)
            # The contract lets a deadline fire by the loop's clock, up to its resolution
            # early: uvloop's timers are due by a millisecond clock.
            assert SHORT - CLOCK_RESOLUTION <= anyio.current_time() - started < TIMEOUT
            assert transport.broken
            with pytest.raises(ClientDisconnected):  # no second try on a broken connection
                await transport.write(b"y", SHORT)


async def test_a_peer_reset_mid_write_ends_the_write() -> None:
    outcome: list[BaseException] = []

    async def write(transport: AsyncioTransport) -> None:
        try:
            await transport.write(b"x" * BIG, 60)
        except ClientDisconnected as exc:
            outcome.append(exc)

    with anyio.fail_after(TIMEOUT):
        async with connection() as (client, transport), anyio.create_task_group() as group:
            small_receive_buffer(client)
            group.start_soon(write, transport)
            await anyio.wait_all_tasks_blocked()
            assert not outcome  # the write waits for the client
            raw = client.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await client.aclose()  # with SO_LINGER 0: a reset, not a FIN
        assert len(outcome) == 1
        assert "gone" in str(outcome[0])
        assert transport.broken
        assert transport.peer_closed()


async def test_shutdown_ends_a_write_that_waits_without_a_write_timeout(
    run_server: Any, connect: Any
) -> None:
    # The peer bug: a shielded write keeps a server alive through shutdown. With no
    # write timeout at all, only the graceful-shutdown deadline can end this write.
    writing = anyio.Event()
    ended: list[str] = []

    async def flood(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        writing.set()
        try:
            await send({"type": "http.response.body", "body": b"z" * BIG})
        except BaseException as exc:
            ended.append(type(exc).__name__)
            raise

    with anyio.fail_after(TIMEOUT):
        async with run_server(flood, timeout_write=None, timeout_graceful_shutdown=SHORT) as server:
            assert isinstance(server, Server)
            client = await connect(server)
            small_receive_buffer(client.stream)
            await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await writing.wait()
            await anyio.wait_all_tasks_blocked()
            started = anyio.current_time()
        # Leaving run_server shut the server down and waited for it to finish.
        assert anyio.current_time() - started < TIMEOUT - 1
    assert ended == ["CancelledError"]
