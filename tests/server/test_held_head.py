"""A held response head goes out within about a second, even if the app sends nothing more.

The HTTP/1.1 head waits for the app's first body message (one write for the common
response); a stream that never calls ``receive()`` and sends its first event late
(server-sent events) must still show its client the head soon, as Uvicorn does, or
a client with a header timeout gives up. The server's in-flight sweep writes a head
held at one of its ticks and still held :data:`MIN_HOLD` later.

Real sockets on both loops, in virtual time (time moves only when every task waits):
a whole server for the client's view, and a connection served next to a sweep started
by the test where the sweep's tick times must be known.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import h2.connection
import h2.events
import h11
import pytest

from tests.server.test_response_writes import RecordingStream
from trio_asgi import ClientDisconnected, Config
from trio_asgi._server._connection import HTTPConnection
from trio_asgi._server._in_flight import (
    CHECK_INTERVAL,
    HEAD_WRITE_TIMEOUT,
    MIN_HOLD,
    sweep_in_flight,
)
from trio_asgi._server._state import ServerState
from trio_asgi._types import Receive, Scope, Send

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

GET = b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n"
#: Deadlines fire up to a millisecond early or late by the loop's own clock.
SLACK = 0.01
#: The longest a head may be held: the sweep's interval, then its minimum hold.
BOUND = CHECK_INTERVAL + MIN_HOLD + SLACK


class QuietStream:
    """Sends its head, then waits (never calling ``receive()``) to send its events."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.headers = headers if headers is not None else [(b"content-type", b"text/plain")]
        self.started = anyio.Event()
        self.started_at = 0.0
        self.go = anyio.Event()
        self.outcome: list[Any] = []
        self.done = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        self.started_at = anyio.current_time()
        self.started.set()
        await self.go.wait()
        try:
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"data: 2\n\n"})
        except ClientDisconnected as exc:
            self.outcome.append(exc)
        else:
            self.outcome.append("sent")
        self.done.set()


async def read_head(stream: anyio.abc.ByteStream) -> tuple[bytes, float]:
    """Read until a whole response head arrived: what was read, and when it was whole."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += await stream.receive()
    return received, anyio.current_time()


async def read_until_closed(stream: anyio.abc.ByteStream) -> bytes:
    received = b""
    while True:
        try:
            received += await stream.receive()
        except anyio.EndOfStream:
            return received


async def read_to_end(stream: anyio.abc.ByteStream, received: bytes) -> list[Any]:
    """The rest of the response, parsed by h11 (its framing checked): the events."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/events", headers=[("host", "t")]))
    client.send(h11.EndOfMessage())
    client.receive_data(received)
    events: list[Any] = []
    while not events or type(events[-1]) is not h11.EndOfMessage:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(await stream.receive())
        else:
            events.append(event)
    return events


async def test_a_quiet_stream_shows_its_head_within_the_bound(run_server: Any) -> None:
    app = QuietStream()
    with anyio.fail_after(30):
        async with run_server(app) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            async with await anyio.connect_tcp(host, int(port)) as client:
                await client.send(GET)
                received, arrived = await read_head(client)
                assert app.started.is_set()
                assert MIN_HOLD - SLACK <= arrived - app.started_at <= BOUND
                assert received.startswith(b"HTTP/1.1 200 ")
                assert received.endswith(b"\r\n\r\n")  # the head alone: no event yet
                app.go.set()
                events = await read_to_end(client, received)
    response, *data, end = events
    assert response.status_code == 200
    assert (b"transfer-encoding", b"chunked") in response.headers
    assert b"".join(bytes(d.data) for d in data) == b"data: 1\n\ndata: 2\n\n"
    assert type(end) is h11.EndOfMessage
    assert app.outcome == ["sent"]


