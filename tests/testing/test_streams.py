"""The in-memory connection: trio's stream contract, anyio's view of it, and backpressure."""

from __future__ import annotations
import __future__

import socket
import types
from collections.abc import Callable

import anyio
import anyio.abc
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trio_asgi.testing
from trio_asgi.testing import (
    AnyIOByteStream,
    BoundedMemoryStream,
    bounded_memory_stream_pair,
    open_memory_connection,
)

# --- the trio side follows trio's own conformance checks ---------------------------------------


async def _pair(window: int | None) -> tuple[BoundedMemoryStream, BoundedMemoryStream]:
    return bounded_memory_stream_pair(window=window)


async def _clogged_pair() -> tuple[BoundedMemoryStream, BoundedMemoryStream]:
    # A window of one byte, already full in both directions: every send blocks.
    left, right = bounded_memory_stream_pair(window=1)
    await left.send_all(b"x")
    await right.send_all(b"x")
    return left, right


@pytest.mark.parametrize("window", [None, 4096])
async def test_bounded_pair_passes_trios_stream_checks(window: int | None) -> None:
    await trio.testing.check_half_closeable_stream(lambda: _pair(window), _clogged_pair)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        bounded_memory_stream_pair(window=0)


# --- the anyio adapter -------------------------------------------------------------------------


async def test_eof_from_the_client_is_end_of_stream() -> None:
    client, server = open_memory_connection()
    await client.send_all(b"abc")
    await client.send_eof()
    assert await server.receive(2) == b"ab"
    assert await server.receive() == b"c"
    for _ in range(2):  # and it stays at the end
        with pytest.raises(anyio.EndOfStream):
            await server.receive()


async def test_server_send_eof_half_closes() -> None:
    client, server = open_memory_connection()
    await server.send(b"bye")
    await server.send_eof()
    assert await client.receive_some() == b"bye"
    assert await client.receive_some() == b""
    # The other direction still works.
    await client.send_all(b"still here")
    assert await server.receive() == b"still here"
    # A send after send_eof fails like a socket's (EPIPE), as a broken stream.
    with pytest.raises(anyio.BrokenResourceError):
        await server.send(b"more")


async def test_use_after_close_is_closed_resource_error() -> None:
    client, server = open_memory_connection()
    await server.aclose()
    await server.aclose()  # idempotent
    assert server.closed
    with pytest.raises(anyio.ClosedResourceError):
        await server.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await server.send(b"x")
    # The client sees the close as end-of-stream, and its writes fail.
    assert await client.receive_some() == b""
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"x")


async def test_client_gone_breaks_server_writes_after_buffered_reads() -> None:
    client, server = open_memory_connection()
    await client.send_all(b"last words")
    await client.aclose()
    assert await server.receive() == b"last words"
    with pytest.raises(anyio.EndOfStream):
        await server.receive()
    with pytest.raises(anyio.BrokenResourceError):
        await server.send(b"response")


async def test_concurrent_receives_are_busy() -> None:
    _client, server = open_memory_connection()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.receive)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError, match="reading from"):
            await server.receive()
        nursery.cancel_scope.cancel()


async def test_max_bytes_is_checked_and_respected() -> None:
    client, server = open_memory_connection()
    with pytest.raises(ValueError, match="max_bytes"):
        await server.receive(0)
    await client.send_all(b"0123456789")
    assert await server.receive(4) == b"0123"
    assert await server.receive(100) == b"456789"


async def test_socket_attributes_report_the_given_addresses() -> None:
    _client, server = open_memory_connection(
        client_address=("10.1.2.3", 40000), server_address=("::1", 8443)
    )
    attrs = anyio.abc.SocketAttribute
    assert server.extra(attrs.remote_address) == ("10.1.2.3", 40000)
    assert server.extra(attrs.remote_port) == 40000
    assert server.extra(attrs.local_address) == ("::1", 8443)
    assert server.extra(attrs.local_port) == 8443
    assert server.extra(attrs.family) == socket.AF_INET6
    assert server.extra(attrs.raw_socket, None) is None


async def test_unix_socket_addresses_have_no_ports() -> None:
    _client, server = open_memory_connection(client_address="", server_address="/run/app.sock")
    attrs = anyio.abc.SocketAttribute
    assert server.extra(attrs.local_address) == "/run/app.sock"
    assert server.extra(attrs.family) == socket.AF_UNIX
    with pytest.raises(anyio.TypedAttributeLookupError):
        server.extra(attrs.local_port)


@pytest.mark.parametrize(
    "make_pair", [trio.testing.memory_stream_pair, trio.testing.lockstep_stream_pair]
)
async def test_adapter_wraps_trios_own_memory_streams(
    make_pair: Callable[[], tuple[trio.abc.Stream, trio.abc.Stream]],
) -> None:
    client, server_end = make_pair()
    server = AnyIOByteStream(server_end)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"request")
        assert await server.receive() == b"request"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.send, b"response")
        assert await client.receive_some() == b"response"
    await client.aclose()
    with pytest.raises(anyio.EndOfStream):
        await server.receive()


