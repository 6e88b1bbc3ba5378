"""Serve websocket_echo.py on a free port and talk to it with the ``websockets`` client.

Run it from this directory with ``python websocket_client.py`` (``pip install websockets``).
The client is the ``websockets`` library's blocking one, run in a worker thread so the
server keeps running on the trio loop.
"""

from __future__ import annotations

import trio
from websocket_echo import app
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import trio_asgi


def close_frame(closed: ConnectionClosed) -> str:
    """The code and reason of the close frame the server sent."""
    if closed.rcvd is None:
        return "the connection dropped without a close frame"
    return f"{closed.rcvd.code} {closed.rcvd.reason}"


def echo_then_bye(url: str) -> None:
    with connect(url, subprotocols=["echo.v1"]) as ws:
        print("subprotocol:", ws.subprotocol)
        ws.send("hello")
        print("echo:", ws.recv())
        ws.send("bye")
        try:
            ws.recv()
        except ConnectionClosed as closed:
            print("closed by the app:", close_frame(closed))


def client_closes(url: str) -> None:
    with connect(url) as ws:
        ws.send(b"\x00\x01")
        print("echo:", ws.recv())
        ws.close(4000, "done here")  # the app's websocket.disconnect carries both


def too_big(url: str) -> None:
    with connect(url) as ws:
        ws.send(b"x" * 100_000)  # over ws_max_size below
        try:
            ws.recv()
        except ConnectionClosed as closed:
            print("too big:", close_frame(closed))


def denied(url: str) -> None:
    try:
        connect(url)
    except InvalidStatus as refused:
        print("denied:", refused.response.status_code, bytes(refused.response.body))


def wait_for_close(ws: ClientConnection) -> None:
    try:
        ws.recv()
    except ConnectionClosed as closed:
        print("server stopped:", close_frame(closed))


async def main() -> None:
    config = trio_asgi.Config(
        bind=("127.0.0.1:0",),
        ws_max_size=64 * 1024,  # largest message we accept; larger closes with 1009
        ws_max_queue=16,  # messages buffered for an app that reads slowly
        ws_ping_interval=20.0,  # ping idle clients; no pong in ws_ping_timeout: close 1011
    )
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_asgi.serve, app, config)
        base = f"ws://{server.addresses[0]}"
        await trio.to_thread.run_sync(echo_then_bye, base + "/echo")
        await trio.to_thread.run_sync(client_closes, base + "/echo")
        await trio.to_thread.run_sync(too_big, base + "/echo")
        await trio.to_thread.run_sync(denied, base + "/nowhere")

        # A graceful shutdown closes every open WebSocket with 1012 (service restart).
        ws = await trio.to_thread.run_sync(connect, base + "/echo")
        with ws:
            server.shutdown()
            await trio.to_thread.run_sync(wait_for_close, ws)


if __name__ == "__main__":
    trio.run(main)
