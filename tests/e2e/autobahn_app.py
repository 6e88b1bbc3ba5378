"""The echo app Autobahn's fuzzing client expects, and a script that serves it.

Every case connects, sends messages and expects each one back unchanged: text as
text, binary as binary. The 9.x cases send messages of up to 16 MiB, so the size
limit is raised to 32 MiB. Server pings are off: an unsolicited ping in the middle
of a case would be an event the case does not expect.

Run as a script (``python tests/e2e/autobahn_app.py``), it serves the app on
127.0.0.1 with a free port, prints the bound address (``127.0.0.1:54321``) as its
first line on stdout, and stops gracefully on SIGINT or SIGTERM.
"""

from __future__ import annotations

import signal

import trio

import trio_asgi
from trio_asgi._types import Receive, Scope, Send

MiB = 1024 * 1024

#: The server configuration Autobahn runs against (``--port 0`` picks a free port).
CONFIG = trio_asgi.Config(
    bind=("127.0.0.1:0",),
    ws_max_size=32 * MiB,
    ws_ping_interval=None,
    access_log=False,
    lifespan="off",
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo every WebSocket message; anything that is not a WebSocket gets a 404."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"WebSocket echo only\n"})
        return
    if scope["type"] != "websocket":
        return  # lifespan: not supported (and off in CONFIG anyway)
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:  # websocket.disconnect
            return


async def main() -> None:
    """Serve :func:`app` with :data:`CONFIG` until SIGINT or SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(trio_asgi.serve, app, CONFIG)
            print(server.addresses[0], flush=True)
            async for _ in signals:
                server.shutdown()
                break


if __name__ == "__main__":
    trio.run(main)
