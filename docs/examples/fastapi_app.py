"""A FastAPI app that runs on trio-asgi on trio and on asyncio alike.

Run it with ``trio-asgi fastapi_app:app`` from this folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel


class Note(BaseModel):
    text: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # What is yielded here is every request's request.state (a shallow copy per request:
    # the dict below is shared).
    yield {"notes": {}}


app = FastAPI(lifespan=lifespan)


@app.post("/notes/{name}", status_code=201)
async def put_note(name: str, note: Note, request: Request) -> dict[str, str]:
    request.state.notes[name] = note.text
    return {"name": name}


@app.get("/notes/{name}")
async def get_note(name: str, request: Request) -> dict[str, str | None]:
    return {"name": name, "text": request.state.notes.get(name)}


@app.get("/digest")
def digest(text: str) -> dict[str, str]:
    # A plain ``def`` endpoint runs in a worker thread: blocking work belongs here.
    return {"sha256": hashlib.sha256(text.encode()).hexdigest()}


@app.get("/countdown", response_class=EventSourceResponse)
async def countdown(start: int = 3) -> AsyncIterator[ServerSentEvent]:
    # anyio.sleep, not asyncio.sleep or trio.sleep: it works on either event loop.
    for number in range(start, 0, -1):
        yield ServerSentEvent(data=number, event="tick")
        await anyio.sleep(0.01)


@app.websocket("/echo")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        pass
