"""The in-memory HTTP/2 client of trio_asgi.testing against the real server, on both loops.

Each test drives the whole server (prior-knowledge HTTP/2 on the in-memory stream)
in virtual time, through :meth:`TestServer.connect_http2`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from trio_asgi.testing import (
    BACKENDS,
    Backend,
    ConnectionClosed,
    RecordingApp,
    TestServer,
    open_test_server,
    run_in_virtual_time,
)
from trio_asgi.testing.strategies import H2FrameType, ping_frame

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body = await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-path", b"1")]})
    await send({"type": "http.response.body", "body": scope["http_version"].encode() + b":" + body})


def serve(
    app: Any, backend: Backend, test: Callable[[TestServer], Awaitable[None]], **options: Any
) -> None:
    async def main() -> None:
        async with open_test_server(app, lifespan="off", **options) as server:
            await test(server)

    run_in_virtual_time(main, backend=backend)


def test_a_request_with_body_pieces_and_trailers(backend: Backend) -> None:
    app = RecordingApp(echo)

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        response = await client.request(
            "POST", "/up?x=1", body=[b"ab", b"", b"cd"], trailers=[("x-sum", "4")]
        )
        assert (response.status, response.body) == (200, b"2:abcd")
        assert response.header("x-path") == b"1"
        assert response.complete
        assert response.reset_code is None

    serve(app, backend, test)
    (call,) = app.calls
    assert (call.scope["http_version"], call.scope["raw_path"], call.scope["query_string"]) == (
        "2",
        b"/up",
        b"x=1",
    )
    assert call.body == b"abcd"


def test_streams_are_concurrent_a_slow_one_delays_no_other(backend: Backend) -> None:
    released = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await released.wait()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})
        if scope["path"] == "/fast":
            released.set()

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        slow = await client.start_request("GET", "/slow")
        fast = await client.start_request("GET", "/fast")
        assert (await client.read_response(fast)).body == b"/fast"
        assert (await client.read_response(slow)).body == b"/slow"

    serve(app, backend, test)


def test_several_tasks_wait_on_one_connection(backend: Backend) -> None:
    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        bodies: dict[int, bytes] = {}

        async def one(index: int) -> None:
            response = await client.request("POST", f"/{index}", body=b"x" * index)
            bodies[index] = response.body

        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(one, index)
        assert bodies == {i: b"2:" + b"x" * i for i in range(8)}

    serve(echo, backend, test)


def test_response_trailers_are_read(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-check", b"ok")]})

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        response = await client.request("GET", "/", headers=[("te", "trailers")])
        assert (response.body, response.trailers) == (b"data", [(b"x-check", b"ok")])

    serve(app, backend, test)


def test_a_reset_stream_reaches_the_app_as_a_disconnect(backend: Backend) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        stream = await client.start_request("POST", "/", end_stream=False)
        await client.send_body(stream, b"part")
        await client.settle()
        await client.reset_stream(stream)
        await server.wait_requests_finished()
        await client.ping()  # the connection serves on

    serve(app, backend, test)
    assert seen == ["http.request", "http.disconnect"]


def test_a_client_goaway_lets_the_stream_in_flight_finish(backend: Backend) -> None:
    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        stream = await client.start_request("POST", "/", end_stream=False)
        await client.goaway()
        await client.send_body(stream, b"last", end_stream=True)
        assert (await client.read_response(stream)).body == b"2:last"

    serve(echo, backend, test)


def test_a_client_that_does_not_read_holds_the_app_at_its_window(backend: Backend) -> None:
    finished = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"z" * 100_000})
        finished.set()

    async def test(server: TestServer) -> None:
        client = await server.connect_http2(initial_window_size=1000, auto_window_update=False)
        stream = await client.start_request("GET", "/")
        await client.read_response_head(stream)
        await client.settle()
        assert len(client.response(stream).body) == 1000
        assert not finished.is_set()
        await client.open_window(200_000)
        await client.open_window(200_000, stream)
        response = await client.read_response(stream)
        assert len(response.body) == 100_000
        assert finished.is_set()

    serve(app, backend, test)


def test_a_body_the_app_never_reads_is_cut_short_by_a_reset(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 413})
        await send({"type": "http.response.body", "body": b"too big"})

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        stream = await client.start_request("POST", "/", end_stream=False)
        assert not await client.send_body(stream, b"x" * 300_000, end_stream=True)
        response = await client.read_response(stream)
        assert (response.status, response.body, response.complete) == (413, b"too big", True)
        assert response.reset_code == 0  # NO_ERROR: "stop sending" (RFC 9113 section 8.1)
        assert (await client.request("GET", "/")).status == 413

    serve(app, backend, test)


def test_raw_frames_and_the_server_frames_recorded(backend: Backend) -> None:
    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        assert await client.send_raw(ping_frame(b"12345678"))
        frames = await client.settle()
        assert [(f.type, f.flags, f.payload) for f in frames] == [
            (H2FrameType.PING, 1, b"12345678")
        ]
        assert client.raw
        with pytest.raises(RuntimeError, match="raw bytes"):
            await client.start_request()

    serve(echo, backend, test)


def test_a_server_that_closes_mid_stream_is_reported(backend: Backend) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await anyio.sleep_forever()

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        stream = await client.start_request("GET", "/")
        # Keep-alive does not apply while a stream is open; shutting down does.
        server.shutdown()
        with pytest.raises(ConnectionClosed, match=f"stream {stream}"):
            await client.read_response(stream)
        assert client.goaway_received is not None

    serve(app, backend, test, raise_app_exceptions=False, timeout_graceful_shutdown=1.0)
