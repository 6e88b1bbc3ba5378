"""The WebSocket receive side is bounded in bytes, not messages (issue 12, point 5).

A client sends 16 MiB messages to an echo app and never reads the echoes. The
app's echo blocks (the client does not read), so the server must stop reading:
what it holds for the app (the queued messages, the message being read and the
echo being sent) stays within ``ws_max_queue_bytes`` (default: one
``ws_max_size``). Before, 32 queued messages of 16 MiB took the server from 32
to 608 MiB. Memory is measured in-process with :mod:`tracemalloc` (the client's
one prepared frame is made before tracing starts), over real sockets, once every
task is blocked: the client in its send, the server with reading stopped.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

import anyio
import pytest

from trio_asgi._types import Receive, Scope, Send
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

MiB = 1024 * 1024
MESSAGE = 16 * MiB
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def masked_binary_frame(payload: bytes) -> bytes:
    """A client frame (masked, key 0: the payload goes as it is)."""
    return b"\x82\xff" + len(payload).to_bytes(8, "big") + b"\x00\x00\x00\x00" + payload


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "bytes": message["bytes"]})


async def never_reads(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await anyio.sleep_forever()


async def flood_until_blocked(
    server: Any, connect: Any, messages: int, size: int = MESSAGE
) -> tuple[int, int]:
    """Send ``messages`` frames without reading; (traced peak, frames sent) once stuck."""
    frame = masked_binary_frame(os.urandom(1024) * (size // 1024))
    client = await connect(server)
    await client.send(HANDSHAKE)
    await client.read_until(b"\r\n\r\n")
    sent = 0
    tracemalloc.start()
    try:
        async with anyio.create_task_group() as nursery:

            async def flood() -> None:
                nonlocal sent
                for _ in range(messages):
                    await client.stream.send(frame)
                    sent += 1

            nursery.start_soon(flood)
            await wait_all_tasks_blocked()
            peak = tracemalloc.get_traced_memory()[1]
            nursery.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    return peak, sent


async def test_an_echo_to_a_client_that_never_reads_keeps_memory_bounded(
    run_server: Any, connect: Any
) -> None:
    with anyio.fail_after(60):
        async with run_server(echo, ws_ping_interval=None) as server:
            peak, sent = await flood_until_blocked(server, connect, messages=8)
    assert sent < 8  # the server stopped reading: the client's sends block
    assert peak < 64 * MiB, f"{peak / MiB:.1f} MiB"


@pytest.mark.parametrize(("bound", "most"), [(None, 20 * MiB), (MiB, 4 * MiB)])
async def test_an_app_that_never_reads_holds_the_byte_bound(
    run_server: Any, connect: Any, bound: int | None, most: int
) -> None:
    # 1 MiB messages: the 32-message queue alone would take 32 MiB; the byte bound
    # (default 16 MiB) stops the reader first, plus about one read in flight.
    options = {"ws_max_queue_bytes": bound} if bound else {}
    with anyio.fail_after(60):
        async with run_server(never_reads, ws_ping_interval=None, **options) as server:
            peak, sent = await flood_until_blocked(server, connect, messages=40, size=MiB)
    assert sent < 40
    assert peak < most, f"{peak / MiB:.1f} MiB"
