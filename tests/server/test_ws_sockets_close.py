"""WebSocket over real TCP sockets on 127.0.0.1: close codes and reasons both ways,
racing writes, shutdown, statistics, access logs, and interoperability with the
``websockets`` library (on asyncio in a worker thread, permessage-deflate included).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
import websockets.asyncio.client
from websockets.typing import Subprotocol
from ws_helpers import (
    TIMEOUT,
    EchoApp,
    error_records,
)
from wsproto.events import CloseConnection, Pong, TextMessage

from trio_asgi import ASGIProtocolError, ClientDisconnected, Server
from trio_asgi._types import Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


# --- closing ------------------------------------------------------------------------------------


async def test_app_close_code_and_reason_reach_the_client(run_server, ws_connect):
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4321, "reason": "gone fishing ✓"})
        seen.append(await receive())

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert await client.expect_close() == (4321, "gone fishing ✓")
            await client.expect_eof()
    assert seen[0]["type"] == "websocket.disconnect"


async def test_client_close_code_and_reason_reach_the_app(run_server, ws_connect):
    # Hypercorn-trio reported a clean close as 1006, losing the code and the reason.
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.close(4000, "bye ✓")
            assert await client.expect_close() == (4000, "")  # the answer echoes the code
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {"type": "websocket.disconnect", "code": 4000, "reason": "bye ✓"}


async def test_client_close_without_a_code_is_1005(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.close(None)
            assert await client.expect_close() == (1005, "")  # answered without a code too
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {"type": "websocket.disconnect", "code": 1005, "reason": ""}


async def test_tcp_drop_without_close_is_1006(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send_text("one")
            assert await client.receive_message() == "one"
            await client.aclose()
            await app.done.wait()
    assert app.disconnect == {"type": "websocket.disconnect", "code": 1006, "reason": ""}


async def test_app_returning_without_close_closes_1000(run_server, ws_connect):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "last words"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert await client.receive_message() == "last words"
            assert await client.expect_close() == (1000, "")
            await client.expect_eof()


async def test_app_raising_before_accept_is_http_500(run_server, ws_connect, caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        raise RuntimeError("boom before accept")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert client.answer.status == 500
            await client.expect_eof()
        gc.collect()  # an unclosed anyio memory stream warns when collected (a fixed bug)
    [record] = error_records(caplog)
    assert record.name == "trio_asgi"
    assert record.exc_info is not None
    assert "boom before accept" in str(record.exc_info[1])


async def test_app_raising_after_accept_closes_1011(run_server, ws_connect, caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        raise RuntimeError("boom after accept")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send_text("trigger")
            assert await client.expect_close() == (1011, "")
            await client.expect_eof()
    [record] = error_records(caplog)
    assert record.exc_info is not None
    assert "boom after accept" in str(record.exc_info[1])


async def test_send_after_client_close_raises_an_oserror_that_may_escape_quietly(
    run_server, ws_connect, caplog
):
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except BaseException as exc:
            raised.append(exc)
            raise  # escapes the app: the server must not log it as an error

    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.close(1001, "leaving")
            assert await client.expect_close() == (1001, "")
            await client.expect_eof()
    [exc] = raised
    assert isinstance(exc, ClientDisconnected)
    assert isinstance(exc, OSError)
    assert error_records(caplog) == []


async def test_send_after_the_app_closed_raises_client_disconnected(run_server, ws_connect):
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})
        for message in ({"type": "websocket.send", "bytes": b"x"}, {"type": "websocket.close"}):
            try:
                await send(message)
            except OSError as exc:
                raised.append(exc)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert await client.expect_close() == (1000, "")
            await client.expect_eof()
    assert [type(exc) for exc in raised] == [ClientDisconnected, ClientDisconnected]


INVALID_ORDER: dict[str, tuple[list[Message], list[Message]]] = {
    "send before accept": ([], [{"type": "websocket.send", "text": "x"}]),
    "response body before start": ([], [{"type": "websocket.http.response.body", "body": b""}]),
    "accept twice": ([{"type": "websocket.accept"}], [{"type": "websocket.accept"}]),
    "response start after accept": (
        [{"type": "websocket.accept"}],
        [{"type": "websocket.http.response.start", "status": 403, "headers": []}],
    ),
    "http message type": ([], [{"type": "http.response.start", "status": 200}]),
    "send without data": ([{"type": "websocket.accept"}], [{"type": "websocket.send"}]),
}


@pytest.mark.parametrize(("before", "invalid"), INVALID_ORDER.values(), ids=INVALID_ORDER.keys())
async def test_invalid_message_order_raises_from_send(run_server, ws_connect, before, invalid):
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        for message in before:
            await send(message)
        try:
            await send(invalid[0])
        except ASGIProtocolError as exc:
            raised.append(exc)
        await send({"type": "websocket.close", "code": 4000})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            if before:
                assert await client.expect_close() == (4000, "")
            else:
                assert client.answer.status == 403  # the handshake is still the app's to answer
            await client.expect_eof()
    assert len(raised) == 1


# --- racing writes, shutdown, statistics, logs --------------------------------------------------


async def test_app_sends_from_two_tasks_while_the_client_pings(run_server, ws_connect):
    # Peers raised BusyResourceError when an app send, a pong and a close raced on one stream.
    count = 200

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def sender(name: str) -> None:
            for i in range(count):
                await send({"type": "websocket.send", "text": f"{name}{i}" + "." * 2000})

        async with anyio.create_task_group() as nursery:
            nursery.start_soon(sender, "a")
            nursery.start_soon(sender, "b")
        await send({"type": "websocket.close", "code": 4000, "reason": "all sent"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            for i in range(50):
                await client.ping(b"%d" % i)
            seen: dict[str, list[int]] = {"a": [], "b": []}
            pongs: list[bytes] = []
            text = ""  # wsproto hands over a frame in parts as its bytes arrive
            while True:
                event = await client.next_event()
                if isinstance(event, TextMessage):
                    text += event.data
                    if event.message_finished:
                        seen[text[0]].append(int(text[1:].rstrip(".")))
                        text = ""
                elif isinstance(event, Pong):
                    pongs.append(event.payload)
                else:
                    assert isinstance(event, CloseConnection), event
                    assert (event.code, event.reason) == (4000, "all sent")
                    break
            await client.send(event.response())
            await client.expect_eof()
    assert seen == {"a": list(range(count)), "b": list(range(count))}
    assert pongs == [b"%d" % i for i in range(50)]


async def test_shutdown_sends_1012_and_the_app_sees_it(run_server, ws_connect):
    # Peers left WebSockets hanging at shutdown: no close frame, no disconnect for the app.
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_graceful_shutdown=3.0) as server:
            client = await ws_connect(server)
            await client.send_text("hi")
            assert await client.receive_message() == "hi"
            assert server.statistics().requests_in_flight == 1
            assert server.statistics().open_connections == 1
            server.shutdown()
            assert await client.expect_close() == (1012, "server shutdown")
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1012,
        "reason": "server shutdown",
    }
    stats = server.statistics()
    assert (stats.open_connections, stats.requests_in_flight, stats.requests_served) == (0, 0, 1)


async def test_access_log_has_accept_and_close_lines(run_server, ws_connect, caplog):
    caplog.set_level(logging.INFO, logger="trio_asgi.access")
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, "/feed?x=1")
            await client.close(4000)
            assert await client.expect_close() == (4000, "")
            await client.expect_eof()
            await app.done.wait()
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert len(lines) == 2, lines
    assert lines[0].endswith('"GET /feed?x=1 HTTP/1.1" 101 WebSocket accept')
    assert lines[1].endswith('"GET /feed?x=1 HTTP/1.1" 4000 WebSocket close')
    assert lines[0].startswith("127.0.0.1:")


async def test_access_log_has_a_reject_line(run_server, ws_connect, caplog):
    caplog.set_level(logging.INFO, logger="trio_asgi.access")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, "/private")
            assert client.answer.status == 403
            await client.expect_eof()
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_asgi.access"]
    assert len(lines) == 1, lines
    assert lines[0].endswith('"GET /private HTTP/1.1" 403 WebSocket reject')


# --- interoperability with the websockets library -----------------------------------------------


def _run_websockets(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await coro_fn()

    return asyncio.run(main())


async def in_websockets_thread(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio coroutine function (a ``websockets`` client) in a worker thread."""
    return await anyio.to_thread.run_sync(_run_websockets, coro_fn)


