"""Run trio-asgi inside a trio program: start the server, make one request, stop it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import trio

import trio_asgi

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = f"Hello from {scope['path']}\n".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def main() -> None:
    # Port 0 lets the OS pick a free port; server.addresses holds the real one.
    config = trio_asgi.Config(bind=("127.0.0.1:0",))
    async with trio.open_nursery() as nursery:
        # start() returns once the socket is bound and lifespan startup is done.
        server = await nursery.start(trio_asgi.serve, app, config)
        url = f"http://{server.addresses[0]}/hello"
        # httpx's AsyncClient runs on trio as well as asyncio (it uses anyio).
        async with httpx.AsyncClient() as client:
            response = await client.get(url)
        print(response.status_code, response.text, end="")
        # A graceful stop: serve() returns once in-flight requests are done,
        # and then the nursery block exits.
        server.shutdown()


if __name__ == "__main__":
    trio.run(main)
