"""Draining for a zero-downtime restart, over real sockets on both loops.

While a server drains (graceful shutdown), a request in progress finishes with
``Connection: close``, and a keep-alive connection is never closed under a request
that has already arrived: a process supervisor that starts a new server and drains
the old one relies on it. The hard case is a response whose head said keep-alive
before the shutdown began: the client may already have sent its next request, which
must be served (with ``Connection: close``), not dropped with the connection.
What happened before: the connection closed after that response, and the request the
client had pipelined (or sent right after reading it) was lost.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from trio_asgi._types import Receive, Scope, Send
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

TIMEOUT = 30


class StreamingApp:
    """``/stream`` starts a chunked response and finishes it when released; else ``ok``."""

    def __init__(self) -> None:
        self.streaming = anyio.Event()
        self.release = anyio.Event()
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/stream":
            await send({"type": "http.response.body", "body": b"part ", "more_body": True})
            self.streaming.set()
            await self.release.wait()
        await send({"type": "http.response.body", "body": b"ok"})


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


async def test_a_request_in_progress_finishes_with_connection_close(
    run_server: Any, connect: Any
) -> None:
    gate = anyio.Event()
    entered = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await gate.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(get("/"))
            await entered.wait()
            server.shutdown()
            await wait_all_tasks_blocked()
            gate.set()
            response = await client.read_response()
            assert (response.status, response.body) == (200, b"done")
            assert response.header(b"connection") == b"close"
            await client.expect_eof()


@pytest.mark.parametrize("when", ["pipelined", "after-the-response"])
async def test_a_request_sent_on_a_keep_alive_response_is_served_while_draining(
    run_server: Any, connect: Any, when: str
) -> None:
    app = StreamingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(get("/stream") + (get("/next") if when == "pipelined" else b""))
            await app.streaming.wait()  # the head went out: it said keep-alive
            server.shutdown()
            await wait_all_tasks_blocked()
            app.release.set()
            first = await client.read_response()
            assert (first.status, first.body) == (200, b"part ok")
            assert first.header(b"connection") is None  # told keep-alive before the drain
            if when == "after-the-response":
                await client.send(get("/next"))  # as a client reusing the connection does
            second = await client.read_response()
            assert (second.status, second.body) == (200, b"ok")
            assert second.header(b"connection") == b"close"
            await client.expect_eof()
    assert app.paths == ["/stream", "/next"]


async def test_without_a_next_request_the_drained_connection_closes(
    run_server: Any, connect: Any
) -> None:
    app = StreamingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(get("/stream"))
            await app.streaming.wait()
            server.shutdown()
            await wait_all_tasks_blocked()
            app.release.set()
            assert (await client.read_response()).body == b"part ok"
            await client.expect_eof()  # after a moment's grace, not at the grace period's end
    assert app.paths == ["/stream"]
