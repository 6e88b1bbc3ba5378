"""Every connection deadline, on memory streams under a virtual clock (exact times).

Deadlines: first byte, request head (slowloris), keep-alive idle, body total, body
idle, write. Each test asserts when (in virtual seconds) the server acts, what the
client sees and what the app sees.
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
from trio_asgi._types import Message, Receive, Scope, Send
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]


async def trickle(client: Client, data: bytes, interval: float) -> None:
    """Send ``data`` one byte every ``interval`` seconds until done or the server hangs up."""
    for i in range(len(data)):
        try:
            await client.send(data[i : i + 1])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await anyio.sleep(interval)


# --- first byte -----------------------------------------------------------------------------


async def test_silent_connection_is_closed_at_first_byte_deadline() -> None:
    config = make_config(timeout_first_byte=3.0, timeout_keep_alive=7.0)
    async with running(hello_app, config) as srv:
        t0 = now()
        client = await srv.connect()
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 0, 0)
        # Closed without a byte of response: there is no request to answer.
        assert await client.expect_closed() - t0 == pytest.approx(3.0)
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 0)


async def test_first_byte_in_time_then_head_deadline_applies() -> None:
    config = make_config(timeout_first_byte=3.0, timeout_request_head=4.0)
    async with running(hello_app, config) as srv:
        t0 = now()
        client = await srv.connect()
        await anyio.sleep(2.5)
        await client.send(b"GET / HT")
        response = await client.response()
        # The head deadline counts from the first byte (2.5), not from the connection.
        assert response.status == 408
        assert response.at - t0 == pytest.approx(2.5 + 4.0)
        assert response.closes
        assert await client.expect_closed() - t0 == pytest.approx(6.5)
        # The server half-closed and drains briefly; once the client closes, it is gone.
        await client.aclose()
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 0)


# --- request head (slowloris) -----------------------------------------------------------------


async def test_slowloris_gets_408_at_head_deadline() -> None:
    config = make_config(timeout_request_head=4.0, timeout_first_byte=100.0)
    called = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)  # pragma: no cover - must not be reached

    async with running(app, config) as srv:
        client = await srv.connect()
        request = raw_request(headers=[("X-Padding", "p" * 40)])
        async with anyio.create_task_group() as nursery:
            t0 = now()
            # One byte a second: never complete in 4 s, and never silent for long.
            nursery.start_soon(trickle, client, request, 1.0)
            response = await client.response()
            assert response.status == 408
            assert response.at - t0 == pytest.approx(4.0)
            assert response.closes
            assert response.header(b"content-length") == str(len(response.body)).encode()
            closed_at = await client.expect_closed()
            # The server half-closes right after the 408 (then drains for a moment).
            assert closed_at - t0 == pytest.approx(4.0)
            nursery.cancel_scope.cancel()
        await client.aclose()
        await wait_all_tasks_blocked()
        assert called == []
        assert srv.stats() == (0, 0, 0)


async def test_head_split_over_time_but_within_deadline_is_served() -> None:
    config = make_config(timeout_request_head=4.0)
    async with running(hello_app, config) as srv:
        client = await srv.connect()
        request = raw_request(target="/slow")
        t0 = now()
        async with anyio.create_task_group() as nursery:
            # len(request) - 1 intervals of 0.1 s: complete after 2.x s, before 4 s.
            nursery.start_soon(trickle, client, request, 0.1)
            response = await client.response()
        assert response.status == 200
        assert response.body == b"hello /slow"
        assert response.at - t0 == pytest.approx(0.1 * (len(request) - 1))


async def test_head_deadline_on_a_kept_alive_connection() -> None:
    config = make_config(timeout_request_head=4.0, timeout_keep_alive=10.0)
    async with running(hello_app, config) as srv:
        client = await srv.connect()
        await client.request()
        assert (await client.response()).status == 200
        await anyio.sleep(1.0)
        t1 = now()
        await client.send(b"GET /second HTTP/1.1\r\nHo")
        response = await client.response()
        assert response.status == 408
        assert response.at - t1 == pytest.approx(4.0)
        await client.expect_closed()


# --- keep-alive -------------------------------------------------------------------------------


async def test_idle_keep_alive_connection_is_closed_after_timeout() -> None:
    config = make_config(timeout_keep_alive=2.5, timeout_first_byte=9.0)
    async with running(hello_app, config) as srv:
        client = await srv.connect()
        await client.request()
        first = await client.response()
        assert first.status == 200
        assert not first.closes
        # A request just before the deadline is served and re-arms it.
        await anyio.sleep(2.4)
        await client.request(target="/again")
        second = await client.response()
        assert second.body == b"hello /again"
        assert second.at - first.at == pytest.approx(2.4)
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 0, 2)
        assert await client.expect_closed() - second.at == pytest.approx(2.5)
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 2)


# --- request body -----------------------------------------------------------------------------


class BodyRecorder:
    """An app that reads the body, recording every message with its time, then answers."""

    def __init__(self, *, start_response_first: bool = False) -> None:
        self.messages: list[tuple[float, Message]] = []
        self.send_error: BaseException | None = None
        self.start_response_first = start_response_first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.start_response_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            # The head waits for the first body message: this one sends it.
            await send({"type": "http.response.body", "body": b"early", "more_body": True})
        while True:
            message = await receive()
            self.messages.append((now(), message))
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        try:
            if self.start_response_first:
                await send({"type": "http.response.body", "body": b"late"})
            else:
                await respond(send, 200, b"too late")
        except OSError as exc:
            self.send_error = exc


async def test_body_total_deadline() -> None:
    # The client is never idle for long (a byte a second) but never finishes.
    config = make_config(timeout_body=5.0, timeout_body_idle=2.0)
    app = BodyRecorder()
    async with running(app, config) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", headers=[("Content-Length", "100")]))
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(trickle, client, b"x" * 100, 1.0)
            response = await client.response()
            nursery.cancel_scope.cancel()
        assert response.status == 408
        assert response.at - t0 == pytest.approx(5.0)
        assert response.closes
        await client.expect_closed()
        disconnect_at, last = app.messages[-1]
        assert last == {"type": "http.disconnect"}
        assert disconnect_at - t0 == pytest.approx(5.0)
        bodies = [m for _, m in app.messages[:-1]]
        assert all(m["type"] == "http.request" and m["more_body"] for m in bodies)
        assert b"".join(m["body"] for m in bodies) == b"x" * 5
        assert isinstance(app.send_error, ClientDisconnected)
        assert srv.stats() == (0, 0, 1)


async def test_body_idle_deadline() -> None:
    config = make_config(timeout_body=None, timeout_body_idle=2.0)
    app = BodyRecorder()
    async with running(app, config) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", headers=[("Content-Length", "10")]) + b"abc")
        await anyio.sleep(1.5)
        await client.send(b"d")
        response = await client.response()
        assert response.status == 408
        # Silent since 1.5: the idle deadline is 2 s after the last byte.
        assert response.at - t0 == pytest.approx(3.5)
        await client.expect_closed()
        assert [m for _, m in app.messages] == [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"d", "more_body": True},
            {"type": "http.disconnect"},
        ]
        assert app.messages[-1][0] - t0 == pytest.approx(3.5)
        assert isinstance(app.send_error, ClientDisconnected)


async def test_body_deadline_counts_from_first_read_not_from_the_head() -> None:
    # The app takes 10 s before it reads: the body clock starts when it does.
    config = make_config(timeout_body=3.0, timeout_body_idle=None)
    times: list[float] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep(10.0)
        body, _ = await read_body(receive)
        times.append(now())
        await respond(send, 200, body)

    async with running(app, config) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", headers=[("Content-Length", "4")]))
        await anyio.sleep(12.0)
        await client.send(b"data")
        response = await client.response()
        assert response.status == 200
        assert response.body == b"data"
        assert times[0] - t0 == pytest.approx(12.0)


async def test_body_timeout_after_response_started_closes_without_408() -> None:
    config = make_config(timeout_body=None, timeout_body_idle=2.0)
    app = BodyRecorder(start_response_first=True)
    async with running(app, config) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", headers=[("Content-Length", "10")]) + b"abc")
        # The response head went out (chunked); then the body stalls and the server
        # can only close: a 408 would be a second response.
        raw = await client.read_until_eof()
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"408" not in raw
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert not body.endswith(b"0\r\n\r\n")  # the chunked body was never terminated
        assert now() - t0 == pytest.approx(2.0)
        assert app.messages[-1] == (pytest.approx(t0 + 2.0), {"type": "http.disconnect"})
        assert isinstance(app.send_error, ClientDisconnected)


async def test_body_timeout_after_a_held_response_head_is_a_whole_408() -> None:
    """A head without a body message yet is held, so a stalled body still gets a 408."""
    config = make_config(timeout_body=None, timeout_body_idle=2.0)
    started = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        while (await receive())["type"] != "http.disconnect":
            pass

    async with running(app, config) as srv:
        client = await srv.connect()
        t0 = now()
        await client.send(raw_request("POST", headers=[("Content-Length", "10")]) + b"abc")
        response = await client.response()
        assert started.is_set()
        assert response.status == 408
        assert response.at - t0 == pytest.approx(2.0)
        assert response.closes


# --- write ----------------------------------------------------------------------------------


class BigSender:
    """An app that sends ``size`` bytes in ``chunk``-sized messages, recording the outcome."""

    def __init__(self, size: int, chunk: int) -> None:
        self.size = size
        self.chunk = chunk
        self.sent = 0
        self.error: BaseException | None = None
        self.error_at = 0.0
        self.failed = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(self.size).encode())],
            }
        )
        try:
            while self.sent < self.size:
                piece = min(self.chunk, self.size - self.sent)
                more = self.sent + piece < self.size
                await send({"type": "http.response.body", "body": b"x" * piece, "more_body": more})
                self.sent += piece
        except OSError as exc:
            self.error = exc
            self.error_at = now()
            self.failed.set()
            raise


async def test_write_timeout_when_client_stops_reading() -> None:
    config = make_config(timeout_write=4.0)
    app = BigSender(size=100_000, chunk=10_000)
    async with running(app, config, receive_window=1024) as srv:
        client = await srv.connect()
        t0 = now()
        await client.request()
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 0)
        assert app.error is None
        await app.failed.wait()  # never reading
        # send() raised our OSError subclass once one write had waited 4 s.
        assert isinstance(app.error, ClientDisconnected)
        assert isinstance(app.error, OSError)
        assert app.error_at - t0 == pytest.approx(4.0)
        assert app.sent == 0  # the first 10 kB never fit in the 1 kB window
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 1)
        with pytest.raises(trio.BrokenResourceError):
            await client.send(b"GET / HTTP/1.1\r\n")  # the server closed its end


async def test_slow_but_steady_reader_is_not_cut_off_by_write_timeout() -> None:
    # 16 kB a second is slow, but the client keeps reading: the write makes progress,
    # so one 200 kB send() completes although it takes far longer than timeout_write.
    config = make_config(timeout_write=5.0)
    app = BigSender(size=200_000, chunk=200_000)
    async with running(app, config, receive_window=16384) as srv:
        client = await srv.connect()
        t0 = now()
        await client.request()
        while app.sent < app.size and app.error is None:
            await anyio.sleep(1.0)
            assert await client.fill(16384)
        assert app.error is None
        assert now() - t0 > 10.0
        response = await client.response()
        assert len(response.body) == 200_000
