"""WSGI apps served over real sockets, on trio and asyncio: bodies both ways, errors,
backpressure, client disconnects, the thread bound, and shutdown."""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.validate import validator

import anyio
import httpx
import pytest
from wsgi_helpers import Environ, Recorder, StartResponse, endless_app, live_wsgi

from trio_asgi._wsgi import WSGIAdapter

pytestmark = pytest.mark.anyio


def hello(environ: Environ, start_response: StartResponse) -> list[bytes]:
    body = b"hello " + environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def upper_lines(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """Streams the body back line by line, upper-cased, after a write()."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"lines:")
    for line in environ["wsgi.input"]:
        yield line.upper()


def echo_sized(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Reads the body in pieces, then answers it whole: httpx sends the whole request
    before it reads (a streamed echo could fill both directions' buffers and stall;
    test_wsgi_memory.py streams both ways at once with a client that reads meanwhile)."""
    stream = environ["wsgi.input"]
    pieces = []
    while chunk := stream.read(65536):
        pieces.append(chunk)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"".join(pieces)]


async def test_validated_apps_end_to_end() -> None:
    async with httpx.AsyncClient() as client:
        async with live_wsgi(validator(hello)) as live:
            response = await client.get(f"{live.url}/caf%C3%A9")
            assert response.status_code == 200
            assert response.content == "hello /café".encode()
            assert response.headers["content-length"] == str(len(response.content))
        async with live_wsgi(validator(upper_lines)) as live:
            response = await client.post(live.url, content=b"a\nbb\nccc")
            assert response.content == b"lines:A\nBB\nCCC"
            assert response.headers["transfer-encoding"] == "chunked"


async def test_large_echo_and_chunked_upload() -> None:
    data = bytes(range(256)) * 4096 * 4  # 4 MiB

    async def chunks() -> Any:
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    async with httpx.AsyncClient(timeout=10) as client, live_wsgi(validator(echo_sized)) as live:
        response = await client.post(live.url, content=data)
        assert response.content == data
        response = await client.post(live.url, content=chunks())  # no Content-Length
        assert response.content == data


async def test_app_errors_give_500_or_a_closed_connection(caplog: pytest.LogCaptureFixture) -> None:
    def fails_early(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise ValueError("early")

    def fails_late(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise ValueError("late")

    def custom_error(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            int("handled")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Length", "4")], sys.exc_info())
        return [b"oops"]

    async with httpx.AsyncClient() as client:
        async with live_wsgi(fails_early) as live:
            assert (await client.get(live.url)).status_code == 500
        async with live_wsgi(fails_late) as live:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(live.url)
        async with live_wsgi(custom_error) as live:
            response = await client.get(live.url)
            assert (response.status_code, response.content) == (503, b"oops")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2, errors


async def _wait_until(predicate: Any, what: str) -> None:
    """Poll a thread's progress (no event crosses from the app's thread) under a deadline."""
    with anyio.fail_after(10):
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_slow_client_stalls_the_app_thread_then_disconnect_stops_it() -> None:
    """A client that stops reading holds up the app's iteration (bounded by the socket
    buffers, not the body); closing the connection stops the iteration and runs close()."""
    recorder = Recorder()
    async with live_wsgi(endless_app(recorder)) as live:
        sock = socket.create_connection((live.host, live.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await _wait_until(lambda: recorder.produced > 0, "the app started")
        # Wait for the producer to stall: the count stops moving.
        with anyio.fail_after(10):
            last = -1
            while recorder.produced != last:
                last = recorder.produced
                await anyio.sleep(0.2)
        assert recorder.produced * 65536 < 32 * 1024 * 1024, recorder.produced
        assert not recorder.closed.is_set()
        stalled = recorder.produced
        sock.setblocking(False)
        with anyio.fail_after(10):
            while recorder.produced <= stalled:  # reading lets the app go on
                await anyio.wait_readable(sock)
                sock.recv(1 << 20)
        sock.close()
        await _wait_until(recorder.closed.is_set, "close() called")


async def test_threads_are_bounded() -> None:
    release = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def blocking(environ: Environ, start_response: StartResponse) -> list[bytes]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(10)
        with lock:
            running -= 1
        start_response("200 OK", [])
        return [b"done"]

    async with live_wsgi(blocking, wsgi_threads=2) as live, httpx.AsyncClient() as client:
        adapter = live.server._state.app  # the adapted app this server runs
        assert isinstance(adapter, WSGIAdapter)
        results: list[int] = []

        async def get() -> None:
            results.append((await client.get(live.url)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(get)
            limiter = adapter.threads._limiter

            def two_wait() -> bool:
                if limiter is None:
                    return False
                stats = limiter.statistics()
                return running == 2 and stats.tasks_waiting == 2

            with anyio.fail_after(10):
                while not two_wait():
                    await anyio.sleep(0.01)
                    limiter = adapter.threads._limiter
            assert adapter.threads.started == 2
            release.set()
        assert results == [200] * 4
        assert most == 2
        assert adapter.threads.started == 2


async def test_shutdown_waits_for_app_threads_within_the_grace_period() -> None:
    started = threading.Event()
    finish = threading.Event()

    def slow(environ: Environ, start_response: StartResponse) -> list[bytes]:
        started.set()
        finish.wait(10)
        start_response("200 OK", [])
        return [b"finished"]

    async with httpx.AsyncClient() as client, live_wsgi(slow) as live:
        async with anyio.create_task_group() as tg:
            responses: list[httpx.Response] = []

            async def get() -> None:
                responses.append(await client.get(live.url))

            tg.start_soon(get)
            await _wait_until(started.is_set, "the app started")
            live.server.shutdown()
            await _wait_until(lambda: live.server._state.shutting_down, "shutdown began")
            finish.set()
        assert responses[0].content == b"finished"
        assert responses[0].headers["connection"] == "close"


async def test_a_stuck_app_thread_does_not_keep_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past the grace period the call is abandoned (a thread cannot be killed): the client
    gets a 503, serve() returns, and the daemon thread ends on its own later."""
    started = threading.Event()
    stuck = threading.Event()
    recorder = Recorder()

    def hangs(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [])
        started.set()
        stuck.wait(30)
        return _Tracked(recorder)

    try:
        async with anyio.create_task_group() as tg:

            async def get() -> None:
                # Nothing was sent yet (start_response sends nothing by itself): the
                # client learns the grace period ran out, like an ASGI app's would.
                async with httpx.AsyncClient() as client:
                    assert (await client.get(live.url)).status_code == 503

            async with live_wsgi(hangs, timeout_graceful_shutdown=0.3) as live:
                tg.start_soon(get)
                await _wait_until(started.is_set, "the app started")
        assert any("still running" in r.getMessage() for r in caplog.records)
    finally:
        stuck.set()
    # The abandoned thread sends into a closed connection: its iterable is still closed.
    await _wait_until(recorder.closed.is_set, "close() called")


class _Tracked:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def __iter__(self) -> Iterator[bytes]:
        yield b"late"

    def close(self) -> None:
        self.recorder.closed.set()


async def test_websocket_upgrade_is_refused() -> None:
    async with live_wsgi(hello) as live:
        stream = await anyio.connect_tcp(live.host, live.port)
        async with stream:
            await stream.send(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            assert (await stream.receive()).startswith(b"HTTP/1.1 403 ")