async def closed_by_server(ws: websockets.asyncio.client.ClientConnection) -> tuple[int, str]:
    """Wait for the server's close frame (the client answers it); its code and reason."""
    await ws.wait_closed()
    received = ws.protocol.close_rcvd
    assert received is not None, "the connection ended without a close frame"
    return received.code, received.reason


def ws_url(server: Server, path: str = "/") -> str:
    return f"ws://{server.addresses[0]}{path}"


async def test_websockets_client_echo_with_compression_and_subprotocol(run_server):
    app = EchoApp(subprotocol="chat")

    async def client(url: str) -> tuple[Any, ...]:
        async with websockets.asyncio.client.connect(
            url, subprotocols=[Subprotocol("chat")], compression="deflate"
        ) as ws:
            await ws.send("hello " * 1000)
            text = await ws.recv()
            await ws.send(b"\x01\x02" * 5000)
            data = await ws.recv()
            extensions = [e.name for e in ws.protocol.extensions]
            return text, data, ws.subprotocol, extensions

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            url = ws_url(server)
            text, data, subprotocol, extensions = await in_websockets_thread(lambda: client(url))
            await app.done.wait()
    assert text == "hello " * 1000
    assert data == b"\x01\x02" * 5000
    assert subprotocol == "chat"
    assert extensions == ["permessage-deflate"]
    assert app.disconnect == {"type": "websocket.disconnect", "code": 1000, "reason": ""}


