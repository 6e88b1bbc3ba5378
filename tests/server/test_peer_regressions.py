"""One regression test per HTTP/1.1 bug of our peers (see PEERS.md), over real sockets."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from trio_asgi import ASGIProtocolError, ClientDisconnected, LifespanFailure, serve

pytestmark = pytest.mark.anyio

TIMEOUT = 5
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def ok(send: Any, body: bytes = b"ok") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class LifespanRecorder:
    """A lifespan-aware app that records startup/shutdown and streams forever on /stream."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.streaming = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            self.events.append("startup")
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            self.events.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * 65536
        while True:  # a client that does not read makes one of these sends block
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.streaming.set()


async def test_regression_non_reading_client_cannot_block_graceful_shutdown(server_config, connect):
    """Hypercorn-trio shields socket writes: one non-reading client kept it alive."""
    app = LifespanRecorder()
    config = server_config(lifespan="on", timeout_graceful_shutdown=0.5, timeout_write=60)
    with anyio.fail_after(10):  # real time: the grace period is what is under test
        async with anyio.create_task_group() as nursery:
            server = await nursery.start(serve, app, config)
            client = await connect(server)
            await client.send(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            await app.streaming.wait()  # and we never read
            server.shutdown()
    assert app.events == ["startup", "shutdown"]


async def test_regression_non_reading_client_cannot_block_outer_cancellation(
    server_config, connect
):
    app = LifespanRecorder()
    config = server_config(lifespan="on", timeout_graceful_shutdown=60, timeout_write=60)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as nursery:
            server = await nursery.start(serve, app, config)
            client = await connect(server)
            await client.send(b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n")
            await app.streaming.wait()
            nursery.cancel_scope.cancel()
    assert app.events == ["startup", "shutdown"]


@pytest.mark.parametrize(
    "when", ["at-once", "after-receive", "after-startup-complete", "raises-after-complete"]
)
async def test_regression_lifespan_that_returns(run_server, connect, caplog, when):
    """An app that returns from the lifespan scope crashed Hypercorn's trio worker."""

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            if when == "at-once":
                return
            await receive()
            if when == "after-receive":
                return
            await send({"type": "lifespan.startup.complete"})
            if when == "raises-after-complete":
                raise RuntimeError("lifespan task died")
            return
        await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, lifespan="auto") as server:
            client = await connect(server)
            await client.send(GET)
            assert (await client.read_response()).body == b"ok"
    # Returning is not an error; raising after startup is the app's bug, logged once.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == (1 if when == "raises-after-complete" else 0)


async def test_regression_lifespan_that_returns_with_lifespan_on(server_config):
    async def app(scope, receive, send):
        return

    with anyio.fail_after(TIMEOUT), pytest.raises(LifespanFailure):
        await serve(app, server_config(lifespan="on"))


async def test_regression_queued_disconnect_in_cancelled_scope(leave_mid_response):
    """Starlette's is_disconnected(): a receive() in an already-cancelled scope."""
    seen: list[Any] = []
    done = anyio.Event()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        seen.append(await receive())  # http.disconnect: the client left
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            seen.append(await receive())
        done.set()

    await leave_mid_response(app, GET, done)
    assert seen == [{"type": "http.disconnect"}] * 2


async def test_regression_outer_cancellation_runs_lifespan_shutdown(server_config, connect):
    """Cancelling serve() from outside skipped lifespan shutdown in Hypercorn."""
    app = LifespanRecorder()
    with anyio.fail_after(TIMEOUT):
        with anyio.CancelScope() as outer:
            async with anyio.create_task_group() as nursery:
                server = await nursery.start(serve, app, server_config(lifespan="on"))
                client = await connect(server)
                await client.send(GET)
                await client.read_until(b"\r\n\r\n")  # a request is in flight
                outer.cancel()
        assert outer.cancelled_caught
    assert app.events == ["startup", "shutdown"]


async def test_regression_content_length_with_transfer_encoding_closes(run_server, connect):
    """h11 accepts CL+TE and keeps the connection open: a request-smuggling vector."""
    paths: list[str] = []

    async def app(scope, receive, send):
        paths.append(scope["path"])
        await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(
                b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 43\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
            )
            response = await client.read_response()
            rest = await client.read_until_eof()
    assert response.status == 400
    assert response.header(b"connection") == b"close"
    assert rest == b""
    assert paths == []


async def test_regression_oversized_head_in_one_read(run_server, connect):
    """h11's header limit only covers incomplete data: a whole head in one read got past it."""
    calls: list[Any] = []

    async def app(scope, receive, send):
        calls.append(scope)
        await ok(send)

    head = b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:  # the default max_header_size: 16 KiB
            client = await connect(server)
            await client.send(head)
            response = await client.read_response()
            await client.expect_eof()
    assert response.status == 431
    assert calls == []


@pytest.mark.parametrize("status", [299, 499, 599, 209])
async def test_regression_empty_reason_phrase(run_server, connect, status):
    """``HTTP/1.1 299 `` made h2load count every response as failed."""

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            status_line = await client.read_until(b"\r\n")
    version, code, reason = status_line[:-2].split(b" ", 2)
    assert (version, int(code)) == (b"HTTP/1.1", status)
    assert reason.strip()


async def test_regression_connect_never_reaches_the_app(run_server, connect):
    calls: list[Any] = []

    async def app(scope, receive, send):
        calls.append(scope)
        await ok(send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"CONNECT internal:22 HTTP/1.1\r\nHost: internal:22\r\n\r\n")
            response = await client.read_response()
            await client.expect_eof()
    assert response.status in (405, 501)
    assert response.header(b"connection") == b"close"
    assert calls == []


@pytest.mark.parametrize(
    "header",
    [
        (b"location", b"/ok\r\nSet-Cookie: session=evil"),
        (b"location", b"/ok\nSet-Cookie: session=evil"),
        (b"location", b"/ok\rSet-Cookie: session=evil"),
        (b"x-evil\r\nSet-Cookie", b"session=evil"),
    ],
)
async def test_regression_response_splitting(run_server, connect, header):
    """CR/LF in an app's header value let a request inject headers (CVE-2020-7695)."""
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 302, "headers": [header]})
        except ASGIProtocolError as exc:
            raised.append(exc)
            raise

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            raw = await client.read_until_eof()
    assert len(raised) == 1
    assert b"evil" not in raw
    assert raw.startswith(b"HTTP/1.1 500 ")


