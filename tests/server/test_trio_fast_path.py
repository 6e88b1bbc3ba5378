"""The trio fast path (TrioSocketTransport) over real sockets: deadlines, fairness, shutdown,
late polls.

The in-memory deadline tests go through anyio's stream interface, so the socket
operations the fast path does itself are tested here, on trio, with real loopback
sockets under ``autojump_clock``: every peer is in this process and loopback
delivers a sent byte at once, so the clock only jumps when everybody waits.

Late polls: each wait in trio re-arms the socket in epoll (one syscall) and costs a
wake-up; under load the peer's next bytes usually arrive within one scheduler pass,
so a read that would wait lets a pass go by and polls, and only waits when that found
nothing, after which it waits for ``LATE_POLL_BACKOFF`` reads before polling late
again. Those tests count how often the reading task was scheduled (trio's
``Instrument.task_scheduled``) and make the peer act at the moment it is scheduled.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from trio_asgi import Server
from trio_asgi._server._fast_paths import open_transport
from trio_asgi._server._trio_transport import LATE_POLL_BACKOFF, TrioSocketTransport
from trio_asgi._types import Receive, Scope, Send

#: The ``connect`` fixture of conftest.py: ``await connect(server)`` gives a raw client.
Connect = Callable[[Server | str], Awaitable[Any]]

GET = b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n"


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    body = scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def connection() -> AsyncIterator[tuple[TrioSocketTransport, anyio.abc.SocketStream]]:
    """A loopback TCP connection: the server side as a transport, and the client's stream."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server_side = await listener.listeners[0].accept()  # type: ignore[attr-defined]
        async with client, server_side:
            transport = open_transport(server_side)
            assert type(transport) is TrioSocketTransport
            assert type(open_transport(client)) is TrioSocketTransport
            yield transport, client


async def test_plain_sockets_on_trio_take_the_fast_path() -> None:
    async with connection():
        pass  # connection() checks the transports of both ends


async def test_keep_alive_deadline_closes_an_idle_connection(
    run_server: Any, connect: Connect, autojump_clock: MockClock
) -> None:
    async with run_server(hello, timeout_keep_alive=7.0) as server:
        client = await connect(server)
        await client.send(GET % b"x")
        assert (await client.read_response()).body == b"/x"
        idle_from = trio.current_time()
        assert await client.read_until_eof() == b""
        assert trio.current_time() - idle_from == pytest.approx(7.0)


async def test_head_deadline_answers_408(
    run_server: Any, connect: Connect, autojump_clock: MockClock
) -> None:
    async with run_server(hello, timeout_request_head=4.0) as server:
        client = await connect(server)
        started = trio.current_time()
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # never finished
        response = await client.read_response()
        assert response.status == 408
        assert trio.current_time() - started == pytest.approx(4.0)


