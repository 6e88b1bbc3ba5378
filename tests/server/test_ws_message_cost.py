"""What one echoed WebSocket message costs the scheduler, so that a regression fails a test.

The echo path (a text message read by the session's reader, handed to the app's
``receive()``, echoed with ``send()``) must not grow an await that checkpoints, a
task or a timer per message: each would be a scheduler trip of a few microseconds,
and the ``ws_50`` benchmark would only show it later and noisily. trio's
:class:`trio.abc.Instrument` counts how often the server's tasks (the connection,
the session's reader and the app) are scheduled, and every task spawned, while a
real client on a loopback socket sends messages one after another, each after the
previous echo came back.

The floor with a reader task is two trips per message: the reader wakes when the
frame arrives, and the app wakes when the reader hands it the message (the app's
echo is written at once, without a trip). Measured when this test was written:
2.11 per message, no task: the 0.11 is the trio transport's late poll (one pass
let go by before every ninth wait for the socket, see ``_trio_transport.py``).
One checkpoint more per message makes it 3.1.
"""

from __future__ import annotations

import anyio
import anyio.abc
import trio

from tests.server.ws_helpers import masked, upgrade_request
from trio_asgi import Config
from trio_asgi._server._connection import HTTPConnection
from trio_asgi._server._state import ServerState
from trio_asgi._types import Receive, Scope, Send

PAYLOAD = b"0123456789abcdef" * 2
FRAME = masked(0x1, PAYLOAD)
ECHO = bytes((0x81, len(PAYLOAD))) + PAYLOAD
WARM_UP = 20
MESSAGES = 200


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message["text"]})


class ServerTrips(trio.abc.Instrument):
    """Counts how often any task but the client's is scheduled, and every task spawned."""

    def __init__(self, client: trio.lowlevel.Task) -> None:
        self.client = client
        self.scheduled = 0
        self.spawned = 0

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if task is not self.client:
            self.scheduled += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def receive_exactly(stream: anyio.abc.ByteStream, expected: bytes) -> None:
    received = b""
    while len(received) < len(expected):
        received += await stream.receive()
    assert received == expected


async def test_an_echoed_message_costs_two_scheduler_trips_and_no_task() -> None:
    trips = ServerTrips(trio.lowlevel.current_task())
    state = ServerState(echo, Config(access_log=False, ws_ping_interval=None))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server_side = await listener.listeners[0].accept()  # type: ignore[attr-defined]
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(HTTPConnection(server_side, state).run)
                await client.send(upgrade_request())
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await client.receive()
                assert head.startswith(b"HTTP/1.1 101 "), head
                for sent in range(WARM_UP + MESSAGES):
                    if sent == WARM_UP:
                        trio.lowlevel.add_instrument(trips)
                    await client.send(FRAME)
                    await receive_exactly(client, ECHO)
                trio.lowlevel.remove_instrument(trips)
                await client.aclose()
    assert trips.spawned == 0
    assert trips.scheduled / MESSAGES <= 2.25, trips.scheduled / MESSAGES
