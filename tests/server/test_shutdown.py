"""Graceful shutdown and outer cancellation, on memory streams under a virtual clock.

What must hold (issue 2, sections 4 and 6; PEERS.md): idle connections close at
once; a request in flight finishes and says ``connection: close``; what is still
running after ``timeout_graceful_shutdown`` is cancelled; a client that stops
reading never keeps the server alive; cancelling ``serve()`` from outside returns
promptly and still runs lifespan shutdown, bounded by ``timeout_lifespan_shutdown``.
"""

from __future__ import annotations

import functools

import anyio
import pytest
import trio
from memory_helpers import (
    HANG,
    LifespanApp,
    gated_app,
    hello_app,
    make_config,
    now,
    raw_request,
    read_body,
    running,
)

import trio_asgi
from trio_asgi import Server
from trio_asgi._server._connection import SHUTDOWN_REQUEST_GRACE
from trio_asgi._types import Receive, Scope, Send
from trio_asgi.testing._memory import MemoryListener
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]


class Forever:
    """An HTTP app that never finishes its response; records when it gets cancelled."""

    def __init__(self, *, stream_body: bool = False) -> None:
        self.stream_body = stream_body
        self.entered = anyio.Event()
        self.cancelled_at: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        try:
            if self.stream_body:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"10000000")],
                    }
                )
                self.entered.set()
                while True:  # a big body for a client that does not read
                    await send(
                        {"type": "http.response.body", "body": b"x" * 65536, "more_body": True}
                    )
            self.entered.set()
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled_at = now()
            raise


# --- graceful shutdown --------------------------------------------------------------------


async def test_shutdown_closes_idle_connections_after_the_request_grace() -> None:
    # An idle keep-alive client may be sending its next request as the drain begins:
    # it gets SHUTDOWN_REQUEST_GRACE (from when it went idle) to deliver it.
    async with running(hello_app, make_config(timeout_keep_alive=60.0)) as srv:
        kept, silent = await srv.connect(), await srv.connect()
        await kept.request()
        assert (await kept.response()).status == 200
        await wait_all_tasks_blocked()
        assert srv.stats() == (2, 0, 1)
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() == pytest.approx(t0 + SHUTDOWN_REQUEST_GRACE)
        assert await kept.expect_closed() == pytest.approx(t0 + SHUTDOWN_REQUEST_GRACE)
        assert await silent.expect_closed() == pytest.approx(t0 + SHUTDOWN_REQUEST_GRACE)
        assert srv.stats() == (0, 0, 1)
        srv.server.shutdown()  # idempotent, also after the end


async def test_shutdown_closes_long_idle_connections_at_once() -> None:
    async with running(hello_app, make_config(timeout_keep_alive=60.0)) as srv:
        kept = await srv.connect()
        await kept.request()
        assert (await kept.response()).status == 200
        await anyio.sleep(SHUTDOWN_REQUEST_GRACE + 5.0)
        t0 = now()
        srv.server.shutdown()
        assert await kept.expect_closed() == pytest.approx(t0)
        assert await srv.wait_stopped() == pytest.approx(t0)


async def test_next_request_during_the_drain_is_answered_with_connection_close() -> None:
    # What makes a rolling restart lose nothing: the keep-alive request that arrives
    # as the drain begins is served, and the response tells the client to reconnect.
    async with running(hello_app, make_config(timeout_keep_alive=60.0)) as srv:
        kept = await srv.connect()
        await kept.request()
        assert not (await kept.response()).closes
        srv.server.shutdown()
        await anyio.sleep(SHUTDOWN_REQUEST_GRACE / 2)
        await kept.request()
        response = await kept.response()
        assert response.status == 200
        assert response.closes
        assert await kept.read_until_eof() == b""
        await srv.wait_stopped()


async def test_response_started_before_the_drain_closes_with_the_next_one() -> None:
    # A response that already promised keep-alive when the drain began: closing right
    # after it would cut the client's next request, so that one gets Connection: close.
    gate = anyio.Event()
    async with running(gated_app(gate), make_config(timeout_keep_alive=60.0)) as srv:
        client = await srv.connect()
        await client.request()
        await wait_all_tasks_blocked()
        srv.server.shutdown()
        gate.set()
        assert (await client.response()).status == 200
        await client.request()
        response = await client.response()
        assert (response.status, response.closes) == (200, True)
        await srv.wait_stopped()


