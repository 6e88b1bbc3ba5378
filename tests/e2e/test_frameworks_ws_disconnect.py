"""A Starlette WebSocket app that sends to a client who left: the client leaving, not an error.

Regression: Starlette turns our ClientDisconnected into its own WebSocketDisconnect,
raised while handling ours; an app that does not catch it got an ERROR log line with a
traceback for every client that went away. Runs on trio and on asyncio.
"""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
import pytest
from frameworks_helpers import serve_app
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

pytestmark = pytest.mark.anyio


async def test_sending_to_a_departed_websocket_client_is_not_an_app_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client_left = anyio.Event()
    app_done = anyio.Event()

    async def talk(websocket: WebSocket) -> None:
        await websocket.accept()
        await client_left.wait()
        try:
            for _ in range(100):  # the first sends may still reach the socket buffer
                await websocket.send_text("anyone there?")
                await anyio.lowlevel.checkpoint()
        finally:
            app_done.set()

    app = Starlette(routes=[WebSocketRoute("/ws", talk)])
    caplog.set_level(logging.INFO, logger="trio_asgi")
    async with serve_app(app, lifespan="off") as live:
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await stream.receive()).startswith(b"HTTP/1.1 101 ")
        await stream.aclose()  # gone, without a close frame
        client_left.set()
        await app_done.wait()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
