"""The WebSocket limits over HTTP/2 (RFC 8441), in virtual time on both loops.

``ws_max_queue_bytes`` bounds what a WebSocket on a stream holds for its app (a client
that floods an echo app and never reads finds its window shut), and the server's
pings end a silent WebSocket with 1011 at ``ws_ping_interval + ws_ping_timeout``. The
client (h2 + wsproto, ``h2_ws_client``) talks to the real server over an in-memory
connection; time jumps whenever every task waits, so "nothing more happens" is seen
at once.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from h2.errors import ErrorCodes
from memory_helpers import make_config, now, respond, running

from tests.server.h2_ws_client import H2WSClient, open_memory_h2_ws

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

#: Virtual seconds of silence after which the server counts as settled.
SETTLE = 1.0


async def settle(client: H2WSClient) -> None:
    """Handle what the server sends until it sends nothing more (every task waits)."""
    while True:
        with anyio.move_on_after(SETTLE):
            assert await client.pump(), "the server closed the connection"
            continue
        return


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await respond(send)
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "bytes": message["bytes"]})


async def test_ws_max_queue_bytes_bounds_a_flooding_client_that_never_reads() -> None:
    size, queue_bytes, window = 8000, 200_000, 65535
    config = make_config(
        ws_max_size=10_000,
        ws_max_queue=1000,  # the bytes bound, not the count, is the one that binds
        ws_max_queue_bytes=queue_bytes,
        timeout_write=None,
        timeout_keep_alive=None,
        ws_ping_interval=None,  # a ping queued behind the stalled echo would stop the reader
    )
    async with running(echo_app, config) as srv:
        client = await open_memory_h2_ws((await srv.connect()).stream)
        sid = await client.open()
        ws = client.streams[sid]
        ws.starved = True  # the client reads none of the echoes: the server's sends stall
        await settle(client)
        assert ws.status == b"200"
        sent, bound = 0, queue_bytes + 2 * window + 2 * size
        while client.conn.local_flow_control_window(sid) >= size + 14 and sent <= bound:
            await client.send_message(sid, b"m" * size)
            sent += size
            await settle(client)
        # The window stays shut: the server holds what it took and reads no more.
        await settle(client)
        assert client.conn.local_flow_control_window(sid) < size + 14
        # Held for the app: up to ws_max_queue_bytes queued, one message being read,
        # one being echoed; unread in the stream: its window; echoed: the client's window.
        assert queue_bytes <= sent <= bound
        assert ws.reset is None  # stalled, not failed
        await client.stream.aclose()


async def test_a_silent_websocket_is_closed_1011_at_the_ping_timeout() -> None:
    got: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await respond(send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())

    config = make_config(ws_ping_interval=5.0, ws_ping_timeout=3.0, timeout_keep_alive=None)
    async with running(app, config) as srv:
        client = await open_memory_h2_ws((await srv.connect()).stream)
        sid = await client.open()
        ws = client.streams[sid]
        await client.until(lambda: ws.status == b"200")
        t0 = now()
        await client.until(lambda: bool(ws.received))
        assert ws.received[0][0] == "ping"  # never answered
        assert now() == pytest.approx(t0 + 5.0)
        await client.until(lambda: ws.reset is not None)
        assert now() == pytest.approx(t0 + 8.0)
        assert ws.received[1:] == [("close", 1011)]
        assert ws.reset == ErrorCodes.CANCEL  # a peer that does not pong gets no close wait
        other = await client.get(b"/plain")  # the connection carries on
        await client.until(lambda: client.streams[other].ended)
        assert client.streams[other].status == b"200"
        await client.stream.aclose()
    reason = "keepalive ping timeout"
    assert got == [{"type": "websocket.disconnect", "code": 1011, "reason": reason}]


async def test_accept_returns_once_the_200_headers_are_handed_to_the_socket() -> None:
    accepted = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal accepted
        if scope["type"] == "http":
            await respond(send, body=b"b" * 60_000)  # fills the client's unread pipe
            return
        await receive()
        await send({"type": "websocket.accept"})
        accepted = True
        await send({"type": "websocket.send", "text": "hi"})
        await receive()

    config = make_config(timeout_write=None, timeout_keep_alive=None, ws_ping_interval=None)
    async with running(app, config, receive_window=4096) as srv:
        client = await open_memory_h2_ws((await srv.connect()).stream)
        await client.get(b"/big")  # not read yet: the server's writer waits on the pipe
        await anyio.wait_all_tasks_blocked()
        sid = await client.open()
        await anyio.wait_all_tasks_blocked()
        assert not accepted  # its 200 is queued behind the big response, not yet written
        await client.until(lambda: client.streams[sid].received == ["hi"])
        assert accepted
        assert client.streams[sid].status == b"200"
        await client.stream.aclose()