async def test_shutdown_lets_the_request_in_flight_finish_with_connection_close() -> None:
    gate = anyio.Event()
    app = LifespanApp(gated_app(gate))
    config = make_config(lifespan="on", timeout_graceful_shutdown=30.0)
    async with running(app, config) as srv:
        busy, idle = await srv.connect(), await srv.connect()
        # A second request pipelined behind the first is not served after shutdown.
        await busy.send(raw_request(target="/1") + raw_request(target="/2"))
        await wait_all_tasks_blocked()
        assert srv.stats() == (2, 1, 0)
        t0 = now()
        srv.server.shutdown()
        assert await idle.expect_closed() == pytest.approx(t0 + SHUTDOWN_REQUEST_GRACE)
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 0)
        assert not srv.stopped.is_set()
        assert app.times("lifespan.shutdown") == []  # not before the connections are done
        with pytest.raises(trio.BrokenResourceError):
            await srv.listener.connect()  # no longer accepting

        await anyio.sleep(2.0 - SHUTDOWN_REQUEST_GRACE)
        gate.set()
        response = await busy.response()
        assert (response.status, response.body) == (200, b"done")
        assert response.closes
        assert response.at - t0 == pytest.approx(2.0)
        assert await busy.read_until_eof() == b""  # /2 never answered
        assert await srv.wait_stopped() - t0 == pytest.approx(2.0)
        assert app.times("lifespan.shutdown") == [pytest.approx(t0 + 2.0)]
        assert srv.stats() == (0, 0, 1)


async def test_graceful_shutdown_timeout_cancels_the_rest() -> None:
    forever = Forever()
    app = LifespanApp(forever)
    config = make_config(lifespan="on", timeout_graceful_shutdown=3.0)
    async with running(app, config) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() - t0 == pytest.approx(3.0)
        assert forever.cancelled_at == pytest.approx(t0 + 3.0)
        # The response had not started: the client learns why the request ended (503,
        # safe to retry elsewhere) instead of seeing a bare close.
        response = await client.response()
        assert response.status == 503
        assert response.closes
        assert response.at - t0 == pytest.approx(3.0)
        assert await client.expect_closed() - t0 == pytest.approx(3.0)
        # Lifespan shutdown ran after the connections were cancelled, and completed.
        assert app.times("lifespan.shutdown") == [pytest.approx(t0 + 3.0)]
        assert app.times("returned") == [pytest.approx(t0 + 3.0)]
        assert srv.stats() == (0, 0, 1)


async def test_a_response_already_started_is_cut_off_without_a_503() -> None:
    gate = anyio.Event()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        await gate.wait()

    config = make_config(timeout_graceful_shutdown=3.0)
    async with running(streaming, config) as srv:
        client = await srv.connect()
        await client.request()
        await wait_all_tasks_blocked()
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() - t0 == pytest.approx(3.0)
        rest = await client.read_until_eof()
        assert rest.startswith(b"HTTP/1.1 200 ")
        assert b" 503 " not in rest  # a second status line would corrupt the response


async def test_outer_cancellation_in_the_grace_period_sends_no_503() -> None:
    forever = Forever()
    config = make_config(timeout_graceful_shutdown=30.0)
    async with running(forever, config) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        srv.server.shutdown()
        await anyio.sleep(2.0)
        srv.cancel_scope.cancel()  # not the grace period's end: an order to stop now
        await srv.wait_stopped()
        await client.expect_closed()


