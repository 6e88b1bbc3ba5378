"""What one keep-alive request costs the scheduler, so that a regression fails a test.

The hot path (a ``hello`` GET on a kept-alive connection) must not grow an await
that checkpoints, a task or a timer: each would be a scheduler trip per request,
a few microseconds each, and the benchmarks would only show it later and noisily.
trio's :class:`trio.abc.Instrument` counts how often the connection's task is
scheduled and how many tasks are spawned while a real client on a loopback
socket sends requests one after another.

Measured when this test was written (trio fast path): 1.1 trips per request
(one wake-up when the request arrives, plus the fast path's checkpoint every
sixteen socket operations), no task. One more checkpoint per request makes it 2.1.
"""

from __future__ import annotations

import anyio
import anyio.abc
import trio

from trio_asgi import Config
from trio_asgi._server._connection import HTTPConnection
from trio_asgi._server._state import ServerState
from trio_asgi._types import Receive, Scope, Send

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
WARM_UP = 20
REQUESTS = 200


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"hi"})


class Trips(trio.abc.Instrument):
    """Counts how often ``task`` is scheduled, and every task spawned."""

    def __init__(self) -> None:
        self.task: trio.lowlevel.Task | None = None
        self.scheduled = 0
        self.spawned = 0

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.scheduled += 1

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


async def test_a_keep_alive_request_costs_about_one_scheduler_trip_and_no_task() -> None:
    trips = Trips()
    state = ServerState(hello, Config(access_log=False))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        client = await anyio.connect_tcp("127.0.0.1", port)
        server_side = await listener.listeners[0].accept()  # type: ignore[attr-defined]

        async def serve() -> None:
            trips.task = trio.lowlevel.current_task()
            await HTTPConnection(server_side, state).run()

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                for sent in range(WARM_UP + REQUESTS):
                    if sent == WARM_UP:
                        trio.lowlevel.add_instrument(trips)
                    await client.send(GET)
                    received = b""
                    while not received.endswith(b"\r\n\r\nhi"):
                        received += await client.receive()
                trio.lowlevel.remove_instrument(trips)
                await client.aclose()
    assert trips.spawned == 0
    assert trips.scheduled / REQUESTS <= 1.25, trips.scheduled / REQUESTS