async def test_a_quiet_stream_that_ignores_the_request_body_shows_its_head(
    run_server: Any,
) -> None:
    """Only an app that waits in receive() for body bytes keeps its head held (a stalled
    body then gets a whole 408): a body nobody reads does not hold it."""
    app = QuietStream()
    post = b"POST /events HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    with anyio.fail_after(30):
        async with run_server(app) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            async with await anyio.connect_tcp(host, int(port)) as client:
                await client.send(post)
                received, arrived = await read_head(client)
                assert MIN_HOLD - SLACK <= arrived - app.started_at <= BOUND
                app.go.set()
                events = await read_to_end(client, received)
    assert b"".join(bytes(e.data) for e in events[1:-1]) == b"data: 1\n\ndata: 2\n\n"


@asynccontextmanager
async def swept_server(
    app: Any, **config: Any
) -> AsyncIterator[tuple[anyio.abc.TaskGroup, ServerState, anyio.abc.SocketListener, float]]:
    """A listener, a server state, and the in-flight sweep started now: yields those and
    the time of the sweep's first tick (every tick is a whole CHECK_INTERVAL later)."""
    state = ServerState(app, Config(access_log=False, **config))
    # (Bound here, not by anyio's getaddrinfo in a thread: virtual time would jump meanwhile.)
    listening = socket.create_server(("127.0.0.1", 0))
    async with (
        await anyio.abc.SocketListener.from_socket(listening) as listener,
        anyio.create_task_group() as group,
    ):
        first_tick = anyio.current_time() + CHECK_INTERVAL
        group.start_soon(sweep_in_flight, state)
        yield group, state, listener, first_tick
        group.cancel_scope.cancel()


async def serve_one(
    group: anyio.abc.TaskGroup,
    state: ServerState,
    listener: anyio.abc.SocketListener,
    client: socket.socket,
    *,
    record: bool = False,
    small_send_buffer: bool = False,
) -> RecordingStream | None:
    """Connect ``client`` and serve its connection in ``group`` (its writes recorded if asked)."""
    client.connect(listener.extra(anyio.abc.SocketAttribute.local_address))  # loopback: at once
    server_side: anyio.abc.SocketStream = await listener.accept()
    if small_send_buffer:
        server_raw = server_side.extra(anyio.abc.SocketAttribute.raw_socket)
        server_raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    recording = RecordingStream(server_side) if record else None
    group.start_soon(HTTPConnection(recording or server_side, state).run)
    return recording


async def connect(
    group: anyio.abc.TaskGroup,
    state: ServerState,
    listener: anyio.abc.SocketListener,
    *,
    record: bool = False,
) -> tuple[anyio.abc.SocketStream, RecordingStream | None]:
    """A client, and its connection served in ``group``."""
    raw = socket.socket()
    recording = await serve_one(group, state, listener, raw, record=record)
    return await anyio.abc.SocketStream.from_socket(raw), recording


async def connect_stalled(
    group: anyio.abc.TaskGroup, state: ServerState, listener: anyio.abc.SocketListener
) -> socket.socket:
    """A client that will never read, and its connection served in ``group``.

    A plain socket (an asyncio stream would read ahead), and both socket buffers in
    between as small as the kernel allows (a few KiB), so a larger write stalls.
    """
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    await serve_one(group, state, listener, raw, small_send_buffer=True)
    return raw