async def test_client_that_does_not_read_cannot_stall_graceful_shutdown() -> None:
    # PEERS: a client that stops reading kept Hypercorn-trio alive (shielded writes).
    # No write timeout at all here: only the grace period can end the write.
    forever = Forever(stream_body=True)
    app = LifespanApp(forever)
    config = make_config(lifespan="on", timeout_write=None, timeout_graceful_shutdown=3.0)
    async with running(app, config, receive_window=4096) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        await wait_all_tasks_blocked()
        assert srv.stats() == (1, 1, 0)
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() - t0 == pytest.approx(3.0)
        assert forever.cancelled_at == pytest.approx(t0 + 3.0)
        assert app.times("lifespan.shutdown") == [pytest.approx(t0 + 3.0)]
        with pytest.raises(trio.BrokenResourceError):
            await client.send(b"x")  # the server closed its end


async def test_shutdown_requested_before_serving_returns_after_startup() -> None:
    app = LifespanApp()
    server = Server(app, make_config(lifespan="on"))
    server.shutdown()
    t0 = now()
    await server.serve(listeners=[MemoryListener()])
    assert now() == pytest.approx(t0)
    assert [w for _, w in app.events] == ["lifespan.startup", "lifespan.shutdown", "returned"]


async def test_a_server_serves_once() -> None:
    server = Server(hello_app, make_config())
    async with anyio.create_task_group() as nursery:
        await nursery.start(
            lambda task_status: server.serve(listeners=[MemoryListener()], task_status=task_status)
        )
        with pytest.raises(RuntimeError, match="already serving"):
            await server.serve(listeners=[MemoryListener()])
        server.shutdown()


# --- outer cancellation --------------------------------------------------------------------


async def test_outer_cancellation_returns_promptly_and_runs_lifespan_shutdown() -> None:
    forever = Forever()
    app = LifespanApp(forever)
    config = make_config(lifespan="on", timeout_graceful_shutdown=30.0)
    async with running(app, config) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        t0 = now()
        srv.cancel_scope.cancel()
        # No grace period: cancelling serve() from outside is an order to stop now.
        assert await srv.wait_stopped() == pytest.approx(t0)
        assert forever.cancelled_at == pytest.approx(t0)
        await client.expect_closed()
        # PEERS: Hypercorn skips lifespan shutdown when cancelled from outside.
        assert app.times("lifespan.shutdown") == [pytest.approx(t0)]
        assert app.times("returned") == [pytest.approx(t0)]
        assert srv.stats() == (0, 0, 1)


async def test_outer_cancellation_with_a_client_that_does_not_read() -> None:
    forever = Forever(stream_body=True)
    config = make_config(timeout_write=None)
    async with running(forever, config, receive_window=4096) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        await wait_all_tasks_blocked()
        t0 = now()
        srv.cancel_scope.cancel()
        assert await srv.wait_stopped() == pytest.approx(t0)
        assert forever.cancelled_at == pytest.approx(t0)


async def test_outer_cancellation_bounds_a_hanging_lifespan_shutdown() -> None:
    app = LifespanApp(on_shutdown=anyio.sleep_forever)
    config = make_config(lifespan="on", timeout_lifespan_shutdown=4.0)
    async with running(app, config) as srv:
        client = await srv.connect()
        await client.request()
        assert (await client.response()).status == 200
        t0 = now()
        srv.cancel_scope.cancel()
        # Shielded so the app can clean up, but never for longer than the timeout.
        assert await srv.wait_stopped() - t0 == pytest.approx(4.0)
        assert app.times("lifespan.shutdown") == [pytest.approx(t0)]
        assert app.times("cancelled") == [pytest.approx(t0 + 4.0)]


async def test_graceful_shutdown_bounds_a_hanging_lifespan_shutdown() -> None:
    app = LifespanApp(on_shutdown=anyio.sleep_forever)
    config = make_config(lifespan="on", timeout_lifespan_shutdown=4.0)
    async with running(app, config) as srv:
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() - t0 == pytest.approx(4.0)
        assert app.times("cancelled") == [pytest.approx(t0 + 4.0)]


async def test_outer_cancellation_while_an_error_reply_lingers() -> None:
    # A 400 makes the server half-close and drain for a moment (so the reply is not
    # lost to a reset); that drain must not hold up cancellation for long.
    async with running(hello_app, make_config()) as srv:
        client = await srv.connect()
        await client.send(b"NOT HTTP\r\n\r\n")
        assert (await client.response()).status == 400

        async def keep_sending() -> None:
            while True:
                await client.send(b"x")
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(keep_sending)
            await anyio.sleep(0.05)
            t0 = now()
            srv.cancel_scope.cancel()
            stopped = await srv.wait_stopped()
            nursery.cancel_scope.cancel()
        assert stopped - t0 <= 1.0


