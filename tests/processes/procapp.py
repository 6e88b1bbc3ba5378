"""Apps the process tests serve in real worker processes (``--app-dir`` is this folder)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import anyio

logger = logging.getLogger("trio_asgi")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/``: this worker's PID; ``/slow``: the same after 0.5 s; ``/block``: blocks the loop."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            logger.warning("%s in %d", message["type"], os.getpid())
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await echo(receive, send)
        return
    path = scope["path"]
    if path == "/slow":
        logger.warning("slow request started")
        await anyio.sleep(0.5)
    elif path == "/hang":
        logger.warning("hanging request started")
        await anyio.sleep(60)
    elif path == "/block":
        logger.warning("blocking the event loop")
        time.sleep(60)  # noqa: ASYNC251 - the behaviour under test: a loop that stops
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def blocked_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan startup blocks its worker's event loop for good."""
    if scope["type"] == "lifespan":
        await receive()
        time.sleep(60)  # noqa: ASYNC251 - the behaviour under test


async def echo(receive: Any, send: Any) -> None:
    """Accept, then send every text message back until the client closes."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text") or ""})


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan startup fails."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
