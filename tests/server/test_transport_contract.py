"""Every transport against the one contract of :class:`~trio_asgi._server._transport.Transport`.

Each test runs for every (implementation, loop) pair the server uses: the trio fast
path and anyio's generic transport on trio, the asyncio fast path and the generic one
on asyncio and on uvloop. The transports are built directly (not through
``open_transport``), so the pairs are the same whatever ``TRIO_ASGI_FAST_PATH`` says.
Real loopback sockets; synchronisation by ``wait_all_tasks_blocked`` (loopback delivers
a sent byte at once); the only real-time waits are short deadlines whose expiry is
under test.
"""

from __future__ import annotations

import math
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from trio_asgi import ClientDisconnected
from trio_asgi._server._asyncio_transport import open_asyncio_stream
from trio_asgi._server._transport import (
    CLOCK_RESOLUTION,
    MAX_READ,
    AnyioTransport,
    FileShrunk,
    ReadTimeout,
    Transport,
)
from trio_asgi._server._trio_transport import TrioSocketTransport

pytestmark = pytest.mark.anyio

TIMEOUT = 5
#: A deadline that expires for real (kept short: it is waited for).
SHORT = 0.2
#: Far more than the kernel buffers of both ends hold once the client's is small.
BIG = 16 * 1024 * 1024


async def _trio_fast(sock: socket.socket) -> Transport:
    return TrioSocketTransport(sock)


async def _asyncio_fast(sock: socket.socket) -> Transport:
    return (await open_asyncio_stream(sock)).transport


async def _generic(sock: socket.socket) -> Transport:
    return AnyioTransport(await anyio.abc.SocketStream.from_socket(sock))


#: (id, anyio backend, backend options, how the server side is made)
CASES: list[tuple[str, str, dict[str, Any], Callable[[socket.socket], Awaitable[Transport]]]] = [
    ("trio-fast", "trio", {}, _trio_fast),
    ("trio-generic", "trio", {}, _generic),
    ("asyncio-fast", "asyncio", {}, _asyncio_fast),
    ("asyncio-generic", "asyncio", {}, _generic),
    ("uvloop-fast", "asyncio", {"use_uvloop": True}, _asyncio_fast),
    ("uvloop-generic", "asyncio", {"use_uvloop": True}, _generic),
]


@pytest.fixture(params=CASES, ids=[case[0] for case in CASES])
def case(request: pytest.FixtureRequest) -> tuple[Any, ...]:
    return tuple(request.param)


