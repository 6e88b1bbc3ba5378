"""``Server.statistics()`` counts what the metrics show: requests by method and status
class, bytes, connections closed by reason, timeouts, protocol errors, WebSocket
sessions and close codes, lifespan state. In memory, under the virtual clock."""

from __future__ import annotations

from typing import Any

import trio
from trio.testing import MockClock

from trio_asgi.testing import open_test_server


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * len(body)})


async def test_counts_by_kind(autojump_clock: MockClock) -> None:
    async with open_test_server(app, timeout_keep_alive=5, lifespan="on") as server:
        assert server.statistics().lifespan == "started"
        first = await server.connect()
        assert (await first.request("POST", "/", body=b"abcd")).status == 200
        assert (await first.request("GET", "/missing")).status == 404
        assert (await first.request("BREW", "/")).status == 200
        await first.send_eof()
        await first.expect_closed()
        idle = await server.connect()
        await idle.request("GET", "/")
        await trio.sleep(6)  # virtual time: past the keep-alive timeout
        await idle.expect_closed()
        bad = await server.connect()
        await bad.send(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        assert (await bad.read_response()).status == 400
        ws_conn = await server.connect()
        websocket = await ws_conn.websocket("/")
        assert await websocket.close(1001) == (1001, "")
        stats = server.statistics()
        left_idle = await server.connect()
        # Idle past the shutdown's grace for a request on its way: the shutdown closes it
        # (virtual time; before the toolkit drops its clients on leaving the block).
        await trio.sleep(2)
        server.shutdown()
        await left_idle.expect_closed()
    final = server.statistics()
    assert stats.requests == {
        ("POST", "2xx"): 1,
        ("GET", "4xx"): 1,
        ("OTHER", "2xx"): 1,
        ("GET", "2xx"): 1,
    }
    assert stats.bytes_received == 4
    assert stats.protocol_errors == {400: 1}
    assert stats.timeouts == {"keep_alive": 1}
    assert stats.websocket_sessions == 1
    assert stats.websocket_closes == {1001: 1}
    assert stats.websocket_sessions_open == 0
    assert stats.request_duration is None  # histograms only with metrics_bind
    assert final.connections_opened == 5
    assert final.connections_closed == {
        "client_close": 1,
        "keep_alive_timeout": 1,
        "protocol_error": 1,
        "websocket": 1,
        "shutdown": 1,
    }
    assert final.lifespan == "stopped"
    assert final.open_connections == 0