async def test_regression_log_injection(run_server, connect, caplog):
    """Terminal escapes through the decoded path reached the log (CVE-2020-7694)."""
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    paths: list[str] = []

    async def app(scope, receive, send):
        paths.append(scope["path"])
        if scope["path"].endswith("boom"):
            raise RuntimeError("boom")
        await ok(send)

    log_format = '{client} - "{request_line}" {status} {user_agent}'
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, access_log_format=log_format) as server:
            for target in (b"/%1b[31mred%1b[0m", b"/%1b]0;owned%07boom"):
                client = await connect(server)
                await client.send(b"GET " + target + b" HTTP/1.1\r\nHost: test\r\n\r\n")
                await client.read_response()
                await client.aclose()  # the 500 closes; don't keep it lingering
            # A raw escape byte in the target: refused before the app.
            client = await connect(server)
            await client.send(b"GET /\x1b[31mraw HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await client.read_response()).status == 400
            await client.aclose()
            # h11 lets control bytes through in header values: then the log must escape them.
            client = await connect(server)
            await client.send(b"GET /ua HTTP/1.1\r\nHost: test\r\nUser-Agent: \x1b[2J\r\n\r\n")
            ua_status = (await client.read_response()).status
            await client.aclose()
    assert paths[:2] == ["/\x1b[31mred\x1b[0m", "/\x1b]0;owned\x07boom"]  # the app gets them
    access = [r for r in caplog.records if r.name == "trio_asgi.access"]
    assert len(access) == (3 if ua_status == 200 else 2)
    if ua_status == 200:
        assert "\\x1b[2J" in access[-1].getMessage()
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert "\x1b" not in text, record
        assert "\x07" not in text, record


async def test_regression_slowloris_head_times_out(run_server, connect):
    """Uvicorn had no header-read timeout: a client trickling its head held a connection."""
    calls: list[Any] = []

    async def app(scope, receive, send):
        calls.append(scope)
        await ok(send)

    with anyio.fail_after(TIMEOUT):  # real time: the head deadline is 0.2 s
        async with run_server(app, timeout_request_head=0.2) as server:
            client = await connect(server)
            await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            raw = await client.read_until_eof()
    assert raw.startswith(b"HTTP/1.1 408 ")
    assert calls == []


async def test_regression_write_timeout_for_a_client_that_stops_reading(
    run_server, connect, caplog
):
    """Peers had no write timeout: a client that stops reading held its app forever."""
    raised: list[BaseException] = []
    finished = anyio.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            chunk = b"x" * 65536
            while True:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            finished.set()

    with anyio.fail_after(TIMEOUT):  # real time: the write timeout is 0.3 s
        async with run_server(app, timeout_write=0.3) as server:
            client = await connect(server)
            await client.send(GET)
            await finished.wait()  # and we never read
    assert len(raised) == 1
    assert isinstance(raised[0], ClientDisconnected)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