@pytest.fixture
def anyio_backend(case: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
    return case[1], case[2]


Pair = Callable[[], Any]


@pytest.fixture
def pair(case: tuple[Any, ...]) -> Pair:
    """``async with pair() as (transport, client)``: a loopback connection."""
    make: Callable[[socket.socket], Awaitable[Transport]] = case[3]

    @asynccontextmanager
    async def _pair() -> AsyncIterator[tuple[Transport, anyio.abc.SocketStream]]:
        with socket.create_server(("127.0.0.1", 0)) as listening:
            port = listening.getsockname()[1]
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                accepted, _ = listening.accept()
                accepted.setblocking(False)
                transport = await make(accepted)
                try:
                    yield transport, client
                finally:
                    await transport.close()

    return _pair


def reset(client: anyio.abc.SocketStream) -> None:
    """Make the client's close a reset (SO_LINGER 0), not a FIN."""
    raw = client.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def small_receive_buffer(client: anyio.abc.SocketStream) -> None:
    raw = client.extra(SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


async def read_all(transport: Transport) -> bytes:
    data = bytearray()
    while chunk := await transport.read():
        assert len(chunk) <= MAX_READ
        data += chunk
    return bytes(data)


async def read_exactly(client: anyio.abc.SocketStream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        data += await client.receive()
    return bytes(data)


# --- reading ----------------------------------------------------------------------------------


async def test_reads_return_the_bytes_then_empty_at_eof(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            await client.send(b"request")
            await client.send_eof()
            assert await read_all(transport) == b"request"
            assert await transport.read() == b""  # and stays so
            assert await transport.read_idle(anyio.current_time() + TIMEOUT) == b""
            # A half-closed client still gets its answer.
            await transport.write(b"answer", SHORT)
            assert await read_exactly(client, 6) == b"answer"


async def test_a_read_deadline_raises_read_timeout_then_reading_goes_on(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            started = anyio.current_time()
            with pytest.raises(ReadTimeout):
                await transport.read(started + SHORT)
            assert anyio.current_time() - started >= SHORT - CLOCK_RESOLUTION
            started = anyio.current_time()
            assert await transport.read_idle(started + SHORT) is None
            assert anyio.current_time() - started >= SHORT - CLOCK_RESOLUTION
            await client.send(b"next")
            assert await transport.read_idle(anyio.current_time() + TIMEOUT) == b"next"
            await client.send(b"more")
            assert await transport.read(anyio.current_time() + TIMEOUT) == b"more"


async def test_cancel_idle_read_ends_read_idle_and_not_read(pair: Pair) -> None:
    idle: list[bytes | None] = []
    body: list[bytes] = []

    async def read_idle(transport: Transport) -> None:
        idle.append(await transport.read_idle(math.inf))

    async def read(transport: Transport) -> None:
        body.append(await transport.read(math.inf))

    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            async with anyio.create_task_group() as group:
                group.start_soon(read_idle, transport)
                await anyio.wait_all_tasks_blocked()
                transport.cancel_idle_read()
            assert idle == [None]
            transport.cancel_idle_read()  # nothing waits: nothing happens
            async with anyio.create_task_group() as group:
                group.start_soon(read, transport)
                await anyio.wait_all_tasks_blocked()
                transport.cancel_idle_read()  # a body read is in flight: it goes on
                await anyio.wait_all_tasks_blocked()
                assert body == []
                await client.send(b"body")
            assert body == [b"body"]


async def test_a_reset_peer_reads_as_gone_and_fails_writes(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            reset(client)
            await client.aclose()
            assert await transport.read() == b""
            assert transport.peer_closed()
            with pytest.raises(ClientDisconnected, match="gone"):
                await transport.write(b"x" * 65536, SHORT)
            assert transport.broken
            assert not transport.write_timed_out  # gone, not stalled


# --- writing ----------------------------------------------------------------------------------


async def test_a_write_returns_once_the_kernel_took_everything(pair: Pair) -> None:
    body = bytes(range(256)) * (BIG // 256) + b"tail"  # not a whole number of slices
    written = anyio.Event()

    async def write(transport: Transport) -> None:
        await transport.write(body, None)
        written.set()

    with anyio.fail_after(TIMEOUT * 2):
        async with pair() as (transport, client):
            async with anyio.create_task_group() as group:
                group.start_soon(write, transport)
                await anyio.wait_all_tasks_blocked()
                assert not written.is_set()  # the kernel's buffers cannot hold 16 MiB
                assert await read_exactly(client, len(body)) == body
            assert not transport.broken
            await transport.write(b"after", SHORT)
            assert await read_exactly(client, 5) == b"after"


@pytest.mark.parametrize("size", [BIG, 32 * 1024], ids=["one-big-write", "small-writes"])
async def test_a_reader_that_stopped_times_the_write_out_and_breaks_it(
    pair: Pair, size: int
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            small_receive_buffer(client)
            started = anyio.current_time()
            with pytest.raises(ClientDisconnected, match="did not read"):  # noqa: PT012
                while True:  # until the kernel's buffers are full
                    started = anyio.current_time()
                    await transport.write(b"x" * size, SHORT)
            assert SHORT - CLOCK_RESOLUTION <= anyio.current_time() - started < TIMEOUT
            assert transport.broken
            assert transport.write_timed_out  # for the metrics: a timeout, not a close
            with pytest.raises(ClientDisconnected):  # no second try on a broken transport
                await transport.write(b"y", SHORT)


async def test_a_write_cancelled_midway_marks_the_transport_broken(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            small_receive_buffer(client)
            async with anyio.create_task_group() as group:
                group.start_soon(transport.write, b"z" * BIG, None)
                await anyio.wait_all_tasks_blocked()
                assert not transport.broken
                group.cancel_scope.cancel()
            assert transport.broken
            assert not transport.write_timed_out
            with pytest.raises(ClientDisconnected):
                await transport.write(b"after", SHORT)
            await transport.write_quietly(b"after", SHORT)  # a last word: no error


async def test_mark_broken_stops_writes(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, _client):
            assert not transport.broken
            transport.mark_broken()
            assert transport.broken
            with pytest.raises(ClientDisconnected):
                await transport.write(b"x", SHORT)


# --- the peer's end ---------------------------------------------------------------------------


async def test_peer_closed_tells_a_fin_and_not_waiting_bytes(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            assert not transport.peer_closed()
            await client.send(b"pipelined")
            await anyio.wait_all_tasks_blocked()
            assert not transport.peer_closed()  # bytes first: cannot tell
            assert await transport.read() == b"pipelined"
            await client.send_eof()
            await anyio.wait_all_tasks_blocked()
            assert transport.peer_closed()
            assert await transport.read() == b""


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_wait_peer_closed_returns_when_the_peer_closes(pair: Pair, how: str) -> None:
    returned = anyio.Event()

    async def watch(transport: Transport) -> None:
        await transport.wait_peer_closed()
        returned.set()

    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client), anyio.create_task_group() as group:
            group.start_soon(watch, transport)
            await anyio.wait_all_tasks_blocked()
            assert not returned.is_set()  # a silent peer has not closed
            if how == "rst":
                reset(client)
                await client.aclose()
            else:
                await client.send_eof()
            await returned.wait()
            assert transport.peer_closed()
            assert await transport.read() == b""


async def test_wait_peer_closed_takes_no_bytes_and_waits_on_bytes(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            await client.send(b"GET / HTTP/1.1\r\n")
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(transport.wait_peer_closed)
                    await anyio.wait_all_tasks_blocked()
                    scope.cancel()  # still waiting: bytes that are not the end
            assert scope.cancelled_caught
            assert await transport.read() == b"GET / HTTP/1.1\r\n"  # nothing was lost
            await client.send(b"Host: t\r\n\r\n")
            assert await transport.read() == b"Host: t\r\n\r\n"


# --- closing ----------------------------------------------------------------------------------


async def test_linger_close_is_bounded_in_bytes_against_a_peer_that_keeps_sending(
    pair: Pair,
) -> None:
    async def flood(client: anyio.abc.SocketStream) -> None:
        try:
            while True:
                await client.send(b"x" * 65536)
        except (anyio.BrokenResourceError, OSError):
            pass  # our close ended it

    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client), anyio.create_task_group() as group:
            group.start_soon(flood, client)
            # A minute's timeout: only the byte limit can end this in time.
            await transport.linger_close(timeout=60, limit=256 * 1024)
            assert transport.broken


async def test_linger_close_is_bounded_in_time_and_half_closes_first(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            await transport.write(b"error reply", SHORT)
            started = anyio.current_time()
            # The peer neither sends nor closes: the timeout ends the linger.
            async with anyio.create_task_group() as group:
                group.start_soon(transport.linger_close, SHORT)
                assert await read_exactly(client, 11) == b"error reply"
                with pytest.raises(anyio.EndOfStream):  # our FIN came before the close
                    await client.receive()
            assert SHORT - CLOCK_RESOLUTION <= anyio.current_time() - started < TIMEOUT


async def test_close_does_not_wait_on_a_peer_that_does_not_read(pair: Pair) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            small_receive_buffer(client)
            with anyio.move_on_after(SHORT):
                await transport.write(b"x" * BIG, None)
            with anyio.CancelScope() as scope:
                scope.cancel()
                await transport.close()  # cancelled and with unsent bytes: closes anyway
            assert transport.broken
            assert transport.peer_closed()  # our own end is gone


# --- send_file --------------------------------------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Any) -> Any:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * (BIG // 256) + b"tail")
    with path.open("rb") as file:
        yield file


async def test_send_file_sends_the_range_and_returns_once_the_kernel_took_it(
    pair: Pair, big_file: Any
) -> None:
    content = bytes(range(256)) * (BIG // 256) + b"tail"
    offset, count = 1000, len(content) - 1000 - 3
    sent = anyio.Event()

    async def send(transport: Transport) -> None:
        await transport.send_file(big_file.fileno(), offset, count, SHORT * 10)
        sent.set()

    with anyio.fail_after(TIMEOUT * 2):
        async with pair() as (transport, client):
            async with anyio.create_task_group() as group:
                group.start_soon(send, transport)
                await anyio.wait_all_tasks_blocked()
                assert not sent.is_set()  # the kernel's buffers cannot hold 16 MiB
                assert await read_exactly(client, count) == content[offset : offset + count]
            assert not transport.broken
            assert big_file.tell() == 0  # the file position is not used
            await transport.write(b"after", SHORT)
            assert await read_exactly(client, 5) == b"after"


async def test_send_file_to_a_reader_that_stopped_times_out_and_breaks(
    pair: Pair, big_file: Any
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with pair() as (transport, client):
            small_receive_buffer(client)
            with pytest.raises(ClientDisconnected, match="did not read"):
                await transport.send_file(big_file.fileno(), 0, BIG, SHORT)
            assert transport.broken
            assert transport.write_timed_out
            with pytest.raises(ClientDisconnected):
                await transport.write(b"y", SHORT)


async def test_send_file_of_a_file_shorter_than_count_breaks(pair: Pair, tmp_path: Any) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"abc")
    with anyio.fail_after(TIMEOUT), path.open("rb") as file:
        async with pair() as (transport, client):
            with pytest.raises(FileShrunk):
                await transport.send_file(file.fileno(), 0, 10, SHORT)
            assert transport.broken
            assert await read_exactly(client, 3) == b"abc"
