"""Apps the fuzz tests serve: an HTTP echo that describes what it got, a WebSocket echo."""

from __future__ import annotations

import hashlib
import json

from trio_asgi._types import Receive, Scope, Send


def describe(method: str, raw_path: bytes, query: bytes, body: bytes) -> bytes:
    """What :func:`echo_app` answers for a request (compared byte for byte by the tests)."""
    return json.dumps(
        [method, raw_path.hex(), query.hex(), len(body), hashlib.sha256(body).hexdigest()]
    ).encode()


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """HTTP: read the body, answer 200 with :func:`describe`. WebSocket: echo messages."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            text = message.get("text")
            await send(
                {"type": "websocket.send", "text": text}
                if text is not None
                else {"type": "websocket.send", "bytes": message["bytes"]}
            )
        return
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    answer = describe(scope["method"], scope["raw_path"], scope["query_string"], body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", b"1")]})
    await send({"type": "http.response.body", "body": answer})