# --- backpressure ------------------------------------------------------------------------------


async def test_server_send_blocks_until_the_client_reads() -> None:
    client, server = open_memory_connection(receive_window=10)
    sent = trio.Event()

    async def respond() -> None:
        await server.send(b"x" * 25)
        sent.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(respond)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert client.statistics().unread_received == 10
        assert await client.receive_some(7) == b"x" * 7
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()  # 7 more went in; the last 8 wait for room
        assert client.statistics().unread_received == 10
        await client.receive_some()
        await trio.testing.wait_all_tasks_blocked()
        assert sent.is_set()
        assert client.statistics().unread_received == 8


async def test_client_send_blocks_while_the_server_does_not_read() -> None:
    client, server = open_memory_connection(receive_window=4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"GET / HTTP/1.1\r\n")
        await trio.testing.wait_all_tasks_blocked()
        assert client.statistics().unread_sent == 4
        received = b""
        while len(received) < 16:
            received += await server.receive()
    assert received == b"GET / HTTP/1.1\r\n"


async def test_write_timeout_against_a_client_that_never_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server = open_memory_connection(receive_window=1024)
    start = trio.current_time()
    with anyio.move_on_after(30) as scope:
        await server.send(b"y" * 10_000)
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(30)
    assert client.statistics().unread_received == 1024


async def test_closing_the_client_wakes_a_blocked_server_send() -> None:
    client, server = open_memory_connection(receive_window=8)
    async with trio.open_nursery() as nursery:

        async def close_soon() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await client.aclose()

        nursery.start_soon(close_soon)
        with pytest.raises(anyio.BrokenResourceError):
            await server.send(b"z" * 100)


async def test_a_cancelled_receive_loses_nothing() -> None:
    client, server = open_memory_connection()
    await client.send_all(b"kept")
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await server.receive()
    assert await server.receive() == b"kept"


@given(
    payload=st.binary(max_size=2000),
    window=st.integers(1, 64),
    write_sizes=st.lists(st.integers(1, 300), min_size=1, max_size=20),
    read_sizes=st.lists(st.integers(1, 100), min_size=1, max_size=20),
)
def test_bytes_arrive_in_order_and_never_exceed_the_window(
    payload: bytes, window: int, write_sizes: list[int], read_sizes: list[int]
) -> None:
    async def main() -> None:
        client, server = open_memory_connection(receive_window=window)
        received = bytearray()

        async def write() -> None:
            rest, i = payload, 0
            while rest:
                size = write_sizes[i % len(write_sizes)]
                await server.send(rest[:size])
                rest, i = rest[size:], i + 1
            await server.send_eof()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            i = 0
            while True:
                await trio.testing.wait_all_tasks_blocked()
                assert client.statistics().unread_received <= window
                chunk = await client.receive_some(read_sizes[i % len(read_sizes)])
                if not chunk:
                    break
                received += chunk
                i += 1
        assert received == payload

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_testing_package_exports() -> None:
    # Submodules (``strategies``) appear only once imported; the future flag is no export.
    public = sorted(
        name
        for name, value in vars(trio_asgi.testing).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and value is not __future__.annotations
    )
    assert public == [
        "ASGIApp",
        "Address",
        "AnyIOByteStream",
        "AppError",
        "BACKENDS",
        "Backend",
        "BoundedMemoryStream",
        "ConnectionClosed",
        "GoAway",
        "HungRequest",
        "IncompleteResponse",
        "InvalidResponse",
        "MemoryStreamStatistics",
        "Message",
        "PeakMemory",
        "Receive",
        "RecordedCall",
        "RecordingApp",
        "Scope",
        "Send",
        "ServerErrors",
        "TestConnection",
        "TestH2Connection",
        "TestH2Response",
        "TestRequest",
        "TestResponse",
        "TestServer",
        "TestWebSocket",
        "VirtualClockEventLoop",
        "WebSocketClosed",
        "WebSocketRejection",
        "assert_app_calls",
        "assert_app_not_called",
        "assert_bounded_buffering",
        "assert_h2_attack_answered",
        "assert_h2_bounded_buffering",
        "assert_h2_requests_delivered",
        "assert_h2_responses_complete",
        "assert_h2_still_serving",
        "assert_no_request_completed",
        "assert_no_server_errors",
        "bounded_memory_stream_pair",
        "capture_server_errors",
        "expect_one_response_each",
        "max_buffered_bytes",
        "max_h2_buffered_bytes",
        "max_peak",
        "open_http2",
        "open_memory_connection",
        "open_test_server",
        "run_in_virtual_time",
        "wait_all_tasks_blocked",
        "with_test_server",
    ]
