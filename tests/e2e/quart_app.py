"""A small Quart app for the command-line test (``quart_app:app``)."""

from __future__ import annotations

from quart import Quart, websocket

app = Quart(__name__)


@app.route("/hello/<name>")
async def hello(name: str) -> str:
    return f"hello {name} from quart"


@app.websocket("/ws")
async def echo() -> None:
    while True:
        message = await websocket.receive()
        await websocket.send(f"quart echo: {message}")
