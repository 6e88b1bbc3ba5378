"""Run trio-asgi inside an asyncio program, serving an app written for asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx

import trio_asgi

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    # asyncio APIs, used directly: this app needs the asyncio event loop.
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()
    loop.call_soon(answer.set_result, f"Hello from {scope['path']} on asyncio\n")
    body = (await answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def main() -> None:
    config = trio_asgi.Config(bind=("127.0.0.1:0",))
    # An anyio task group is a nursery that works on asyncio: serve() runs in it just
    # as it runs in a trio nursery, with the same Server handle.
    async with anyio.create_task_group() as tg:
        server = await tg.start(trio_asgi.serve, app, config)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{server.addresses[0]}/hello")
        print(response.status_code, response.text, end="")
        server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
