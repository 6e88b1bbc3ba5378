"""Backpressure over bounded in-memory pipes (issue 2 section 4).

A bounded pipe holds at most ``receive_window`` unread bytes per direction, like a
socket buffer: a writer waits until the reader makes room. With it we check that
``send()`` returns only once the client has taken the bytes, that the server reads
a request body only as the app asks for it, that pipelined input is buffered only
up to ``Limits.buffer_limit``, and that ``http.disconnect`` reaches an app waiting
in ``receive()`` while its response is still streaming.
"""

from __future__ import annotations

import anyio
import pytest
import trio
from memory_helpers import (
    Client,
    hello_app,
    make_config,
    now,
    raw_request,
    read_body,
    respond,
    running,
)

from trio_asgi import ClientDisconnected
from trio_asgi._protocol._http11 import Limits
from trio_asgi._types import Message, Receive, Scope, Send
from trio_asgi.testing import BoundedMemoryStream
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

WINDOW = 4096


def unread_by_client(client: Client) -> int:
    stream = client.stream.receive_stream
    assert isinstance(stream, BoundedMemoryStream)
    return stream.statistics().unread_received


async def test_send_returns_only_once_the_client_has_taken_the_bytes() -> None:
    size = 10 * WINDOW
    returned: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"x" * size})
        returned.append(now())

    config = make_config(timeout_write=None)
    async with running(app, config, receive_window=WINDOW) as srv:
        client = await srv.connect()
        await client.request()
        await wait_all_tasks_blocked()
        # The window is full and send() is still waiting: it has not returned.
        assert unread_by_client(client) == WINDOW
        assert returned == []
        assert srv.stats() == (1, 1, 0)
        await anyio.sleep(60.0)  # with no write timeout, it waits as long as it takes
        assert returned == []

        taken = 0
        while not returned:
            assert await client.fill(1000)
            taken += 1
            await wait_all_tasks_blocked()
        # send() returned once all but at most a window's worth had been read.
        assert unread_by_client(client) <= WINDOW
        response = await client.response()
        assert len(response.body) == size
        assert srv.stats() == (1, 0, 1)


async def test_a_client_that_does_not_read_stalls_only_its_own_app() -> None:
    big = b"x" * (20 * WINDOW)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 200, big if scope["path"] == "/big" else b"small")

    async with running(app, make_config(timeout_write=None), receive_window=WINDOW) as srv:
        stuck = await srv.connect()
        await stuck.request(target="/big")
        await wait_all_tasks_blocked()
        for _ in range(3):
            other = await srv.connect()
            await other.request()
            assert (await other.response()).body == b"small"
            await other.aclose()
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 3)
        assert (await stuck.response()).body == big


async def test_body_is_left_in_the_socket_until_the_app_reads_it() -> None:
    body_size = 1_000_000
    gate = anyio.Event()
    reads: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await gate.wait()
        message = await receive()
        reads.append(len(message["body"]))
        await respond(send, 200, b"read one message")

    async def send_body(client: Client) -> None:
        try:
            await client.send_in_pieces(b"b" * body_size, 1024)
        except trio.BrokenResourceError:
            pass  # the server closed: it will not read a megabyte it was not asked for

    async with running(app, make_config(), receive_window=WINDOW) as srv:
        client = await srv.connect()
        head = raw_request("POST", headers=[("Content-Length", str(body_size))])
        await client.send(head)
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(send_body, client)
            await wait_all_tasks_blocked()
            # The app has not called receive(): the server took the head (and at most
            # one window with it); the rest waits in the client's send.
            assert client.unread_sent() == WINDOW
            assert client.bytes_sent - WINDOW <= len(head) + WINDOW
            await anyio.sleep(30.0)
            await wait_all_tasks_blocked()
            assert client.bytes_sent - WINDOW <= len(head) + WINDOW
            assert srv.stats() == (1, 1, 0)

            gate.set()
            await wait_all_tasks_blocked()
            # One receive() took one read's worth, no more.
            assert 0 < reads[0] <= WINDOW
            response = await client.response()
            assert response.status == 200
            # The unread rest is too much to drain for keep-alive: the connection closes.
            assert await client.read_until_eof() == b""
        assert client.bytes_sent < body_size