@pytest.mark.parametrize(("pause", "writes"), [(MIN_HOLD / 2, 1), (MIN_HOLD * 2, 2)])
async def test_a_response_across_a_tick_is_split_only_if_held_the_minimum(
    pause: float, writes: int
) -> None:
    """The head is held at a tick: a body within MIN_HOLD still takes it along."""
    first_tick = 0.0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep_until(first_tick - SLACK)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.sleep(pause)
        await send({"type": "http.response.body", "body": b"hello"})

    with anyio.fail_after(30):
        async with swept_server(app) as (group, state, listener, first_tick):
            client, recording = await connect(group, state, listener, record=True)
            async with client:
                await client.send(GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                received = await read_until_closed(client)
    assert recording is not None
    assert b"".join(recording.sent) == received
    assert received.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert len(recording.sent) == writes, recording.sent
    if writes == 2:
        assert recording.sent[0].endswith(b"\r\n\r\n")  # the head alone, then the body
        assert recording.sent[1] == b"5\r\nhello\r\n0\r\n\r\n"


async def test_clients_that_do_not_read_hold_up_neither_the_sweep_nor_the_others() -> None:
    """Heads too big for a stalled client's socket buffers are cut off after
    HEAD_WRITE_TIMEOUT; the other heads of the same tick go out at once, and the
    next tick comes on time."""
    # A 256 KiB head: more than the socket buffers and what asyncio buffers take.
    big = [(b"x-padding-%d" % i, b"p" * 4000) for i in range(64)]
    apps = {f"/stalled{i}": QuietStream(big) for i in range(3)}
    apps["/quiet"] = QuietStream()
    apps["/later"] = QuietStream()

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        await apps[scope["path"]](scope, receive, send)

    def get(path: str) -> bytes:
        return GET.replace(b"/events", path.encode())

    with anyio.fail_after(30):
        async with swept_server(route) as (group, state, listener, first_tick):
            stalled = []
            for i in range(3):
                client = await connect_stalled(group, state, listener)
                stalled.append(client)
                client.sendall(get(f"/stalled{i}"))  # a few bytes: at once
            quiet, _ = await connect(group, state, listener)
            await quiet.send(get("/quiet"))
            for app in apps.values():
                if app is not apps["/later"]:
                    await app.started.wait()
            _, arrived = await read_head(quiet)
            assert abs(arrived - (first_tick + MIN_HOLD)) <= SLACK
            await anyio.sleep_until(first_tick + MIN_HOLD + HEAD_WRITE_TIMEOUT + SLACK)
            later, _ = await connect(group, state, listener)
            await later.send(get("/later"))
            _, arrived = await read_head(later)
            assert abs(arrived - (first_tick + CHECK_INTERVAL + MIN_HOLD)) <= SLACK
            for app in apps.values():
                app.go.set()
            for app in apps.values():
                await app.done.wait()
            for raw in stalled:
                raw.close()
            await quiet.aclose()
            await later.aclose()
    for i in range(3):
        [outcome] = apps[f"/stalled{i}"].outcome
        assert isinstance(outcome, ClientDisconnected)
    assert apps["/quiet"].outcome == apps["/later"].outcome == ["sent"]


async def test_a_file_after_a_released_head_is_sent_chunked(run_server: Any, tmp_path: Any) -> None:
    """pathsend sizes a held head (Content-Length); once the head went out without a
    length, the file follows chunked, as before heads were held."""
    content = b"0123456789abcdef" * 1000
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    head_seen = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await head_seen.wait()
        await send({"type": "http.response.pathsend", "path": str(path)})

    with anyio.fail_after(30):
        async with run_server(app) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            async with await anyio.connect_tcp(host, int(port)) as client:
                await client.send(GET)
                received, _ = await read_head(client)
                head_seen.set()
                events = await read_to_end(client, received)
    response, *data, end = events
    assert (b"transfer-encoding", b"chunked") in response.headers
    assert b"".join(bytes(d.data) for d in data) == content
    assert type(end) is h11.EndOfMessage


async def test_http2_holds_a_quiet_streams_head_within_the_same_bound(run_server: Any) -> None:
    """Over HTTP/2 a stream's HEADERS are held as on HTTP/1.1 (for the first DATA, or a
    pathsend's 500), and the same sweep sends a quiet stream's within the bound."""
    app = QuietStream()
    with anyio.fail_after(30):
        async with run_server(app) as server:
            host, port = server.addresses[0].rsplit(":", 1)
            async with await anyio.connect_tcp(host, int(port)) as client:
                h2_client = h2.connection.H2Connection()
                h2_client.initiate_connection()
                request = [(":method", "GET"), (":path", "/events"), (":scheme", "http")]
                h2_client.send_headers(1, [*request, (":authority", "t")], end_stream=True)
                await client.send(h2_client.data_to_send())
                response: list[h2.events.ResponseReceived] = []
                while not response:
                    events = h2_client.receive_data(await client.receive())
                    response = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
                    await client.send(h2_client.data_to_send())
                arrived = anyio.current_time()
                app.go.set()
                with anyio.fail_after(5):
                    await app.done.wait()
    assert MIN_HOLD - SLACK <= arrived - app.started_at <= BOUND
    assert app.outcome == ["sent"]
