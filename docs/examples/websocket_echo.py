"""A WebSocket echo app in plain ASGI: accept, echo, close with a code, refuse unknown paths.

Serve it from this directory with ``python -m trio_asgi websocket_echo:app`` and connect
to ``ws://127.0.0.1:8000/echo``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

logger = logging.getLogger("echo")

SUBPROTOCOL = "echo.v1"


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket_echo(scope, receive, send)
    elif scope["type"] == "http":
        await send_text(send, 404, b"Connect with a WebSocket to /echo\n")
    # Returning from the lifespan scope: this app has no startup or shutdown work.


async def websocket_echo(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    # The first message is always websocket.connect; the client waits for our answer.
    await receive()

    if scope["path"] != "/echo":
        # Deny the handshake with a real HTTP response (the denial-response extension),
        # instead of the bare 403 that {"type": "websocket.close"} would give.
        if "websocket.http.response" in scope["extensions"]:
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"no such WebSocket\n"})
        else:
            await send({"type": "websocket.close"})
        return

    # Pick a subprotocol only from those the client offered (scope["subprotocols"]).
    subprotocol = SUBPROTOCOL if SUBPROTOCOL in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})

    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            # The peer's close code and reason; 1006 if the connection just dropped,
            # 1012 when the server is shutting down.
            logger.info("disconnected: %d %r", message["code"], message.get("reason", ""))
            return
        text = message.get("text")
        if text == "bye":
            # Close with our own code and reason; the client sees both.
            await send({"type": "websocket.close", "code": 1000, "reason": "goodbye"})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def send_text(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
