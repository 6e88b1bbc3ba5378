"""Drive an embedded server: your own socket, statistics, a shutdown started by another
task, and what cancelling the server does.

Run it with ``python embed_control.py`` (``pip install httpx``).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import trio

import trio_asgi

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class Controls:
    """Events the app and the program share (a real program might use an admin endpoint)."""

    def __init__(self) -> None:
        self.slow_started = trio.Event()
        self.release = trio.Event()
        self.stop = trio.Event()


def make_app(controls: Controls) -> App:
    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown: sent once the last connection is closed
            print("lifespan shutdown ran")
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/slow":
            controls.slow_started.set()
            await controls.release.wait()
        elif scope["path"] == "/stop":
            controls.stop.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"done: {scope['path']}".encode()})

    return app


async def stop_when_asked(server: trio_asgi.Server, stop: trio.Event) -> None:
    await stop.wait()
    server.shutdown()  # any task on the server's trio loop may call it


async def graceful_stop() -> None:
    controls = Controls()
    # A socket you made yourself instead of Config.bind (say, with options of your own).
    # nursery.start() passes no keyword arguments: hence functools.partial.
    sock = socket.create_server(("127.0.0.1", 0))
    serve = functools.partial(trio_asgi.serve, sockets=[sock])
    results: list[str] = []
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve, make_app(controls), trio_asgi.Config())
        nursery.start_soon(stop_when_asked, server, controls.stop)
        async with httpx.AsyncClient(base_url=f"http://{server.addresses[0]}") as client:

            async def slow_request() -> None:
                results.append((await client.get("/slow")).text)

            async with trio.open_nursery() as requests:
                requests.start_soon(slow_request)
                await controls.slow_started.wait()
                print(server.statistics())
                print((await client.get("/stop")).text)
                # Shutting down now: no new connections, but the request in flight finishes.
                controls.release.set()
    # The nursery block ends when serve() has returned.
    print(results[0])
    print(server.statistics())


async def cancelled() -> None:
    async with trio.open_nursery() as nursery:
        app = make_app(Controls())
        config = trio_asgi.Config(bind=("127.0.0.1:0",))
        server = await nursery.start(trio_asgi.serve, app, config)
        async with httpx.AsyncClient() as client:
            print((await client.get(f"http://{server.addresses[0]}/")).text)
        # No drain: connections are cancelled at once. Lifespan shutdown still runs,
        # shielded from the cancellation and bounded by timeout_lifespan_shutdown.
        nursery.cancel_scope.cancel()


async def main() -> None:
    await graceful_stop()
    await cancelled()


if __name__ == "__main__":
    trio.run(main)
