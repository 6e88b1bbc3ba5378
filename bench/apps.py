"""The ASGI apps every server under test runs, all behind one app object.

One app serves every workload so that each server starts once per round;
the dispatch is a single dict look-up on the path, cheap next to any server's
per-request work. Routes:

- ``/``: hello world, plain ASGI, 13 bytes.
- ``/10k``: a 10 KiB body in one message.
- ``/stream``: 1 MiB streamed in 64 KiB chunks (``more_body``), no Content-Length.
- ``/stream10m``: 10 MiB streamed the same way (the burst-fairness workload's writers).
- ``/echo``: a POST body read whole and sent back with its length.
- ``/upload``: a POST body read piece by piece and dropped; answers its length.
- ``/json``: a Starlette ``JSONResponse`` endpoint (Starlette's routing and request objects).
- ``/ws``: WebSocket echo of every text or binary message.

Run any server on ``bench.apps:app`` with the repository root on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Message: TypeAlias = MutableMapping[str, Any]
Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
Handler: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

HELLO = b"Hello, world!"
BODY_10K = b"x" * (10 * 1024)
STREAM_CHUNK = b"s" * (64 * 1024)
STREAM_CHUNKS = 16  # 16 x 64 KiB = 1 MiB
STREAM_10M_CHUNKS = 160  # 160 x 64 KiB = 10 MiB

_TEXT_HEADERS = [(b"content-type", b"text/plain")]


def _fixed_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [*_TEXT_HEADERS, (b"content-length", str(len(body)).encode())]


_HELLO_START = {"type": "http.response.start", "status": 200, "headers": _fixed_headers(HELLO)}
_10K_START = {"type": "http.response.start", "status": 200, "headers": _fixed_headers(BODY_10K)}


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send(_HELLO_START)
    await send({"type": "http.response.body", "body": HELLO})


async def ten_kib(scope: Scope, receive: Receive, send: Send) -> None:
    await send(_10K_START)
    await send({"type": "http.response.body", "body": BODY_10K})


async def _stream_chunks(send: Send, chunks: int) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _TEXT_HEADERS})
    for _ in range(chunks):
        await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    await _stream_chunks(send, STREAM_CHUNKS)


async def stream_10m(scope: Scope, receive: Receive, send: Send) -> None:
    await _stream_chunks(send, STREAM_10M_CHUNKS)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200, "headers": _fixed_headers(body)})
    await send({"type": "http.response.body", "body": body})


async def upload(scope: Scope, receive: Receive, send: Send) -> None:
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect: nobody to answer
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(received).encode()
    await send({"type": "http.response.start", "status": 200, "headers": _fixed_headers(body)})
    await send({"type": "http.response.body", "body": body})


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": _fixed_headers(b"")})
    await send({"type": "http.response.body", "body": b""})


async def _json_endpoint(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, world!", "path": request.url.path, "n": list(range(8))})


_starlette = Starlette(routes=[Route("/json", _json_endpoint)])


async def starlette_json(scope: Scope, receive: Receive, send: Send) -> None:
    await _starlette(scope, receive, send)


async def websocket_echo(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":  # websocket.disconnect
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


HTTP_ROUTES: dict[str, Handler] = {
    "/": hello,
    "/10k": ten_kib,
    "/stream": stream,
    "/stream10m": stream_10m,
    "/echo": echo,
    "/upload": upload,
    "/json": starlette_json,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The one ASGI 3 app every server under test runs."""
    kind = scope["type"]
    if kind == "http":
        await HTTP_ROUTES.get(scope["path"], not_found)(scope, receive, send)
    elif kind == "websocket":
        await websocket_echo(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(scope, receive, send)
