"""Accepting connections on the sockets the server owns: every pending one per wake-up.

Regression: anyio's ``accept()`` took one connection per event-loop turn (several
turns, in fact), and under load each turn serves every busy connection; a burst
of 64 new keep-alive connections against a busy server waited up to 450 ms on
asyncio (210 ms on trio) for their first response, which put the p99 latency at
64 connections at 50-370 ms where the steady state is 7 ms.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from collections.abc import Iterator
from functools import partial
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import trio
import trio.testing
from anyio.abc import SocketAttribute

from trio_asgi import serve
from trio_asgi._server._accept import ACCEPT_BATCH, SocketAcceptor, open_accepted
from trio_asgi._server._connection import socket_addresses
from trio_asgi._server._listeners import CapacityLog
from trio_asgi._server._trio_streams import TrioByteStream

pytestmark = pytest.mark.anyio


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0), backlog=4 * ACCEPT_BATCH) as sock:
        yield sock


def connect_clients(sock: socket.socket, count: int) -> list[socket.socket]:
    # On loopback the handshake is done when connect() returns: the connection waits
    # in the listen queue.
    return [socket.create_connection(sock.getsockname()) for _ in range(count)]


def close_all(sockets: list[Any]) -> None:
    for sock in sockets:
        sock.close()


async def test_one_wake_up_takes_every_pending_connection(listening: socket.socket) -> None:
    clients = connect_clients(listening, ACCEPT_BATCH + 3)
    acceptor = SocketAcceptor(listening)
    with anyio.fail_after(5):
        first = await acceptor.accept_batch()
        second = await acceptor.accept_batch()
    close_all([*clients, *first, *second])
    # Bounded, so one burst cannot hold the accept loop for long.
    assert (len(first), len(second)) == (ACCEPT_BATCH, 3)


class FailingListener(socket.socket):
    """A real listening socket whose next accept() calls fail with the given errnos.

    ``None`` in ``failures`` lets that call through.
    """

    failures: list[int | None]

    def accept(self) -> tuple[socket.socket, Any]:
        code = self.failures.pop(0) if self.failures else None
        if code is not None:
            raise OSError(code, errno.errorcode[code])
        return super().accept()


@pytest.fixture
def failing() -> Iterator[FailingListener]:
    sock = FailingListener(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.failures = []
    with sock:
        yield sock


async def test_a_connection_that_failed_before_accept_is_skipped(
    failing: FailingListener,
) -> None:
    clients = connect_clients(failing, 2)
    failing.failures = [errno.ECONNABORTED]
    with anyio.fail_after(5):
        accepted = await SocketAcceptor(failing).accept_batch()
    assert len(accepted) == 2
    close_all(clients + accepted)


async def test_out_of_file_descriptors_is_broken_resource_with_the_errno(
    failing: FailingListener,
) -> None:
    clients = connect_clients(failing, 2)
    failing.failures = [errno.EMFILE]
    acceptor = SocketAcceptor(failing)
    with anyio.fail_after(5):
        with pytest.raises(anyio.BrokenResourceError) as caught:
            await acceptor.accept_batch()
        assert isinstance(caught.value.__cause__, OSError)
        assert caught.value.__cause__.errno == errno.EMFILE
        # Out of descriptors after taking one: serve that one now, the rest later.
        failing.failures = [None, errno.EMFILE]
        accepted = await acceptor.accept_batch()
        assert len(accepted) == 1
        accepted += await acceptor.accept_batch()
    assert len(accepted) == 2
    close_all(clients + accepted)


async def test_a_client_gone_before_its_stream_is_made_costs_nothing(
    listening: socket.socket,
) -> None:
    (client,) = connect_clients(listening, 1)
    # Reset (linger 0), so the accepted socket is no longer connected.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    with anyio.fail_after(5):
        (accepted,) = await SocketAcceptor(listening).accept_batch()
        assert await open_accepted(accepted) is None
    assert isinstance(accepted, socket.socket)
    assert accepted.fileno() == -1  # closed


async def test_a_burst_beyond_one_batch_is_served_in_full(
    run_server: Any, make_request: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    count = 2 * ACCEPT_BATCH + 1
    with socket.create_server(("127.0.0.1", 0), backlog=count) as sock:
        clients = connect_clients(sock, count)
        # One of them resets before the server takes it: no log line, no harm to the rest.
        gone = clients.pop()
        gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        gone.close()
        try:
            with anyio.fail_after(10), caplog.at_level(logging.INFO, "trio_asgi"):
                async with run_server(app, sockets=[sock]):
                    for client in clients:
                        client.sendall(make_request(headers=[("connection", "close")]))
                    for client in clients:
                        client.setblocking(False)
                        assert (await _read_all(client)).startswith(b"HTTP/1.1 200 ")
        finally:
            close_all(clients)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        await anyio.wait_readable(sock)
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_trio_stream_without_addresses_reports_none_never_invented_ones() -> None:
    # An in-memory trio stream has no addresses: the scope's client and server are then
    # None (ASGI allows it), not a made-up 127.0.0.1:50000 that looks like a real peer.
    left, right = trio.testing.memory_stream_pair()
    stream = TrioByteStream(right)
    assert stream.extra(SocketAttribute.remote_address, None) is None
    assert stream.extra(SocketAttribute.local_address, None) is None
    assert stream.extra(SocketAttribute.family, None) is None
    assert socket_addresses(stream) == (None, None)
    # Addresses that are known are reported, each on its own.
    known = TrioByteStream(left, remote_address=("10.0.0.7", 4242))
    assert socket_addresses(known) == (("10.0.0.7", 4242), None)
    assert known.extra(SocketAttribute.remote_port) == 4242
    assert known.extra(SocketAttribute.family) == socket.AF_INET
    unix = TrioByteStream(left, local_address="/run/app.sock")
    assert socket_addresses(unix) == (None, ("/run/app.sock", None))


class _OutOfDescriptors:
    """A listener whose accept() fails with EMFILE until ``until`` (virtual time)."""

    def __init__(self, until: float) -> None:
        self.until = until
        self.failures = 0

    async def accept(self) -> anyio.abc.ByteStream:
        await anyio.lowlevel.checkpoint()
        if anyio.current_time() < self.until:
            self.failures += 1
            raise anyio.BrokenResourceError from OSError(errno.EMFILE, "Too many open files")
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def aclose(self) -> None:
        pass

    def extra(self, attribute: object, default: object = None) -> object:
        return ("127.0.0.1", 1)


async def test_running_out_of_descriptors_logs_once_then_once_a_minute(
    virtual_clock: None, server_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Retried every 100 ms for ten minutes: 6,000 failures, and 1 + 10 lines, not 6,000.
    listener = _OutOfDescriptors(until=anyio.current_time() + 600)
    caplog.set_level(logging.ERROR, "trio_asgi")
    async with anyio.create_task_group() as group:
        server = await group.start(partial(serve, listeners=[listener]), _app, server_config())
        await anyio.sleep(610)
        server.shutdown()
    lines = [r.getMessage() for r in caplog.records if "accept()" in r.getMessage()]
    assert listener.failures >= 5000
    assert lines[0] == "accept() failed ([Errno 24] Too many open files); retrying in 0.1s"
    assert 9 <= len(lines) - 1 <= 10
    assert all(line.startswith("accept() still failing ([Errno 24]") for line in lines[1:])
    assert "failure(s) in the last 60s" in lines[1]


def test_the_capacity_log_summarises_and_says_when_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = CapacityLog(lambda: now[0], interval=60)
    caplog.set_level(logging.WARNING, "trio_asgi")
    emfile = OSError(errno.EMFILE, "Too many open files")
    for tick in range(1300):  # 130 s of failures every 100 ms
        now[0] = tick / 10
        log.failed(emfile, 0.1)
    log.succeeded()
    log.succeeded()  # nothing was failing: nothing to say
    now[0] = 1000.0
    log.failed(emfile, 0.1)  # a new run starts with a first line of its own
    assert [r.getMessage() for r in caplog.records] == [
        "accept() failed ([Errno 24] Too many open files); retrying in 0.1s",
        "accept() still failing ([Errno 24] Too many open files): 600 more failure(s) in the"
        " last 60s, 601 in all over 60s; retrying every 0.1s",
        "accept() still failing ([Errno 24] Too many open files): 600 more failure(s) in the"
        " last 60s, 1201 in all over 120s; retrying every 0.1s",
        "accept() works again after 1300 failure(s) over 130s",
        "accept() failed ([Errno 24] Too many open files); retrying in 0.1s",
    ]


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError
