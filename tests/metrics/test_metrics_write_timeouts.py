"""A client that stops reading is cut off by ``timeout_write``, and the metrics say so:
``timeouts{kind="write"}`` and ``connections_closed{reason="write_timeout"}``, not a
``client_close`` (the client never closed anything). In memory under the virtual clock
(the generic transport): HTTP/1.1 bodies and files, and WebSocket messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from trio_asgi import ClientDisconnected
from trio_asgi.testing import open_test_server

#: Far more than the client's window, so the write stalls.
BIG = 200_000


class StalledSender:
    """An app that sends one big body (or file) and notes how its send ended."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self.failed = trio.Event()
        self.error: BaseException | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            if self.file is None:
                await send({"type": "http.response.body", "body": b"x" * BIG})
            else:
                await send({"type": "http.response.pathsend", "path": str(self.file)})
        except ClientDisconnected as exc:
            self.error = exc
            self.failed.set()


async def stall_one_response(app: StalledSender) -> dict[str, Any]:
    async with open_test_server(app, timeout_write=2.0, timeout_keep_alive=60) as server:
        client = await server.connect()
        client.set_receive_window(1024)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        before = trio.current_time()
        await app.failed.wait()  # and we never read
        waited = trio.current_time() - before
        await client.read_until_eof()
        await wait_all_tasks_blocked()
        stats = server.statistics()
    return {
        "waited": waited,
        "timeouts": stats.timeouts,
        "closed": stats.connections_closed,
        "open": stats.open_connections,
    }


async def test_a_stalled_body_is_a_write_timeout(autojump_clock: MockClock) -> None:
    found = await stall_one_response(StalledSender())
    assert 2.0 <= found["waited"] < 3.0
    assert found["timeouts"] == {"write": 1}
    assert found["closed"] == {"write_timeout": 1}
    assert found["open"] == 0


async def test_a_stalled_file_is_a_write_timeout(autojump_clock: MockClock, tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(os.urandom(BIG))
    found = await stall_one_response(StalledSender(path))
    assert found["timeouts"] == {"write": 1}
    assert found["closed"] == {"write_timeout": 1}


async def test_a_client_that_leaves_is_still_a_client_close(autojump_clock: MockClock) -> None:
    """The contrast: a peer that is gone is not a timeout."""
    app = StalledSender()
    async with open_test_server(app, timeout_write=2.0) as server:
        client = await server.connect()
        client.set_receive_window(1024)
        await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_all_tasks_blocked()
        await client.close()
        await app.failed.wait()
        await wait_all_tasks_blocked()
        stats = server.statistics()
    assert stats.timeouts == {}
    assert stats.connections_closed == {"client_close": 1}


async def test_a_stalled_websocket_is_a_write_timeout(autojump_clock: MockClock) -> None:
    ended = trio.Event()
    outcome: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"x" * 65536})
        except ClientDisconnected:
            outcome.append(await receive())
            ended.set()

    async with open_test_server(app, timeout_write=2.0, ws_ping_interval=None) as server:
        client = await server.connect()
        await client.websocket("/")
        client.set_receive_window(1024)  # and we never read again
        await ended.wait()
        await client.read_until_eof()
        await wait_all_tasks_blocked()
        stats = server.statistics()
    assert outcome[0]["type"] == "websocket.disconnect"
    assert stats.timeouts == {"write": 1}
    assert stats.connections_closed == {"write_timeout": 1}
    assert stats.websocket_closes == {1006: 1}