async def test_pipelined_input_is_buffered_only_up_to_the_limit() -> None:
    config = make_config()
    limit = Limits(
        max_header_size=config.max_header_size,
        max_header_count=config.max_header_count,
        max_target_length=config.max_target_length,
    ).buffer_limit
    gate = anyio.Event()
    second_body = 5 * limit

    async def watch_disconnect(receive: Receive, seen: list[Message]) -> None:
        seen.append(await receive())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body, _ = await read_body(receive)
        if scope["path"] == "/1":
            seen: list[Message] = []
            async with anyio.create_task_group() as nursery:
                # Waiting in receive() lets the server read on: it may take pipelined
                # bytes, but only up to its buffer limit.
                nursery.start_soon(watch_disconnect, receive, seen)
                await gate.wait()
                await respond(send, 200, b"first")
            assert seen == [{"type": "http.disconnect"}]
        else:
            await respond(send, 200, b"second %d" % len(body))

    async with running(app, config, receive_window=WINDOW) as srv:
        client = await srv.connect()
        first = raw_request(target="/1")
        data = first + raw_request("POST", "/2", body=b"p" * second_body)
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(client.send_in_pieces, data, 1024)
            await wait_all_tasks_blocked()
            taken = client.bytes_sent - client.unread_sent()
            assert client.unread_sent() == WINDOW  # blocked: the server stopped reading
            assert limit <= taken - len(first) < limit + WINDOW
            await anyio.sleep(30.0)
            assert client.bytes_sent - client.unread_sent() == taken
            assert srv.stats() == (1, 1, 0)
            gate.set()
            one = await client.response()
            two = await client.response()
        assert (one.body, two.body) == (b"first", b"second %d" % second_body)
        assert client.bytes_sent == len(data)
        assert srv.stats() == (1, 0, 2)


async def test_disconnect_reaches_an_app_waiting_in_receive_while_streaming() -> None:
    # The server-sent-events shape: one task streams, another waits for the disconnect.
    events: list[tuple[float, str]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def stream() -> None:
            try:
                while True:
                    await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
                    await anyio.sleep(1.0)
            except ClientDisconnected:
                events.append((now(), "send raised"))

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(stream)
            message = await receive()
            events.append((now(), message["type"]))
            # receive() keeps answering the same after a disconnect.
            assert await receive() == message

    async with running(app, make_config(), receive_window=WINDOW) as srv:
        client = await srv.connect()
        t0 = now()
        await client.request()
        await anyio.sleep(3.5)
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 0)
        await client.aclose()
        await wait_all_tasks_blocked()
        assert events[0] == (pytest.approx(t0 + 3.5), "http.disconnect")
        await anyio.sleep(1.0)
        assert events[1] == (pytest.approx(t0 + 4.0), "send raised")
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 1)


async def test_disconnect_while_the_app_waits_in_receive_after_the_body() -> None:
    received: list[tuple[float, Message]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        message = await receive()
        received.append((now(), message))

    async with running(app, make_config(timeout_keep_alive=100.0)) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", body=b"abc"))
        await anyio.sleep(2.0)
        assert received == []  # the response is not done: receive() blocks
        await client.aclose()
        await wait_all_tasks_blocked()
        assert received == [(pytest.approx(t0 + 2.0), {"type": "http.disconnect"})]
        assert srv.stats() == (0, 0, 1)


async def test_hello_over_a_tiny_window() -> None:
    # Everything still works when every read and write is cut into 7-byte pieces.
    async with running(hello_app, make_config(), receive_window=7) as srv:
        client = await srv.connect()
        await client.send(raw_request("POST", "/tiny", body=b"z" * 100))
        response = await client.response()
        assert (response.status, response.body) == (200, b"hello /tiny")


async def test_polling_receive_while_another_task_waits_in_receive() -> None:
    # Starlette's StreamingResponse listens for the disconnect in one task while the
    # body generator polls request.is_disconnected(), which is receive() inside an
    # already-cancelled scope. The poll must simply find nothing (be cancelled), and
    # both must see the disconnect once the client is gone.
    polls: list[bool] = []
    listener_saw: list[tuple[float, Message]] = []

    async def is_disconnected(receive: Receive) -> bool:
        message: Message = {}
        with anyio.CancelScope() as scope:
            scope.cancel()
            message = await receive()
        return message.get("type") == "http.disconnect"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def listen() -> None:
            message = await receive()
            listener_saw.append((now(), message))

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(listen)
            await wait_all_tasks_blocked()
            while True:
                polls.append(await is_disconnected(receive))
                if polls[-1]:
                    break
                await send({"type": "http.response.body", "body": b".", "more_body": True})
                await anyio.sleep(1.0)

    async with running(app, make_config()) as srv:
        client = await srv.connect()
        t0 = now()
        await client.request()
        await anyio.sleep(2.5)
        assert polls == [False, False, False]
        await client.aclose()
        await wait_all_tasks_blocked()
        assert listener_saw == [(pytest.approx(t0 + 2.5), {"type": "http.disconnect"})]
        await anyio.sleep(0.5)
        await wait_all_tasks_blocked()
        assert polls == [False, False, False, True]  # the poll at 3.0 sees it
        assert srv.stats() == (0, 0, 1)
