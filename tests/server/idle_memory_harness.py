"""What an idle connection costs the server, measured in-process (the idle-memory tests).

A real server, and a client in a subprocess (so none of the client's objects are
counted) that runs ``script``: it opens ``count`` connections to the port given as its
first argument, makes one request on each, prints ``ready`` and keeps them open until
its stdin closes. Once every server task waits again, the traced memory grown since
before the connections, divided by their number, is the cost of one.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import anyio
import anyio.abc

from trio_asgi import Server


async def idle_cost(server: Server, script: str, count: int) -> float:
    """Traced bytes per idle connection held by ``script``, after a warm-up of ten."""
    # Warm up: whatever a server makes once, on its first connections.
    await release(await hold_connections(server, script, 10), server)
    tracemalloc.start()
    try:
        before = traced()
        client = await hold_connections(server, script, count)
        per_connection = (traced() - before) / count
    finally:
        tracemalloc.stop()
    await release(client, server)
    return per_connection


async def hold_connections(server: Server, script: str, count: int) -> anyio.abc.Process:
    """A client process holding ``count`` idle connections, each used once."""
    port = server.addresses[0].rsplit(":", 1)[1]
    client = await anyio.open_process([sys.executable, "-c", script, port, str(count)])
    assert client.stdout is not None
    line = b""
    while not line.endswith(b"\n"):
        line += await client.stdout.receive()
    assert line == b"ready\n"
    # Every connection answered; once every task waits, each server task sits in its
    # idle read.
    while server.statistics().open_connections < count:  # pragma: no cover - a race
        await anyio.wait_all_tasks_blocked()
    await anyio.wait_all_tasks_blocked()
    return client


async def release(client: anyio.abc.Process, server: Server) -> None:
    assert client.stdin is not None
    await client.stdin.aclose()
    await client.wait()
    # Until the server closed them all: one that closed during the measurement would
    # make it look smaller. The count moves when each task ends; nothing to await.
    while server.statistics().open_connections:  # noqa: ASYNC110
        await anyio.sleep(0.01)


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]
