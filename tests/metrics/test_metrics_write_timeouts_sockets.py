"""Write timeouts in the metrics over real sockets, on trio and asyncio (the fast-path
transports): an HTTP/1.1 client that stops reading, and an HTTP/2 stream whose window
the client never reopens (the stream is reset, its connection lives on)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from h2.settings import SettingCodes

from tests.server.test_http2_sockets import open_h2
from trio_asgi import ClientDisconnected, Config, Server, ServerStatistics, serve

pytestmark = pytest.mark.anyio

TIMEOUT = 20
WRITE_TIMEOUT = 0.3


@asynccontextmanager
async def running(app: Any, **options: Any) -> AsyncIterator[Server]:
    config = Config(bind=("127.0.0.1:0",), access_log=False, lifespan="off", **options)
    async with anyio.create_task_group() as group:
        server: Server = await group.start(serve, app, config)
        yield server
        server.shutdown()


async def statistics_when(server: Server, ready: Callable[[ServerStatistics], bool]) -> Any:
    """Poll the server's figures until ``ready`` (under the caller's deadline).

    A connection is counted once its handler has closed the socket and let go (after a
    linger that waits on the client, maybe): no event tells a client when that was.
    """
    while not ready(stats := server.statistics()):  # noqa: ASYNC110 - see above
        await anyio.sleep(0.01)
    return stats


async def test_a_client_that_stops_reading_is_a_write_timeout() -> None:
    failed = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:  # until the kernel's buffers are full and the write stalls
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        except ClientDisconnected:
            failed.set()

    with anyio.fail_after(TIMEOUT):
        async with running(app, timeout_write=WRITE_TIMEOUT) as server:
            host, _, port = server.addresses[0].rpartition(":")
            async with await anyio.connect_tcp(host, int(port)) as client:
                await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await failed.wait()  # and we never read
                stats = await statistics_when(server, lambda s: bool(s.connections_closed))
    assert stats.timeouts == {"write": 1}
    assert stats.connections_closed == {"write_timeout": 1}


async def test_an_http2_stream_without_window_is_a_write_timeout() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        size = 1 << 20 if scope["path"] == "/big" else 10
        try:
            await send({"type": "http.response.body", "body": b"x" * size})
        except ClientDisconnected:
            pass

    with anyio.fail_after(TIMEOUT):
        async with running(app, timeout_write=WRITE_TIMEOUT) as server:
            client = await open_h2(server)
            client.conn.increment_flow_control_window(1 << 24)  # the connection: plenty
            client.starved.add(1)  # never reopen /big's window
            big = await client.request(b"/big")
            await client.until(lambda: big in client.resets)
            during = server.statistics()
            small = await client.request(b"/small")  # the connection lives on
            await client.until(lambda: small in client.ended)
            await client.stream.aclose()
            after = await statistics_when(server, lambda s: bool(s.connections_closed))
    assert during.timeouts == {"write": 1}
    assert during.connections_closed == {}
    assert after.timeouts == {"write": 1}
    assert after.connections_closed == {"client_close": 1}


async def test_an_http2_client_that_stops_reading_is_a_write_timeout() -> None:
    failed = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": b"x" * (64 << 20)})
        except ClientDisconnected:
            failed.set()

    with anyio.fail_after(TIMEOUT):
        async with running(app, timeout_write=WRITE_TIMEOUT) as server:
            client = await open_h2(server)
            # Windows wide open: only the socket (the client not reading) holds it back.
            client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
            client.conn.increment_flow_control_window(2**31 - 1 - 65535)
            await client.request(b"/big")  # and we never read
            await failed.wait()
            stats = await statistics_when(server, lambda s: bool(s.connections_closed))
            await client.stream.aclose()
    assert stats.timeouts == {"write": 1}
    assert stats.connections_closed == {"write_timeout": 1}
