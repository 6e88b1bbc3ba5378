"""How many writes a response takes: the head waits for the first body message.

A real client on a loopback socket, and the server's side of the connection
wrapped in a stream that records every ``send`` (anyio's own socket stream
underneath, so the server takes its generic transport, which writes a small
message in one ``send``). The common response, a ``start`` and one ``body``,
must be one write whatever its framing; a stream is one write per body message.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import pytest

from trio_asgi import ClientDisconnected, Config
from trio_asgi._server._connection import HTTPConnection
from trio_asgi._server._http11_stream import COALESCE_LIMIT, PIPELINE_BATCH_LIMIT
from trio_asgi._server._state import ServerState
from trio_asgi._types import Receive, Scope, Send

pytestmark = pytest.mark.anyio

TIMEOUT = 10
GET = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


class RecordingStream(anyio.abc.ByteStream):
    """A byte stream that records what is sent through it, then passes it on."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner
        self.sent: list[bytes] = []

    async def send(self, item: bytes) -> None:
        self.sent.append(bytes(item))
        await self.inner.send(item)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.inner.extra_attributes


async def writes_of(
    app: Callable[[Scope, Receive, Send], Awaitable[None]], requests: bytes = GET
) -> list[bytes]:
    """Serve ``requests`` with ``app``: the server's writes, once the client read them all."""
    state = ServerState(app, Config(access_log=False))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                server_side = RecordingStream(await listener.listeners[0].accept())  # type: ignore[attr-defined]
                async with anyio.create_task_group() as group:
                    group.start_soon(HTTPConnection(server_side, state).run)
                    await client.send(requests)
                    received = b""
                    while True:
                        try:
                            received += await client.receive()
                        except anyio.EndOfStream:
                            break
    assert b"".join(server_side.sent) == received
    return server_side.sent


def respond(
    headers: list[tuple[bytes, bytes]], *bodies: bytes
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, body in enumerate(bodies):
            more = index < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


@pytest.mark.parametrize(
    "headers",
    [[(b"content-length", b"5")], [], [(b"content-type", b"text/plain")]],
    ids=["length", "chunked", "chunked-typed"],
)
async def test_a_start_and_one_body_is_one_write(headers: list[tuple[bytes, bytes]]) -> None:
    (write,) = await writes_of(respond(headers, b"hello"))
    assert write.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"hello" in write


async def test_a_stream_goes_out_with_its_first_body_message() -> None:
    first, second = await writes_of(respond([], b"one", b"two"))
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n3\r\none\r\n")
    assert second == b"3\r\ntwo\r\n0\r\n\r\n"


async def test_an_empty_first_body_message_still_sends_the_head() -> None:
    first, second = await writes_of(respond([], b"", b"late"))
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n")
    assert second == b"4\r\nlate\r\n0\r\n\r\n"


async def test_a_large_body_is_not_copied_behind_the_head() -> None:
    body = b"x" * (COALESCE_LIMIT + 1)
    head, *rest = await writes_of(respond([(b"content-length", b"%d" % len(body))], body))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert b"".join(rest) == body


KEEP = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_pipelined_responses_go_out_in_one_write() -> None:
    """Three requests in one packet: the first two answers wait for the third's."""
    (write,) = await writes_of(respond([(b"content-length", b"2")], b"hi"), KEEP * 3 + GET)
    assert write.count(b"HTTP/1.1 200 OK\r\n") == 4


async def test_a_pipelined_batch_is_bounded_in_bytes() -> None:
    body = b"x" * (PIPELINE_BATCH_LIMIT // 3)
    writes = await writes_of(
        respond([(b"content-length", b"%d" % len(body))], body), KEEP * 5 + GET
    )
    assert b"".join(writes).count(b"HTTP/1.1 200 OK\r\n") == 6
    assert len(writes) >= 2
    assert all(len(write) <= PIPELINE_BATCH_LIMIT + len(body) + 512 for write in writes)


async def test_a_response_waits_for_no_request_that_is_not_there() -> None:
    """The last pipelined request's answer goes out at once, though the connection stays."""
    state = ServerState(respond([(b"content-length", b"2")], b"hi"), Config(access_log=False))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(TIMEOUT):
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                server_side = await listener.listeners[0].accept()  # type: ignore[attr-defined]
                async with anyio.create_task_group() as group:
                    group.start_soon(HTTPConnection(server_side, state).run)
                    await client.send(KEEP * 2 + b"GET / HT")  # a third is on its way
                    received = b""
                    while received.count(b"\r\n\r\nhi") < 2:
                        received += await client.receive()
                    await client.send(b"TP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    while not received.endswith(b"close\r\n\r\nhi") or received.count(b"hi") < 3:
                        received += await client.receive()


async def test_a_pipelining_client_that_stops_reading_stalls_its_app(
    run_server: Callable[..., Any],
) -> None:
    """Batched responses are bounded: past the batch, send() waits on the socket, and
    a client that never reads is cut off by the write timeout."""
    body = b"x" * 30_000
    served: list[int] = []
    outcome: list[BaseException] = []
    cut_off = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            await send({"type": "http.response.body", "body": body})
        except ClientDisconnected as exc:
            outcome.append(exc)
            cut_off.set()
            raise
        served.append(1)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_write=0.5) as server:
            host, _, port = server.addresses[0].rpartition(":")
            sock = socket.create_connection((host, int(port)))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                sock.sendall(KEEP * 600)  # and never read
                await cut_off.wait()
            finally:
                sock.close()
    assert "did not read" in str(outcome[0])
    # The kernel's buffers take about 130 answers; unbounded batches would take all 599.
    assert len(served) < 400, len(served)


async def test_a_held_head_goes_out_when_the_app_waits_on_the_client(
    run_server: Callable[..., Any],
) -> None:
    """A long poll: the head, then a wait for news or a disconnect. The client sees the
    head while the app waits (no body message ever came to send it along)."""
    messages: list[str] = []
    done = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        messages.append((await receive())["type"])  # the (empty) request body
        messages.append((await receive())["type"])  # waits until the client leaves
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            host, _, port = server.addresses[0].rpartition(":")
            async with await anyio.connect_tcp(host, int(port)) as client:
                await client.send(KEEP)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await client.receive()
            await done.wait()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked\r\n" in head
    assert messages == ["http.request", "http.disconnect"]