async def test_websockets_client_close_code_and_reason_both_ways(run_server):
    app = EchoApp()

    async def client_closes(url: str) -> None:
        async with websockets.asyncio.client.connect(url) as ws:
            await ws.close(4001, "client says bye")

    async def server_closes(url: str) -> tuple[int, str]:
        async with websockets.asyncio.client.connect(url) as ws:
            await ws.send("please close")
            return await closed_by_server(ws)

    async def closing_app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await send({"type": "websocket.close", "code": 4002, "reason": "server says bye"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            url = ws_url(server)
            await in_websockets_thread(lambda: client_closes(url))
            await app.done.wait()
        async with run_server(closing_app) as server:
            url = ws_url(server)
            assert await in_websockets_thread(lambda: server_closes(url)) == (
                4002,
                "server says bye",
            )
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 4001,
        "reason": "client says bye",
    }


async def test_websockets_client_compression_bomb_closes_1009(run_server):
    app = EchoApp()

    async def client(url: str) -> tuple[int, str]:
        async with websockets.asyncio.client.connect(
            url, compression="deflate", max_size=None
        ) as ws:
            await ws.send(bytes(16 * 1024 * 1024))  # compresses to ~16 KiB
            return await closed_by_server(ws)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws_max_size=1024 * 1024) as server:
            url = ws_url(server)
            assert await in_websockets_thread(lambda: client(url)) == (1009, "message too big")
            await app.done.wait()
    assert app.disconnect["code"] == 1009


async def test_websockets_client_sees_1012_at_shutdown(run_server):
    app = EchoApp()
    connected = anyio.Event()
    token = anyio.lowlevel.current_token()

    async def client(url: str) -> tuple[int, str]:
        async with websockets.asyncio.client.connect(url) as ws:
            anyio.from_thread.run_sync(connected.set, token=token)
            return await closed_by_server(ws)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            url = ws_url(server)
            async with anyio.create_task_group() as nursery:
                results: list[tuple[int, str]] = []

                async def run_client() -> None:
                    results.append(await in_websockets_thread(lambda: client(url)))

                nursery.start_soon(run_client)
                await connected.wait()
                server.shutdown()
    assert results == [(1012, "server shutdown")]
    assert app.disconnect["code"] == 1012
