"""The trio fast path's late poll: one scheduler pass, then recv(), instead of a wait in epoll.

Each wait in trio re-arms the socket in epoll (one syscall) and costs a wake-up; under
load the peer's next bytes usually arrive within one scheduler pass, so
:class:`TrioSocketTransport` lets a pass go by and polls, and only waits when that
found nothing, after which it waits for ``LATE_POLL_BACKOFF`` reads before polling
late again. These tests count how often the reading task was scheduled (trio's
``Instrument.task_scheduled``), over real loopback sockets, and make the peer act at
the moment the reader is scheduled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import trio
import trio.testing

from trio_asgi._server._fast_paths import open_transport
from trio_asgi._server._trio_transport import LATE_POLL_BACKOFF, TrioSocketTransport

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


@asynccontextmanager
async def connection() -> AsyncIterator[tuple[TrioSocketTransport, anyio.abc.SocketStream]]:
    """The server side as a TrioSocketTransport, and the client's stream."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server_side = await listener.listeners[0].accept()  # type: ignore[attr-defined]
        async with client, server_side:
            transport = open_transport(server_side)
            assert isinstance(transport, TrioSocketTransport)
            yield transport, client


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


async def test_a_late_poll_that_finds_bytes_polls_late_again() -> None:
    schedules = Schedules(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(schedules)
    async with connection() as (transport, client), trio.open_nursery() as nursery:
        nursery.start_soon(send_whenever_blocked, client, LATE_POLL_BACKOFF)
        with trio.fail_after(HANG):
            await read_with_counts(transport, schedules, LATE_POLL_BACKOFF)
            # From now on the peer answers as soon as the reader is scheduled, and never
            # while it waits in epoll: only late polls can read.
            raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
            schedules.on_schedule = lambda: raw.send(b"x")
            counts = await read_with_counts(transport, schedules, 5)
    assert counts == [1] * 5


async def test_cancel_idle_read_ends_a_late_poll() -> None:
    schedules = Schedules(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(schedules)
    async with connection() as (transport, client), trio.open_nursery() as nursery:
        nursery.start_soon(send_whenever_blocked, client, LATE_POLL_BACKOFF)
        with trio.fail_after(HANG):
            await read_with_counts(transport, schedules, LATE_POLL_BACKOFF)
            # Shutdown comes while the read is between its pass and its recv().
            schedules.on_schedule = transport.cancel_idle_read
            assert await transport.read_idle(trio.current_time() + HANG) is None
            schedules.on_schedule = None
            await client.send(b"after")
            assert await transport.read_idle(trio.current_time() + HANG) == b"after"
