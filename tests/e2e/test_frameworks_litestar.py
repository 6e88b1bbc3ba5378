"""Litestar end to end: a real app on a real socket, httpx and a WebSocket client.

Litestar is built on anyio, so every test runs on trio and on asyncio.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sniffio
from frameworks_helpers import Live, WSClosed, serve_app, ws_connect
from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import File, Response, ServerSentEvent, Stream

pytestmark = pytest.mark.anyio


@dataclass
class Fruit:
    name: str
    count: int


@dataclass
class Probe:
    tmp_path: Path
    release: anyio.Event = field(default_factory=anyio.Event)
    background_done: anyio.Event = field(default_factory=anyio.Event)
    waiting: anyio.Event = field(default_factory=anyio.Event)
    stream_cancelled: anyio.Event = field(default_factory=anyio.Event)
    ws_disconnected: anyio.Event = field(default_factory=anyio.Event)
    ws_close_code: int | None = None
    events: list[str] = field(default_factory=list)


class WaitForever:
    """A body that sends one chunk, then waits until it is cancelled.

    Not an async generator: trio warns about generators left unfinished.
    """

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.sent = False

    def __aiter__(self) -> WaitForever:
        return self

    async def __anext__(self) -> bytes:
        if not self.sent:
            self.sent = True
            return b"first chunk\n"
        self.probe.waiting.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.probe.stream_cancelled.set()
        raise StopAsyncIteration  # pragma: no cover - sleep_forever never returns


def build_app(probe: Probe) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.fruits = {"apples": 3}
        probe.events.append("startup")
        yield
        probe.events.append("shutdown")

    @get("/fruits/{name:str}")
    async def fruit(
        name: FromPath[str], state: State, unit: FromQuery[str] = "pieces"
    ) -> dict[str, Any]:
        return {
            "name": name,
            "count": state.fruits.get(name, 0),
            "unit": unit,
            "backend": sniffio.current_async_library(),
        }

    @post("/fruits")
    async def add_fruit(data: JSONBody[Fruit], state: State) -> Fruit:
        state.fruits[data.name] = data.count
        return data

    @get("/limit")
    async def limit(n: FromQuery[int]) -> dict[str, int]:
        return {"n": n}

    @get("/sync", sync_to_thread=True)
    def sync_handler() -> dict[str, bool]:
        return {"in_worker_thread": threading.current_thread() is not threading.main_thread()}

    @get("/stream")
    async def stream() -> Stream:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await probe.release.wait()  # sent only after the test has read "first"
            yield b"second\n"

        return Stream(chunks(), media_type="text/plain")

    @get("/wait")
    async def wait() -> Stream:
        return Stream(WaitForever(probe))

    @get("/sse")
    async def sse() -> ServerSentEvent:
        async def words() -> AsyncIterator[str]:
            for word in ("alpha", "beta"):
                yield word

        return ServerSentEvent(words(), event_type="word")

    @post("/background", status_code=202)
    async def background() -> Response[str]:
        async def job() -> None:
            await probe.release.wait()
            probe.background_done.set()

        return Response("queued", background=BackgroundTask(job))

    @get("/file")
    async def file() -> File:
        path = probe.tmp_path / "notes.txt"
        path.write_text("litestar was here\n")
        return File(path, filename="notes.txt")

    @get("/client")
    async def client_info(request: Request[Any, Any, Any]) -> dict[str, Any]:
        assert request.client is not None
        return {"client_host": request.client.host, "path": request.url.path}

    @websocket("/ws")
    async def ws(socket: WebSocket[Any, Any, Any]) -> None:
        await socket.accept()
        try:
            while True:
                text = await socket.receive_text()
                if text == "quit":
                    await socket.close(code=4004, reason="quitting")
                    return
                await socket.send_json({"echo": text})
        except WebSocketDisconnect as exc:
            probe.ws_close_code = exc.code
            probe.ws_disconnected.set()

    return Litestar(
        route_handlers=[
            fruit,
            add_fruit,
            limit,
            sync_handler,
            stream,
            wait,
            sse,
            background,
            file,
            client_info,
            ws,
        ],
        lifespan=[lifespan],
        # Litestar configures the process's logging by default; leave it to pytest.
        logging_config=None,
    )


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[Probe, Live, httpx.AsyncClient]]:
    probe = Probe(tmp_path)
    async with (
        serve_app(build_app(probe)) as live,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        yield probe, live, client
    assert probe.events == ["startup", "shutdown"]


async def test_routes_state_and_json(anyio_backend: str, tmp_path: Path) -> None:
    assert sniffio.current_async_library() == anyio_backend
    async with running(tmp_path) as (_, _, client):
        apples = await client.get("/fruits/apples", params={"unit": "kg"})
        created = await client.post("/fruits", json={"name": "figs", "count": 9})
        figs = await client.get("/fruits/figs")
        info = await client.get("/client")
    assert apples.json() == {"name": "apples", "count": 3, "unit": "kg", "backend": anyio_backend}
    assert (created.status_code, created.json()) == (201, {"name": "figs", "count": 9})
    assert figs.json()["count"] == 9
    assert info.json() == {"client_host": "127.0.0.1", "path": "/client"}


async def test_validation_errors_are_400(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        bad_query = await client.get("/limit", params={"n": "many"})
        bad_body = await client.post("/fruits", json={"name": "figs"})
    assert bad_query.status_code == 400
    assert bad_body.status_code == 400
    assert "count" in bad_body.text


async def test_sync_handler_runs_in_a_worker_thread(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/sync")
    assert response.json() == {"in_worker_thread": True}


async def test_streaming_response_is_not_buffered(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, _, client),
        client.stream("GET", "/stream") as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == "first"
        probe.release.set()
        assert [line async for line in lines] == ["second"]


async def test_client_leaving_cancels_the_stream(tmp_path: Path) -> None:
    """Litestar listens for ``http.disconnect`` while streaming and cancels the body."""
    async with running(tmp_path) as (probe, live, _):
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        await probe.waiting.wait()
        await stream.aclose()
        await probe.stream_cancelled.wait()


async def test_server_sent_events(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/sse")
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = response.text.splitlines()
    assert [line for line in lines if line.startswith("data:")] == ["data: alpha", "data: beta"]
    assert "event: word" in lines


async def test_background_task_runs_after_the_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, _, client):
        response = await client.post("/background")
        assert (response.status_code, response.text) == (202, "queued")
        assert not probe.background_done.is_set()
        probe.release.set()
        await probe.background_done.wait()


async def test_file_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/file")
    assert response.text == "litestar was here\n"
    assert response.headers["content-disposition"] == 'attachment; filename="notes.txt"'


async def test_websocket(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, live, _):
        async with ws_connect(live, "/ws") as ws:
            await ws.send("hi")
            assert await ws.receive() == '{"echo":"hi"}'
            await ws.send("quit")
            with pytest.raises(WSClosed) as closed:
                await ws.receive()
        assert (closed.value.code, closed.value.reason) == (4004, "quitting")
        async with ws_connect(live, "/ws") as ws:
            await ws.close(4005)
            await probe.ws_disconnected.wait()
    assert probe.ws_close_code == 4005
