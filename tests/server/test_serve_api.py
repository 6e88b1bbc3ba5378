"""The library call: ``serve()``, the Server handle, graceful shutdown and lifespan."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from functools import partial
from typing import Any

import anyio
import pytest

from trio_asgi import LifespanFailure, Server, ServerStatistics, serve
from trio_asgi._server._connection import SHUTDOWN_REQUEST_GRACE

pytestmark = pytest.mark.anyio

TIMEOUT = 5
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def ok(send: Any, body: bytes = b"ok") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def hello_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await ok(send)


class HeldApp:
    """Holds each request until :attr:`release` is set; records what happens, in order."""

    def __init__(self) -> None:
        self.in_app = anyio.Event()
        self.release = anyio.Event()
        self.events: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        self.events.append("request")
        self.in_app.set()
        await self.release.wait()
        await ok(send, b"released")
        self.events.append("response sent")


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


# --- addresses and statistics ---------------------------------------------------------------


async def test_addresses_have_port_0_resolved(run_server, connect):
    binds = ["127.0.0.1:0", "127.0.0.1:0"] + (["[::1]:0"] if ipv6_available() else [])
    with anyio.fail_after(TIMEOUT):
        async with run_server(hello_app, bind=tuple(binds)) as server:
            assert len(server.addresses) == len(binds)
            assert len(set(server.addresses)) == len(binds)
            for address in server.addresses:
                host, _, port = address.rpartition(":")
                assert host in ("127.0.0.1", "[::1]")
                assert int(port) > 0
                client = await connect(address)
                await client.send(GET)
                assert (await client.read_response()).body == b"ok"


async def test_statistics_count_connections_and_requests(run_server, connect):
    app = HeldApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            assert server.statistics() == ServerStatistics(0, 0, 0)
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            during = server.statistics()
            app.release.set()
            await client.read_response()
            await client.send(GET)  # the app is released: this one goes straight through
            await client.read_response()
    assert during == ServerStatistics(open_connections=1, requests_in_flight=1, requests_served=0)
    # Counters move when the app call returns, which may be just after the client has
    # read the response: read them once serve() has returned.
    assert server.statistics() == ServerStatistics(0, 0, 2)


async def test_pre_bound_socket(server_config, connect):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(bind=("127.0.0.1:1",))  # ignored: the socket is used
            server = await nursery.start(partial(serve, hello_app, config, sockets=[sock]))
            assert server.addresses == (f"127.0.0.1:{port}",)
            client = await connect(f"127.0.0.1:{port}")
            await client.send(GET)
            assert (await client.read_response()).status == 200
            server.shutdown()
    sock.close()


# --- graceful shutdown ----------------------------------------------------------------------


async def test_shutdown_finishes_the_request_in_flight_with_connection_close(
    server_config, connect
):
    app = HeldApp()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            server = await nursery.start(serve, app, server_config())
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            server.shutdown()
            # All parties are tasks of this process now (the request was read whole),
            # so "all blocked" means the server has begun its shutdown.
            await anyio.wait_all_tasks_blocked()
            app.release.set()
            response = await client.read_response()
            await client.expect_eof()
        # Leaving the nursery means serve() returned.
    assert response.body == b"released"
    assert response.header(b"connection") == b"close"
    assert app.events == ["request", "response sent"]


async def test_shutdown_closes_idle_keep_alive_connections_after_the_grace(server_config, connect):
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(timeout_keep_alive=60)
            server = await nursery.start(serve, hello_app, config)
            client = await connect(server)
            await client.send(GET)
            response = await client.read_response()
            assert response.header(b"connection") is None
            # The request grace (the client may be sending its next request), not the
            # keep-alive timeout, not the grace period.
            with anyio.fail_after(SHUTDOWN_REQUEST_GRACE + 2):
                server.shutdown()
                await client.expect_eof()


async def test_shutdown_refuses_new_connections_on_every_address(server_config, connect):
    app = HeldApp()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(bind=("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"))
            server = await nursery.start(serve, app, config)
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            server.shutdown()
            await anyio.wait_all_tasks_blocked()
            for address in server.addresses:
                host, _, port = address.rpartition(":")
                with pytest.raises(OSError, match=r"connect|refused"):  # noqa: PT012
                    stream = await anyio.connect_tcp(host, int(port))
                    await stream.aclose()  # only reached if the test fails
            app.release.set()
            await client.read_response()


async def test_shutdown_is_idempotent_and_may_come_before_serving(server_config):
    server = Server(hello_app, server_config())
    server.shutdown()
    server.shutdown()
    with anyio.fail_after(TIMEOUT):
        await server.serve()
    assert server.statistics() == ServerStatistics(0, 0, 0)


async def test_graceful_shutdown_timeout_cancels_requests_that_do_not_finish(
    server_config, connect
):
    app = HeldApp()  # never released
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(timeout_graceful_shutdown=0.2)
            server = await nursery.start(serve, app, config)
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            server.shutdown()
            raw = await client.read_until_eof()
    # Cancelled before its response started: a 503 says why, and the connection closes.
    assert raw.startswith(b"HTTP/1.1 503 ")
    assert b"\r\nconnection: close\r\n" in raw.lower()
    assert app.events == ["request"]


# --- lifespan -------------------------------------------------------------------------------


async def test_requests_that_arrive_during_startup_wait_for_it(server_config, connect):
    events: list[str] = []
    startup_begun = anyio.Event()
    finish_startup = anyio.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            events.append("startup")
            startup_begun.set()
            await finish_startup.wait()
            scope["state"]["db"] = "connected"
            events.append("startup complete")
            await send({"type": "lifespan.startup.complete"})
            await receive()
            events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        events.append(f"request sees {scope['state']}")
        await ok(send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    server = Server(app, server_config(lifespan="on"))
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(partial(server.serve, sockets=[sock]))
            await startup_begun.wait()
            client = await connect(address)  # the kernel queues it; nobody accepts yet
            await client.send(GET)
            finish_startup.set()
            response = await client.read_response()
            server.shutdown()
    sock.close()
    assert response.status == 200
    assert events == [
        "startup",
        "startup complete",
        "request sees {'db': 'connected'}",
        "shutdown",
    ]


async def test_lifespan_shutdown_runs_after_connections_drained(server_config, connect):
    app = HeldApp()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            server = await nursery.start(serve, app, server_config(lifespan="on"))
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            server.shutdown()
            await anyio.wait_all_tasks_blocked()
            assert "lifespan.shutdown" not in app.events
            app.release.set()
            await client.read_response()
    assert app.events == [
        "lifespan.startup",
        "request",
        "response sent",
        "lifespan.shutdown",
    ]


async def test_lifespan_on_with_an_app_that_does_not_support_it(server_config):
    async def app(scope, receive, send):
        assert scope["type"] == "http", "no lifespan here"
        await ok(send)

    with anyio.fail_after(TIMEOUT), pytest.raises(LifespanFailure, match="does not support"):
        await serve(app, server_config(lifespan="on"))


@pytest.mark.parametrize("behaviour", ["raises", "returns", "returns-after-receive"])
async def test_lifespan_auto_goes_on_without_an_unsupporting_app(
    run_server, connect, caplog, behaviour
):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            if behaviour == "raises":
                raise RuntimeError("lifespan? never heard of it")
            if behaviour == "returns-after-receive":
                await receive()
            return
        await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, lifespan="auto") as server:
            client = await connect(server)
            await client.send(GET)
            assert (await client.read_response()).body == b"ok"
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


async def test_lifespan_off_never_calls_the_app_with_lifespan(run_server, connect):
    scopes: list[str] = []

    async def app(scope, receive, send):
        scopes.append(scope["type"])
        if scope["type"] == "http":
            await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, lifespan="off") as server:
            client = await connect(server)
            await client.send(GET)
            await client.read_response()
    assert scopes == ["http"]


async def test_lifespan_startup_failed_raises_with_the_message(server_config):
    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})

    for mode in ("on", "auto"):
        with (
            anyio.fail_after(TIMEOUT),
            pytest.raises(LifespanFailure, match="database unreachable"),
        ):
            await serve(app, server_config(lifespan=mode))


async def test_lifespan_startup_timeout(server_config):
    async def app(scope, receive, send):
        await anyio.sleep_forever()

    with anyio.fail_after(TIMEOUT), pytest.raises(LifespanFailure, match="timed out"):
        await serve(app, server_config(lifespan="on", timeout_lifespan_startup=0.05))


async def test_outer_cancellation_returns_promptly_and_runs_lifespan_shutdown(
    server_config, connect
):
    app = HeldApp()  # holds its request forever
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(lifespan="on", timeout_graceful_shutdown=60)
            server = await nursery.start(serve, app, config)
            client = await connect(server)
            await client.send(GET)
            await app.in_app.wait()
            started = anyio.current_time()
            nursery.cancel_scope.cancel()
        elapsed = anyio.current_time() - started
    assert elapsed < 1  # not the 60 s grace period
    assert app.events == ["lifespan.startup", "request", "lifespan.shutdown"]


async def test_cancelling_during_lifespan_startup_returns_promptly(server_config):
    entered = anyio.Event()

    async def app(scope, receive, send):
        await receive()
        entered.set()
        await anyio.sleep_forever()  # startup never completes

    config = server_config(lifespan="on", timeout_lifespan_startup=60)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(partial(serve, app, config))
            await entered.wait()
            nursery.cancel_scope.cancel()


async def test_shutdown_closes_a_connection_that_never_sent_a_byte(server_config, connect):
    app = HeldApp()
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(timeout_first_byte=60)
            server = await nursery.start(serve, app, config)
            busy = await connect(server)
            await busy.send(GET)
            await app.in_app.wait()  # so the silent client below is accepted after this one
            silent = await connect(server)
            await busy.send(GET)  # pipelined: proves the server is still reading connections
            app.release.set()
            await busy.read_response()
            await busy.read_response()
            server.shutdown()
            await silent.expect_eof()
            await busy.expect_eof()


async def test_shutdown_does_not_wait_for_a_half_received_head(server_config, connect):
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            config = server_config(timeout_request_head=60, timeout_graceful_shutdown=60)
            server = await nursery.start(serve, hello_app, config)
            client = await connect(server)
            await client.send(b"GET / HTTP/1.1\r\nHost: te")
            # The request grace; neither the head timeout nor the grace period.
            with anyio.fail_after(SHUTDOWN_REQUEST_GRACE + 2):
                server.shutdown()
                raw = await client.read_until_eof()
    # Either closed silently or answered with an error and closed; never served.
    assert raw == b"" or raw.startswith(b"HTTP/1.1 4")


async def test_fd_bind(server_config, connect):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    fd = sock.detach()  # the server owns the descriptor now
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            server = await nursery.start(serve, hello_app, server_config(bind=(f"fd://{fd}",)))
            assert server.addresses == (f"127.0.0.1:{port}",)
            client = await connect(server)
            await client.send(GET)
            assert (await client.read_response()).body == b"ok"
            server.shutdown()


async def test_unix_socket_replaces_a_stale_socket_file(server_config):
    directory = tempfile.mkdtemp(prefix="trio-asgi-")
    path = os.path.join(directory, "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # left behind, as by a server that crashed
    stale.close()
    try:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as nursery:
                config = server_config(bind=(f"unix:{path}",))
                server = await nursery.start(serve, hello_app, config)
                stream = await anyio.connect_unix(path)
                async with stream:
                    await stream.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    data = b""
                    async for chunk in stream:  # until end of stream
                        data += chunk
                server.shutdown()
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert data.endswith(b"ok")
    finally:
        shutil.rmtree(directory)


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_ipv6_scope(run_server, connect):
    scopes: list[Any] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, bind=("[::1]:0",)) as server:
            assert server.addresses[0].startswith("[::1]:")
            client = await connect(server)
            await client.send(GET)
            await client.read_response()
    port = int(server.addresses[0].rpartition(":")[2])
    assert list(scopes[0]["server"]) == ["::1", port]
    assert scopes[0]["client"][0] == "::1"
