"""The HTTP/2 writer's task lives while a stream is open, and an idle connection keeps none.

An idle connection's writer task, with its events and cancel scope, was about
3.5 KiB on trio and 7 KiB on asyncio (``test_idle_memory_http2.py``). Over a real
socket with the ``h2`` library as the client: after the handshake no writer task
runs; a request in progress has exactly one; once it is answered there is none
again, and the next request on the same connection is served all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from tests.server.test_http2_sockets import open_h2
from trio_asgi._server._http2_writer import WRITER_TASK

pytestmark = pytest.mark.anyio

TIMEOUT = 10


async def writer_tasks() -> int:
    """How many HTTP/2 writer tasks run, once every task waits."""
    await anyio.wait_all_tasks_blocked()
    return sum(task.name == WRITER_TASK for task in anyio.get_running_tasks())


async def test_the_writer_task_runs_only_while_a_stream_is_open(
    run_server: Callable[..., Any],
) -> None:
    started = anyio.Event()
    release = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/hold":
            started.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2(server)
            await client.pump()  # our SETTINGS arrived: the handshake is done
            assert await writer_tasks() == 0
            held = await client.request(b"/hold")
            await started.wait()
            assert await writer_tasks() == 1
            release.set()
            await client.until(lambda: held in client.ended)
            assert await writer_tasks() == 0
            # The next request starts a writer again and is answered.
            again = await client.request(b"/again")
            await client.until(lambda: again in client.ended)
            assert await writer_tasks() == 0
            # Two streams at once still share one writer.
            first = await client.request(b"/one")
            second = await client.request(b"/two")
            await client.until(lambda: {first, second} <= client.ended)
            await client.stream.aclose()
    assert client.bodies[held] == b"/hold"
    assert client.bodies[again] == b"/again"
    assert (client.bodies[first], client.bodies[second]) == (b"/one", b"/two")