async def test_shutdown_waits_for_a_half_sent_request_head_only_for_the_grace() -> None:
    # A connection between requests (here: half a head, nothing for the app yet) is
    # not a request in flight: it gets the request grace, not the head deadline or
    # the whole grace period.
    config = make_config(timeout_request_head=8.0, timeout_graceful_shutdown=20.0)
    async with running(hello_app, config) as srv:
        client = await srv.connect()
        await client.send(b"GET /slow HTTP/1.1\r\nHo")
        await wait_all_tasks_blocked()
        t0 = now()
        srv.server.shutdown()
        assert await srv.wait_stopped() == pytest.approx(t0 + SHUTDOWN_REQUEST_GRACE)
        assert await client.read_until_eof() in (b"",)


async def test_a_head_completed_during_the_grace_is_served() -> None:
    async with running(hello_app, make_config(timeout_request_head=8.0)) as srv:
        client = await srv.connect()
        await client.send(b"GET / HTTP/1.1\r\nHo")
        await wait_all_tasks_blocked()
        srv.server.shutdown()
        await wait_all_tasks_blocked()  # the drain has begun
        await client.send(b"st: x\r\n\r\n")
        response = await client.response()
        assert (response.status, response.closes) == (200, True)
        await srv.wait_stopped()


async def test_outer_cancellation_during_the_grace_period() -> None:
    forever = Forever()
    app = LifespanApp(forever)
    config = make_config(lifespan="on", timeout_graceful_shutdown=30.0)
    async with running(app, config) as srv:
        client = await srv.connect()
        await client.request()
        await forever.entered.wait()
        t0 = now()
        srv.server.shutdown()
        await anyio.sleep(2.0)
        assert not srv.stopped.is_set()
        srv.cancel_scope.cancel()  # impatient caller: stop now
        assert await srv.wait_stopped() - t0 == pytest.approx(2.0)
        assert forever.cancelled_at == pytest.approx(t0 + 2.0)
        assert app.times("lifespan.shutdown") == [pytest.approx(t0 + 2.0)]


async def test_outer_cancellation_during_lifespan_startup() -> None:
    # The lifespan call is shielded so that shutdown can still be sent after an outer
    # cancellation; the shield must not keep a startup that never ends alive.
    async def hang(scope: Scope) -> None:
        await anyio.sleep_forever()

    app = LifespanApp(on_startup=hang)
    config = make_config(lifespan="on", timeout_lifespan_startup=None)
    with anyio.fail_after(HANG), anyio.CancelScope() as scope:
        scope.deadline = now() + 2.0
        await trio_asgi.serve(app, config, listeners=[MemoryListener()])
    assert scope.cancelled_caught
    assert now() == pytest.approx(2.0)
    assert app.times("cancelled") == [pytest.approx(2.0)]
    assert app.times("lifespan.shutdown") == []


async def test_outer_cancellation_does_not_wait_for_a_lingering_connection() -> None:
    # Regression: after an error reply the connection lingers (half-close, read for up to
    # a second) so the client can read the reply; that linger was shielded, so cancelling
    # serve() from outside waited for it.
    from trio_asgi.testing._memory import MemoryListener

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a malformed request never reaches the app")

    listener = MemoryListener()
    config = trio_asgi.Config(lifespan="off", access_log=False)
    with anyio.CancelScope() as outer:
        async with anyio.create_task_group() as nursery:
            await nursery.start(
                functools.partial(trio_asgi.serve, app, config, listeners=[listener])
            )
            client = await listener.connect()
            await client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01\r\n\r\n")
            reply = await client.receive_some()
            assert reply.startswith(b"HTTP/1.1 400 ")
            await wait_all_tasks_blocked()  # the server is now lingering
            cancelled_at = anyio.current_time()
            outer.cancel()
    assert anyio.current_time() == cancelled_at
