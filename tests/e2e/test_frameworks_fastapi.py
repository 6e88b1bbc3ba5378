"""FastAPI end to end: a real app on a real socket, httpx and a WebSocket client.

Every test runs on trio and on asyncio (``anyio_backend``, see ``conftest.py``).
FastAPI is Starlette plus pydantic, dependency injection and its own SSE support;
the tests cover what FastAPI adds on top of ``test_frameworks_starlette.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import anyio
import httpx
import pytest
import sniffio
from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    Query,
    Request,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from frameworks_helpers import Live, WSClosed, WSRejected, serve_app, ws_connect
from pydantic import BaseModel, Field

pytestmark = pytest.mark.anyio

#: How long an SSE client waits for the response head: well past the server's bound on
#: a held head (about a second), and tolerant of a busy machine.
HEAD_WAIT = 10.0


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)
    tags: list[str] = []


@dataclass
class Probe:
    """What the app and the test share: events in both directions, and records."""

    tmp_path: Path
    release: anyio.Event = field(default_factory=anyio.Event)
    background_done: anyio.Event = field(default_factory=anyio.Event)
    dependency_closed: anyio.Event = field(default_factory=anyio.Event)
    polling: anyio.Event = field(default_factory=anyio.Event)
    saw_disconnect: anyio.Event = field(default_factory=anyio.Event)
    ws_disconnected: anyio.Event = field(default_factory=anyio.Event)
    ws_close_code: int | None = None
    background_args: tuple[Any, ...] = ()
    shut_down: bool = False
    sse_send: Any = None
    sse_receive: Any = None

    def __post_init__(self) -> None:
        self.sse_send, self.sse_receive = anyio.create_memory_object_stream[str](1)


async def database(request: Request) -> AsyncIterator[dict[str, int]]:
    """A dependency with cleanup, on the lifespan state; FastAPI finishes it after the
    endpoint. (Module level: FastAPI resolves the string annotations in module globals.)"""
    yield request.state.db
    request.state.probe.dependency_closed.set()


Database = Annotated[dict[str, int], Depends(database)]


def build_app(probe: Probe) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"db": {"apples": 3, "pears": 5}, "probe": probe}
        probe.shut_down = True

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read_item(
        item_id: int, q: str | None = None, limit: Annotated[int, Query(le=100)] = 10
    ) -> dict[str, Any]:
        return {"item_id": item_id, "q": q, "limit": limit}

    @app.post("/items", status_code=201)
    async def create_item(item: Item, x_token: Annotated[str, Header()]) -> dict[str, Any]:
        return {"item": item.model_dump(), "token": x_token}

    @app.get("/stock/{fruit}")
    async def stock(fruit: str, db: Database) -> dict[str, Any]:
        return {
            "fruit": fruit,
            "count": db.get(fruit, 0),
            "backend": sniffio.current_async_library(),
        }

    @app.get("/sync")
    def sync_endpoint() -> dict[str, bool]:
        # A plain def endpoint runs in a worker thread (anyio.to_thread).
        return {"in_worker_thread": threading.current_thread() is not threading.main_thread()}

    @app.post("/background", status_code=202)
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        async def job(name: str, *, times: int) -> None:
            await probe.release.wait()
            probe.background_args = (name, times)
            probe.background_done.set()

        tasks.add_task(job, "report", times=2)
        return {"status": "queued"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            yield "first\n"
            await probe.release.wait()  # sent only after the test has read "first"
            yield "second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[ServerSentEvent]:
        number = 0
        async with probe.sse_receive:
            async for data in probe.sse_receive:
                number += 1
                yield ServerSentEvent(data={"word": data}, event="tick", id=str(number))

    @app.post("/watch")
    async def watch(request: Request) -> PlainTextResponse:
        await request.body()
        while not await request.is_disconnected():
            probe.polling.set()
            await anyio.sleep(0.005)  # the app polls, as apps using is_disconnected() do
        probe.saw_disconnect.set()
        return PlainTextResponse("nobody is listening")

    @app.get("/file")
    async def file() -> FileResponse:
        path = probe.tmp_path / "report.csv"
        path.write_text("fruit,count\napples,3\n")
        return FileResponse(path, media_type="text/csv")

    @app.websocket("/ws/{room}")
    async def chat(websocket: WebSocket, room: str, user: str) -> None:
        await websocket.accept()
        await websocket.send_json({"joined": room, "user": user})
        try:
            while True:
                message = await websocket.receive_json()
                if message.get("leave"):
                    await websocket.close(code=4000, reason="bye " + user)
                    return
                await websocket.send_json({"user": user, "said": message["text"]})
        except WebSocketDisconnect as exc:
            probe.ws_close_code = exc.code
            probe.ws_disconnected.set()

    return app


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[Probe, Live, httpx.AsyncClient]]:
    probe = Probe(tmp_path)
    with probe.sse_send, probe.sse_receive:
        async with (
            serve_app(build_app(probe)) as live,
            httpx.AsyncClient(base_url=live.url) as client,
        ):
            yield probe, live, client


async def test_path_query_and_dependency_with_lifespan_state(
    anyio_backend: str, tmp_path: Path
) -> None:
    assert sniffio.current_async_library() == anyio_backend
    async with running(tmp_path) as (probe, _, client):
        item = await client.get("/items/7", params={"q": "ripe", "limit": 3})
        defaults = await client.get("/items/8")
        stock = await client.get("/stock/pears")
        await probe.dependency_closed.wait()
    assert item.json() == {"item_id": 7, "q": "ripe", "limit": 3}
    assert defaults.json() == {"item_id": 8, "q": None, "limit": 10}
    assert stock.json() == {"fruit": "pears", "count": 5, "backend": anyio_backend}
    assert probe.shut_down


async def test_pydantic_body_and_header(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.post(
            "/items", json={"name": "kiwi", "price": 0.5}, headers={"X-Token": "secret"}
        )
    assert response.status_code == 201
    assert response.json() == {
        "item": {"name": "kiwi", "price": 0.5, "tags": []},
        "token": "secret",
    }


async def test_validation_errors_are_422(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        bad_path = await client.get("/items/seven")
        bad_query = await client.get("/items/7", params={"limit": 1000})
        bad_body = await client.post(
            "/items", json={"name": "kiwi", "price": -1}, headers={"X-Token": "t"}
        )
        no_header = await client.post("/items", json={"name": "kiwi", "price": 1})
        not_json = await client.post(
            "/items",
            content=b"{not json",
            headers={"X-Token": "t", "Content-Type": "application/json"},
        )
    for response in (bad_path, bad_query, bad_body, no_header, not_json):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
    assert [error["loc"] for error in bad_path.json()["detail"]] == [["path", "item_id"]]
    assert [error["loc"] for error in bad_query.json()["detail"]] == [["query", "limit"]]
    assert [error["loc"] for error in bad_body.json()["detail"]] == [["body", "price"]]
    assert [error["loc"] for error in no_header.json()["detail"]] == [["header", "x-token"]]
    assert not_json.json()["detail"][0]["type"] == "json_invalid"


async def test_sync_endpoint_runs_in_a_worker_thread(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/sync")
    assert response.json() == {"in_worker_thread": True}


async def test_background_task_runs_after_the_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, _, client):
        response = await client.post("/background")
        assert (response.status_code, response.json()) == (202, {"status": "queued"})
        assert not probe.background_done.is_set()
        probe.release.set()
        await probe.background_done.wait()
    assert probe.background_args == ("report", 2)


async def test_streaming_response_is_not_buffered(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, _, client),
        client.stream("GET", "/stream") as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == "first"
        probe.release.set()
        assert [line async for line in lines] == ["second"]


async def test_server_sent_events(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, _, client),
        # The head is awaited before any event exists: the server holds a response head
        # for the first body message at most about a second (the in-flight sweep).
        client.stream("GET", "/events", timeout=HEAD_WAIT) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        lines = response.aiter_lines()
        received = []
        for word in ("alpha", "beta"):
            await probe.sse_send.send(word)
            received.append([await anext(lines) for _ in range(4)])
        await probe.sse_send.aclose()
        assert [line async for line in lines] == []
    assert received == [
        ["event: tick", 'data: {"word": "alpha"}', "id: 1", ""],
        ["event: tick", 'data: {"word": "beta"}', "id: 2", ""],
    ]


async def test_is_disconnected_sees_the_client_leave(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, live, _):
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(b"POST /watch HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        await probe.polling.wait()
        await stream.aclose()
        await probe.saw_disconnect.wait()


async def test_file_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text == "fruit,count\napples,3\n"


async def test_websocket_chat(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, live, _),
        ws_connect(live, "/ws/kitchen?user=bo") as ws,
    ):
        assert await ws.receive() == '{"joined":"kitchen","user":"bo"}'
        await ws.send('{"text": "hi"}')
        assert await ws.receive() == '{"user":"bo","said":"hi"}'
        await ws.close(1001)
        await probe.ws_disconnected.wait()
    assert probe.ws_close_code == 1001


async def test_websocket_server_close_with_reason(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (_, live, _),
        ws_connect(live, "/ws/hall?user=al") as ws,
    ):
        await ws.receive()
        await ws.send('{"leave": true}')
        with pytest.raises(WSClosed) as closed:
            await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4000, "bye al")


async def test_websocket_validation_error_rejects_the_handshake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The required ``user`` query parameter is missing, so FastAPI refuses the WebSocket.
    # Its default handler closes with the error *list* as the reason, which the ASGI
    # spec does not allow (a str): trio-asgi rejects that message, so the handshake is
    # answered 500 and an error is logged (fastapi/fastapi#16300 would make it 403).
    async with running(tmp_path) as (_, live, _):
        with pytest.raises(WSRejected) as rejected:
            async with ws_connect(live, "/ws/hall"):
                pass
    assert rejected.value.status in (403, 500)
    if rejected.value.status == 500:
        assert "reason must be a str" in caplog.text


async def test_websocket_validation_error_with_a_string_reason_handler(tmp_path: Path) -> None:
    """The workaround the docs give: a handler that closes with a string reason."""
    probe = Probe(tmp_path)
    app = build_app(probe)

    @app.exception_handler(WebSocketRequestValidationError)
    async def refuse_websocket(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        reason = json.dumps(jsonable_encoder(exc.errors()))[:120]  # a close reason is short
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=reason)

    with probe.sse_send, probe.sse_receive:
        async with serve_app(app) as live:
            with pytest.raises(WSRejected) as rejected:
                async with ws_connect(live, "/ws/hall"):
                    pass
    assert rejected.value.status == 403


def load_docs_example() -> ModuleType:
    """``docs/examples/fastapi_app.py``, the FastAPI how-to's app, as a fresh module."""
    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("e2e_example_fastapi_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_docs_example_app() -> None:
    example = load_docs_example()
    async with (
        serve_app(example.app) as live,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        created = await client.post("/notes/todo", json={"text": "buy figs"})
        note = await client.get("/notes/todo")
        digest = await client.get("/digest", params={"text": "abc"})
        countdown = await client.get("/countdown", params={"start": 2})
        async with ws_connect(live, "/echo") as ws:
            await ws.send("ping")
            assert await ws.receive() == "ping"
    assert created.status_code == 201
    assert note.json() == {"name": "todo", "text": "buy figs"}
    assert digest.json()["sha256"].startswith("ba7816bf")
    assert [line for line in countdown.text.splitlines() if line] == [
        "event: tick",
        "data: 2",
        "event: tick",
        "data: 1",
    ]


async def test_client_leaving_an_event_stream_is_not_an_app_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: on trio the ClientDisconnect came wrapped in an exception group (from
    FastAPI's SSE task group) and was logged as an app error."""
    probe = Probe(tmp_path)
    app = build_app(probe)
    ended = anyio.Event()

    async def record_end(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["path"] == "/events":
                ended.set()

    async def feed() -> None:
        with contextlib.suppress(anyio.BrokenResourceError):
            while True:
                await probe.sse_send.send("more")

    with probe.sse_send, probe.sse_receive:
        async with serve_app(record_end) as live:
            async with await anyio.connect_tcp(live.host, live.port) as stream:
                await stream.send(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
                await probe.sse_send.send("first")
                received = b""
                while b"first" not in received:
                    received += await stream.receive()
            # The app notices the client left when it next sends: feed it until it does.
            async with anyio.create_task_group() as feeder:
                feeder.start_soon(feed)
                await ended.wait()
                feeder.cancel_scope.cancel()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