async def test_body_idle_deadline_answers_408(
    run_server: Any, connect: Connect, autojump_clock: MockClock
) -> None:
    async def read_body(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass

    async with run_server(read_body, timeout_body_idle=3.0) as server:
        client = await connect(server)
        started = trio.current_time()
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        response = await client.read_response()
        assert response.status == 408
        assert trio.current_time() - started == pytest.approx(3.0)


def _small_buffers(client: Any) -> None:
    """Shrink the client's receive buffer, so a server write fills it soon."""
    raw = client.stream.extra(anyio.abc.SocketAttribute.raw_socket)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


def _unix(tmp_path: Path) -> tuple[str]:
    """A Unix socket to bind: no TCP window or its timers, which run in real time, so a
    reader's progress reaches the writer at once, and the virtual clock stays in charge."""
    return (f"unix:{tmp_path}/server.sock",)


async def test_a_client_that_stops_reading_times_the_write_out(
    run_server: Any, connect: Connect, autojump_clock: MockClock, tmp_path: Path
) -> None:
    outcome: list[str] = []
    failed = trio.Event()
    big = b"x" * (8 * 1024 * 1024)  # far more than both socket buffers hold

    async def flood(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": big})
        except OSError as exc:  # ClientDisconnected is an OSError
            outcome.append(type(exc).__name__)
            failed.set()
            raise

    async with run_server(flood, timeout_write=5.0, bind=_unix(tmp_path)) as server:
        client = await connect(server)
        _small_buffers(client)
        started = trio.current_time()
        await client.send(GET % b"")
        await failed.wait()  # the client reads nothing meanwhile
        assert outcome == ["ClientDisconnected"]
        assert trio.current_time() - started == pytest.approx(5.0, abs=1.0)


async def test_a_slow_but_steady_reader_gets_a_large_body(
    run_server: Any, connect: Connect, autojump_clock: MockClock, tmp_path: Path
) -> None:
    # Each 64 KiB slice must go within timeout_write, not the whole body.
    size = 2 * 1024 * 1024

    async def large(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"y" * size})

    # A Unix socket reports room only once three quarters of its buffer (about 200 KiB
    # here) are read: 2.6 s at this pace, so the timeout must be longer than that.
    async with run_server(large, timeout_write=5.0, bind=_unix(tmp_path)) as server:
        client = await connect(server)
        _small_buffers(client)
        await client.send(GET % b"")
        started = trio.current_time()
        received = bytearray()
        raw: Any = client.stream
        while len(received) < size or len(received) - received.find(b"\r\n\r\n") - 4 < size:
            received += await raw.receive(16384)
            await trio.sleep(0.25)  # virtual: 64 KiB a second, so a slice takes 1 s
        # Six times the timeout in all, while no 64 KiB slice waited for as long as one.
        assert trio.current_time() - started > 6 * 5.0


async def test_a_pipelining_client_does_not_starve_another_connection(
    run_server: Any, connect: Connect
) -> None:
    # Operations that complete at once skip the scheduler, but never more than
    # YIELD_EVERY in a row: another connection is served long before the flood ends.
    served: list[str] = []

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        served.append(scope["path"])
        await hello(scope, receive, send)

    flood = 400
    async with run_server(record) as server:
        first = await connect(server)
        second = await connect(server)
        await trio.testing.wait_all_tasks_blocked()
        await first.send((GET % b"a") * flood)
        await second.send(GET % b"b")
        assert (await second.read_response()).body == b"/b"
        # With YIELD_EVERY = 16 it comes 16th; with no yields it would come last (400th).
        assert served.index("/b") <= 4 * 16
        for _ in range(flood):
            assert (await first.read_response()).body == b"/a"


async def test_shutdown_ends_a_write_that_waits_on_a_client(
    run_server: Any, connect: Connect, autojump_clock: MockClock, tmp_path: Path
) -> None:
    big = b"z" * (8 * 1024 * 1024)
    ended = trio.Event()

    async def flood(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": big})
        finally:
            ended.set()

    options = {"timeout_write": None, "timeout_graceful_shutdown": 2.0, "bind": _unix(tmp_path)}
    async with run_server(flood, **options) as server:
        client = await connect(server)
        _small_buffers(client)
        await client.send(GET % b"")
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().requests_in_flight == 1
        started = trio.current_time()
        server.shutdown()
        await ended.wait()  # cancelled when the grace period is over
        assert trio.current_time() - started == pytest.approx(2.0)
        await trio.testing.wait_all_tasks_blocked()
        assert server.statistics().open_connections == 0


async def test_a_write_cancelled_midway_ends_the_response(
    run_server: Any, connect: Connect, autojump_clock: MockClock, tmp_path: Path
) -> None:
    # The app gives up on a slow send: what is on the wire ends mid-body, so the
    # server must not let it write anything after it (a new chunk would be read as body).
    outcome: list[str] = []
    gave_up = trio.Event()

    async def impatient(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with trio.move_on_after(1.0) as waited:
            await send(
                {"type": "http.response.body", "body": b"a" * 8 * 1024 * 1024, "more_body": True}
            )
        assert waited.cancelled_caught
        try:
            await send({"type": "http.response.body", "body": b"more"})
        except OSError as exc:
            outcome.append(type(exc).__name__)
        gave_up.set()

    with trio.fail_after(100):  # virtual seconds
        async with run_server(impatient, timeout_write=None, bind=_unix(tmp_path)) as server:
            client = await connect(server)
            _small_buffers(client)
            await client.send(GET % b"")
            await gave_up.wait()  # the client reads nothing before the app gave up
            data = await client.read_until_eof()
    assert outcome == ["ClientDisconnected"]
    assert not data.endswith(b"0\r\n\r\n")  # never framed as a complete response


#: Far beyond anything these tests wait for; a read that hangs fails the test instead.
HANG = 10.0


class Schedules(trio.abc.Instrument):
    """Counts how often ``task`` is put on the run queue; calls ``on_schedule`` then."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.count = 0
        self.on_schedule: Callable[[], object] | None = None

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.count += 1
            if self.on_schedule is not None:
                self.on_schedule()


async def send_whenever_blocked(client: anyio.abc.SocketStream, times: int) -> None:
    """Send one byte each time every other task waits: the reader is in epoll by then."""
    for _ in range(times):
        await trio.testing.wait_all_tasks_blocked()
        await client.send(b"x")


async def read_with_counts(
    transport: TrioSocketTransport, schedules: Schedules, reads: int
) -> list[int]:
    """Read ``reads`` times; how often this task was scheduled during each read."""
    counts = []
    for _ in range(reads):
        before = schedules.count
        assert await transport.read_idle(trio.current_time() + HANG) == b"x"
        counts.append(schedules.count - before)
    return counts


async def test_a_late_poll_that_finds_nothing_backs_off() -> None:
    schedules = Schedules(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(schedules)
    rounds = 3
    reads = rounds * (LATE_POLL_BACKOFF + 1)
    async with connection() as (transport, client), trio.open_nursery() as nursery:
        nursery.start_soon(send_whenever_blocked, client, reads)
        with trio.fail_after(HANG):
            counts = await read_with_counts(transport, schedules, reads)
    # A wait in epoll is one wake-up; a late poll that found nothing is one more.
    assert counts == ([1] * LATE_POLL_BACKOFF + [2]) * rounds


@asynccontextmanager
async def polling_late() -> AsyncIterator[
    tuple[TrioSocketTransport, anyio.abc.SocketStream, Schedules]
]:
    """A connection whose next read polls late: LATE_POLL_BACKOFF reads waited in epoll."""
    schedules = Schedules(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(schedules)
    async with connection() as (transport, client):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_whenever_blocked, client, LATE_POLL_BACKOFF)
            await read_with_counts(transport, schedules, LATE_POLL_BACKOFF)
        try:
            yield transport, client, schedules
        finally:
            schedules.on_schedule = None


async def test_a_late_poll_that_finds_bytes_polls_late_again() -> None:
    with trio.fail_after(HANG):
        async with polling_late() as (transport, client, schedules):
            # From now on the peer answers as soon as the reader is scheduled, and never
            # while it waits in epoll: only late polls can read.
            raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
            schedules.on_schedule = lambda: raw.send(b"x")
            counts = await read_with_counts(transport, schedules, 5)
    assert counts == [1] * 5


async def test_cancel_idle_read_ends_a_late_poll() -> None:
    with trio.fail_after(HANG):
        async with polling_late() as (transport, client, schedules):
            # Shutdown comes while the read is between its pass and its recv().
            schedules.on_schedule = transport.cancel_idle_read
            assert await transport.read_idle(trio.current_time() + HANG) is None
            schedules.on_schedule = None
            await client.send(b"after")
            assert await transport.read_idle(trio.current_time() + HANG) == b"after"
