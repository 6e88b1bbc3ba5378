"""A FastAPI shop with three planted bugs, and the three tests that find them.

- ``GET /items?per_page=0`` divides by zero: FastAPI accepts any integer.
- ``GET /news`` streams server-sent events; it waits for the next item and never
  notices that its client left, so every client that ever listened leaks a task.
- ``/chat`` broadcasts each message to the room while members join and leave: the
  loop over the members awaits each send, and the dict changes under it.

Each test runs the app on the real trio-asgi server, in memory, in virtual time
(``with_test_server``), and fails with the app's own exception. Run them with
``pytest docs/examples/fuzz_fastapi_shop.py``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from hypothesis import given, settings

from trio_asgi.testing import TestServer, with_test_server
from trio_asgi.testing.strategies import (
    Disconnect,
    RawRequest,
    Scenario,
    client_scenarios,
    disconnects,
    http_requests,
    requests_from_openapi,
    run_scenario,
)

ITEMS = [f"item {n}" for n in range(23)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # Per server, so per hypothesis example: the chat room and the news subscribers.
    yield {"members": {}, "news": anyio.Event()}


app = FastAPI(lifespan=lifespan)


@app.get("/items")
async def list_items(page: int = 1, per_page: int = 10) -> dict[str, Any]:
    pages = math.ceil(len(ITEMS) / per_page)  # planted bug 1: per_page=0
    start = (page - 1) * per_page
    return {"pages": pages, "items": ITEMS[start : start + per_page]}


@app.get("/news")
async def news(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        while True:
            # Planted bug 2: it waits for news, and never looks at whether the client
            # is still there (``await request.is_disconnected()``, or a timeout and a ping).
            await request.state.news.wait()
            yield "data: news\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.websocket("/chat")
async def chat(websocket: WebSocket) -> None:
    members: dict[int, WebSocket] = websocket.state.members
    await websocket.accept()
    members[id(websocket)] = websocket
    try:
        while True:
            text = await websocket.receive_text()
            # Planted bug 3: others join and leave while this loop awaits their sends
            # (iterate over a copy: ``list(members.values())``).
            for member in members.values():
                await member.send_text(text)
    except WebSocketDisconnect:
        members.pop(id(websocket), None)


@settings(max_examples=300, deadline=None)
@given(request=requests_from_openapi(app.openapi(), operations=["GET /items"]))
@with_test_server(app)
async def test_every_documented_request_is_answered(
    server: TestServer, request: RawRequest
) -> None:
    client = await server.connect()
    await client.send(request.data)
    response = await client.read_response(request.method)
    assert response.status < 500


@settings(max_examples=100, deadline=None)
@given(request=http_requests(paths=["/news"], methods=["GET"]), leave=disconnects())
@with_test_server(app)
async def test_the_news_feed_ends_when_its_client_leaves(
    server: TestServer, request: RawRequest, leave: Disconnect
) -> None:
    await leave.play(await server.connect(), request.data)
    await server.wait_requests_finished(within=5)


@settings(max_examples=500, deadline=None)
@given(scenario=client_scenarios(websocket_clients=3, path="/chat"))
@with_test_server(app)
async def test_the_chat_room_survives_joins_and_leaves(
    server: TestServer, scenario: Scenario
) -> None:
    await run_scenario(server, scenario)
