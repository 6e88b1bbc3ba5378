"""Quart end to end: a real app on a real socket, httpx and a WebSocket client.

Quart is built on asyncio (``asyncio.ensure_future``, ``asyncio.get_running_loop``,
``asyncio.Event``), so it runs on the asyncio backend only; the last test pins down
what happens on trio (lifespan startup runs, every request fails with a 500).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from frameworks_helpers import Live, WSClosed, serve_app, ws_connect
from quart import Quart, Response, request, websocket

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Quart is asyncio-only (see the module docstring)."""
    return "asyncio"


@dataclass
class Probe:
    release: anyio.Event = field(default_factory=anyio.Event)
    waiting: anyio.Event = field(default_factory=anyio.Event)
    cancelled: anyio.Event = field(default_factory=anyio.Event)
    background_done: anyio.Event = field(default_factory=anyio.Event)
    events: list[str] = field(default_factory=list)


def build_app(probe: Probe) -> Quart:
    app = Quart(__name__)

    @app.before_serving
    async def startup() -> None:
        probe.events.append("startup")

    @app.after_serving
    async def shutdown() -> None:
        probe.events.append("shutdown")

    @app.get("/items/<int:item_id>")
    async def item(item_id: int) -> dict[str, Any]:
        return {"item_id": item_id, "q": request.args.get("q")}

    @app.post("/echo")
    async def echo() -> tuple[dict[str, Any], int]:
        payload = await request.get_json()
        return {"got": payload}, 201

    @app.get("/stream")
    async def stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            await probe.release.wait()  # sent only after the test has read "first"
            yield b"second\n"

        return Response(chunks(), mimetype="text/plain")

    @app.post("/background")
    async def background() -> tuple[str, int]:
        async def job() -> None:
            await probe.release.wait()
            probe.background_done.set()

        app.add_background_task(job)
        return "queued", 202

    @app.get("/wait")
    async def wait() -> str:
        probe.waiting.set()
        try:
            await anyio.sleep_forever()  # only a client disconnect ends this
        finally:
            probe.cancelled.set()
        return "unreachable"

    @app.websocket("/ws")
    async def ws() -> None:
        while True:
            message = await websocket.receive()
            if message == "bye":
                await websocket.close(4003, "see you")
                return
            await websocket.send(f"echo: {message}")

    return app


@asynccontextmanager
async def running() -> AsyncIterator[tuple[Probe, Live, httpx.AsyncClient]]:
    probe = Probe()
    async with (
        serve_app(build_app(probe)) as live,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        yield probe, live, client
    assert probe.events == ["startup", "shutdown"]


async def test_routes_json_and_lifespan() -> None:
    async with running() as (probe, _, client):
        assert probe.events == ["startup"]
        item = await client.get("/items/5?q=x")
        echo = await client.post("/echo", json={"a": [1, 2]})
        missing = await client.get("/items/five")
    assert item.json() == {"item_id": 5, "q": "x"}
    assert (echo.status_code, echo.json()) == (201, {"got": {"a": [1, 2]}})
    assert missing.status_code == 404


async def test_streaming_response_is_not_buffered() -> None:
    async with running() as (probe, _, client), client.stream("GET", "/stream") as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "first"
        probe.release.set()
        assert [line async for line in lines] == ["second"]


async def test_background_task_runs_after_the_response() -> None:
    async with running() as (probe, _, client):
        response = await client.post("/background")
        assert (response.status_code, response.text) == (202, "queued")
        probe.release.set()
        await probe.background_done.wait()


async def test_client_leaving_cancels_the_handler() -> None:
    """Quart watches for ``http.disconnect`` in a task of its own and cancels the handler."""
    async with running() as (probe, live, _):
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        await probe.waiting.wait()
        await stream.aclose()
        await probe.cancelled.wait()


async def test_websocket_echo_and_close() -> None:
    async with running() as (_, live, _), ws_connect(live, "/ws") as ws:
        await ws.send("hi")
        assert await ws.receive() == "echo: hi"
        await ws.send("bye")
        with pytest.raises(WSClosed) as closed:
            await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4003, "see you")


@pytest.mark.parametrize("anyio_backend", ["trio"])
# Quart, failing halfway, leaves coroutines unawaited.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_on_trio_requests_fail_with_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """Pins down the compatibility table's entry: if Quart ever runs on trio, this fails
    and the docs need updating."""
    probe = Probe()
    async with (
        serve_app(build_app(probe), lifespan="auto") as live,
        httpx.AsyncClient(base_url=live.url) as client,
    ):
        response = await client.get("/items/1")
    assert response.status_code == 500
    assert any(
        r.name == "trio_asgi" and r.levelno >= logging.ERROR and "--loop asyncio" in r.getMessage()
        for r in caplog.records
    )
    # The logged tracebacks keep Quart's leftovers alive: drop them, so that they are
    # collected (and reported) now, under this test's warning filter.
    for record in caplog.records:
        record.exc_info = None
    gc.collect()
