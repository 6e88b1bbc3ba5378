"""Starlette end to end: a real app on a real socket, httpx and a WebSocket client.

Every test runs on trio and on asyncio (``anyio_backend``, see ``conftest.py``). The
app is built inside the test so the events it shares with the test (:class:`Probe`)
belong to the test's event loop; they are how test and app wait for each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sniffio
from frameworks_helpers import Live, WSClosed, WSRejected, serve_app, ws_connect
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

pytestmark = pytest.mark.anyio

FILE_CONTENT = b"0123456789abcdef" * 4096  # 64 KiB
#: How long an SSE client waits for the response head: well past the server's bound on
#: a held head (about a second), and tolerant of a busy machine.
HEAD_WAIT = 10.0


@dataclass
class Probe:
    """What the app and the test share: events in both directions, and records."""

    tmp_path: Path
    release: anyio.Event = field(default_factory=anyio.Event)
    background_done: anyio.Event = field(default_factory=anyio.Event)
    #: Set when an app call for ``/endless`` ends, with how it ended.
    endless_ended: anyio.Event = field(default_factory=anyio.Event)
    endless_outcome: str = ""
    polling: anyio.Event = field(default_factory=anyio.Event)
    saw_disconnect: anyio.Event = field(default_factory=anyio.Event)
    ws_disconnected: anyio.Event = field(default_factory=anyio.Event)
    ws_close_code: int | None = None
    ws_close_reason: str | None = None
    shut_down: bool = False
    sse_send: Any = None
    sse_receive: Any = None

    def __post_init__(self) -> None:
        self.sse_send, self.sse_receive = anyio.create_memory_object_stream[str](1)


def build_app(probe: Probe) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lifespan", "backend": sniffio.current_async_library()}
        probe.shut_down = True

    async def home(request: Request) -> Response:
        return JSONResponse(
            {
                "backend": sniffio.current_async_library(),
                "lifespan_backend": request.state.backend,
                "greeting": request.state.greeting,
            }
        )

    async def item(request: Request) -> Response:
        return JSONResponse(
            {
                "item_id": request.path_params["item_id"],
                "q": request.query_params.get("q"),
                "tags": request.query_params.getlist("tag"),
            }
        )

    async def echo(request: Request) -> Response:
        payload = await request.json()
        return JSONResponse({"got": payload, "total": sum(payload["numbers"])}, status_code=201)

    async def upload(request: Request) -> Response:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            # The test reads the first chunk before it releases the second: a server
            # that buffered the response would deadlock here (and time out).
            await probe.release.wait()
            yield b"second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def sse(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            async with probe.sse_receive:
                async for number, data in _enumerate(probe.sse_receive):
                    yield f"id: {number}\nevent: tick\ndata: {data}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def background(request: Request) -> Response:
        async def job() -> None:
            await probe.release.wait()
            probe.background_done.set()

        return PlainTextResponse("queued", background=BackgroundTask(job))

    async def endless(request: Request) -> Response:
        return StreamingResponse(Endless())

    async def poll_disconnect(request: Request) -> Response:
        await request.body()
        while not await request.is_disconnected():
            probe.polling.set()
            await anyio.sleep(0.005)  # the app polls, as apps using is_disconnected() do
        probe.saw_disconnect.set()
        return PlainTextResponse("nobody is listening")

    async def file(request: Request) -> Response:
        path = probe.tmp_path / "data.bin"
        path.write_bytes(FILE_CONTENT)
        return FileResponse(path, filename="data.bin")

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def ws_echo(websocket: WebSocket) -> None:
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="chat" if "chat" in offered else None)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                probe.ws_close_code, probe.ws_close_reason = message["code"], message["reason"]
                probe.ws_disconnected.set()
                return
            if message.get("text") == "close please":
                await websocket.close(4001, "asked to close")
                return
            if message.get("text") is not None:
                await websocket.send_text("echo: " + message["text"])
            else:
                await websocket.send_bytes(message["bytes"][::-1])

    async def ws_room(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"room": websocket.path_params["room"], "user": websocket.query_params["user"]}
        )
        await websocket.close()

    async def ws_refuse(websocket: WebSocket) -> None:
        await websocket.close(code=1008)

    async def ws_deny(websocket: WebSocket) -> None:
        await websocket.send_denial_response(PlainTextResponse("members only", status_code=401))

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/items/{item_id:int}", item),
            Route("/echo", echo, methods=["POST"]),
            Route("/upload", upload, methods=["POST"]),
            Route("/stream", stream),
            Route("/sse", sse),
            Route("/background", background),
            Route("/endless", endless),
            Route("/poll-disconnect", poll_disconnect, methods=["POST"]),
            Route("/file", file),
            Route("/boom", boom),
            WebSocketRoute("/ws", ws_echo),
            WebSocketRoute("/ws/rooms/{room}", ws_room),
            WebSocketRoute("/ws/refuse", ws_refuse),
            WebSocketRoute("/ws/deny", ws_deny),
        ],
        lifespan=lifespan,
    )

    async def record_endings(scope: Scope, receive: Receive, send: Send) -> None:
        # Outermost, as a plain ASGI wrapper: it sees exactly what the server sees.
        if scope["type"] != "http" or scope["path"] != "/endless":
            return await app(scope, receive, send)
        try:
            await app(scope, receive, send)
            probe.endless_outcome = "returned"
        except Exception as exc:
            probe.endless_outcome = type(exc).__name__
            raise
        finally:
            probe.endless_ended.set()
        return None

    return record_endings


class Endless:
    """An endless body. Not an async generator: Starlette abandons its iterator when a
    send() fails, and trio warns about async generators left unfinished."""

    def __aiter__(self) -> Endless:
        return self

    async def __anext__(self) -> bytes:
        return b"x" * 16384


async def _enumerate(source: AsyncIterator[str]) -> AsyncIterator[tuple[int, str]]:
    number = 0
    async for item in source:
        number += 1
        yield number, item


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[Probe, Live, httpx.AsyncClient]]:
    probe = Probe(tmp_path)
    with probe.sse_send, probe.sse_receive:
        async with (
            serve_app(build_app(probe)) as live,
            httpx.AsyncClient(base_url=live.url) as client,
        ):
            yield probe, live, client


async def test_runs_on_the_backend_it_is_given(anyio_backend: str, tmp_path: Path) -> None:
    assert sniffio.current_async_library() == anyio_backend
    async with running(tmp_path) as (probe, _, client):
        response = await client.get("/")
    assert response.status_code == 200
    assert response.json() == {
        "backend": anyio_backend,
        "lifespan_backend": anyio_backend,
        "greeting": "hello from lifespan",
    }
    assert probe.shut_down, "lifespan shutdown ran when the server stopped"


async def test_path_and_query_parameters(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.get("/items/42?q=caf%C3%A9&tag=a&tag=b")
        not_an_int = await client.get("/items/forty-two")
        wrong_method = await client.delete("/items/42")
    assert response.json() == {"item_id": 42, "q": "café", "tags": ["a", "b"]}
    assert not_an_int.status_code == 404
    assert wrong_method.status_code == 405


async def test_json_body(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        response = await client.post("/echo", json={"numbers": [1, 2, 3], "name": "ünï"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"got": {"numbers": [1, 2, 3], "name": "ünï"}, "total": 6}


async def test_large_streamed_request_body(tmp_path: Path) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB, sent chunked
    chunks = [body[i : i + 100_000] for i in range(0, len(body), 100_000)]

    async def produce() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async with running(tmp_path) as (_, _, client):
        response = await client.post("/upload", content=produce())
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def test_streaming_response_is_not_buffered(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, _, client),
        client.stream("GET", "/stream") as response,
    ):
        assert response.headers["transfer-encoding"] == "chunked"
        lines = response.aiter_lines()
        assert await anext(lines) == "first"
        probe.release.set()
        assert [line async for line in lines] == ["second"]


async def test_server_sent_events_arrive_one_by_one(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (probe, _, client),
        # The head is awaited before any event exists: the server holds a response head
        # for the first body message at most about a second (the in-flight sweep).
        client.stream("GET", "/sse", timeout=HEAD_WAIT) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        received = []
        for data in ("alpha", "beta"):
            await probe.sse_send.send(data)
            event = [await anext(lines) for _ in range(4)]
            received.append(event)
        await probe.sse_send.aclose()
        assert [line async for line in lines] == []
    assert received == [
        ["id: 1", "event: tick", "data: alpha", ""],
        ["id: 2", "event: tick", "data: beta", ""],
    ]


async def test_background_task_runs_after_the_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, _, client):
        # The job waits for ``release``, which only the test sets, after it has the
        # whole response: the response cannot have waited for the job.
        response = await client.get("/background")
        assert response.text == "queued"
        assert not probe.background_done.is_set()
        probe.release.set()
        await probe.background_done.wait()


async def test_client_leaving_a_stream_ends_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as (probe, live, client):
        # A raw socket: httpx, left in the middle of a body, leaves async generators
        # unfinished, which trio reports as a ResourceWarning (an error here).
        async with await anyio.connect_tcp(live.host, live.port) as stream:
            await stream.send(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200 OK\r\n")
        # The client closed mid-response: the app's next send() must fail with an
        # OSError (ASGI 2.4), which Starlette turns into its own ClientDisconnect.
        # Without that the app would stream forever.
        await probe.endless_ended.wait()
        assert probe.endless_outcome == "ClientDisconnect"
        assert (await client.get("/")).status_code == 200
    # A client that leaves is not an app error (regression: Starlette's ClientDisconnect,
    # raised while handling our ClientDisconnected, was logged as one).
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_is_disconnected_sees_the_client_leave(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, live, _):
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(
            b"POST /poll-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
        )
        await probe.polling.wait()
        assert not probe.saw_disconnect.is_set()
        await stream.aclose()
        # Starlette's is_disconnected() calls receive() in an already-cancelled scope:
        # the server must still hand it the queued http.disconnect.
        await probe.saw_disconnect.wait()


async def test_file_response(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, _, client):
        whole = await client.get("/file")
        part = await client.get("/file", headers={"Range": "bytes=16-31"})
        head = await client.head("/file")
    assert whole.status_code == 200
    assert whole.content == FILE_CONTENT
    assert whole.headers["content-length"] == str(len(FILE_CONTENT))
    assert whole.headers["content-disposition"] == 'attachment; filename="data.bin"'
    assert "etag" in whole.headers
    assert part.status_code == 206
    assert part.content == FILE_CONTENT[16:32]
    assert part.headers["content-range"] == f"bytes 16-31/{len(FILE_CONTENT)}"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(FILE_CONTENT))


async def test_app_exception_is_a_500_and_the_server_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path) as (_, _, client):
        failed = await client.get("/boom")
        after = await client.get("/")
    assert failed.status_code == 500
    assert after.status_code == 200
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


async def test_websocket_echo_and_client_close_code(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, live, _), ws_connect(live, "/ws") as ws:
        await ws.send("hello")
        assert await ws.receive() == "echo: hello"
        await ws.send(b"\x00\x01\x02")
        assert await ws.receive() == b"\x02\x01\x00"
        big = "y" * 300_000  # several frames' worth, one message
        await ws.send(big)
        assert await ws.receive() == "echo: " + big
        answer = await ws.close(4002, "client leaving")
        await probe.ws_disconnected.wait()
    assert answer.code == 4002  # the server echoes the client's code
    assert (probe.ws_close_code, probe.ws_close_reason) == (4002, "client leaving")


async def test_websocket_client_vanishing_is_a_1006(tmp_path: Path) -> None:
    async with running(tmp_path) as (probe, live, _):
        async with ws_connect(live, "/ws") as ws:
            await ws.send("hello")
            assert await ws.receive() == "echo: hello"
        # The TCP connection closed without a close frame (a killed browser tab).
        await probe.ws_disconnected.wait()
    assert probe.ws_close_code == 1006


async def test_websocket_server_close_code_and_subprotocol(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (_, live, _),
        ws_connect(live, "/ws", subprotocols=["other", "chat"]) as ws,
    ):
        assert ws.subprotocol == "chat"
        await ws.send("close please")
        with pytest.raises(WSClosed) as closed:
            await ws.receive()
    assert (closed.value.code, closed.value.reason) == (4001, "asked to close")


async def test_websocket_path_and_query_parameters(tmp_path: Path) -> None:
    async with (
        running(tmp_path) as (_, live, _),
        ws_connect(live, "/ws/rooms/lobby?user=ann") as ws,
    ):
        assert json.loads(await ws.receive()) == {"room": "lobby", "user": "ann"}
        with pytest.raises(WSClosed) as closed:
            await ws.receive()
    assert closed.value.code == 1000


async def test_websocket_refused_and_denied(tmp_path: Path) -> None:
    async with running(tmp_path) as (_, live, _):
        with pytest.raises(WSRejected) as refused:
            async with ws_connect(live, "/ws/refuse"):
                pass
        with pytest.raises(WSRejected) as denied:
            async with ws_connect(live, "/ws/deny"):
                pass
        with pytest.raises(WSRejected) as missing:
            async with ws_connect(live, "/ws/no-such-route"):
                pass
    assert refused.value.status == 403
    assert (denied.value.status, denied.value.body) == (401, b"members only")
    assert missing.value.status == 403


async def test_regression_poll_from_a_cancelled_scope_sees_the_client_leave() -> None:
    """Minimal form of the is_disconnected() bug, without Starlette: after the body, a
    receive() inside an already-cancelled scope found nothing even once the client had
    closed, since nothing read the socket (the read was cancelled before it started)."""
    polled_once = anyio.Event()
    seen = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        while True:
            with anyio.CancelScope() as poll:
                poll.cancel()
                if (await receive())["type"] == "http.disconnect":
                    seen.set()
                    return
            polled_once.set()
            await anyio.sleep(0.005)

    async with serve_app(app, lifespan="off") as live:
        stream = await anyio.connect_tcp(live.host, live.port)
        await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await polled_once.wait()
        await stream.aclose()
        await seen.wait()
