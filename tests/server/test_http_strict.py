"""Malformed and refused requests over real sockets.

Every case: the right status, ``content-length`` and ``connection: close`` on the
reply, the connection really closed, the app never called for a bad head, no error
logged, and the server still serving the next connection.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.anyio

TIMEOUT = 5

HOST = b"Host: test\r\n"


class CountingApp:
    """Counts calls; answers 200 after reading the whole body."""

    def __init__(self) -> None:
        self.calls = 0
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


def many_headers(count: int) -> bytes:
    return b"".join(b"X-H%d: v\r\n" % i for i in range(count))


# (raw request, expected status or statuses, config options)
BAD_HEADS: dict[str, tuple[bytes, tuple[int, ...], dict[str, Any]]] = {
    "content-length-and-transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        (400,),
        {},
    ),
    "transfer-encoding-and-content-length": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n",
        (400,),
        {},
    ),
    "repeated-content-length": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        (400,),
        {},
    ),
    "content-length-list": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2, 2\r\n\r\nok",
        (400,),
        {},
    ),
    "differing-content-lengths": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        (400,),
        {},
    ),
    "oversized-head-in-one-send": (
        b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 2000 + b"\r\n\r\n",
        (431,),
        {"max_header_size": 1024},
    ),
    "too-many-headers": (
        b"GET / HTTP/1.1\r\n" + HOST + many_headers(20) + b"\r\n",
        (431,),
        {"max_header_count": 10},
    ),
    "long-target": (
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        (414,),
        {"max_target_length": 100},
    ),
    "connect": (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        (501, 405),
        {},
    ),
    "http2-preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (505, 501), {"http2": False}),
    "http-2.0-version": (b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", (505,), {}),
    "http-1.2-version": (b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", (505,), {}),
    "missing-host": (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", (400,), {}),
    "bare-lf-everywhere": (b"GET / HTTP/1.1\nHost: test\n\n", (400,), {}),
    "bare-lf-in-one-header": (
        b"GET / HTTP/1.1\r\nHost: test\nX-A: b\r\n\r\n",
        (400,),
        {},
    ),
    "obs-fold": (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: one\r\n  two\r\n\r\n", (400,), {}),
    "nul-in-header-value": (b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", (400,), {}),
    "space-before-colon": (b"GET / HTTP/1.1\r\n" + HOST + b"X-A : b\r\n\r\n", (400,), {}),
    "garbage-request-line": (b"HELLO THERE\r\n\r\n", (400,), {}),
    "binary-garbage": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", (400,), {}),
    "asterisk-with-get": (b"GET * HTTP/1.1\r\n" + HOST + b"\r\n", (400,), {}),
    "raw-escape-in-target": (b"GET /\x1b[31m HTTP/1.1\r\n" + HOST + b"\r\n", (400,), {}),
    "duplicate-host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", (400,), {}),
    "content-length-not-a-number": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
        (400,),
        {},
    ),
    "content-length-negative": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
        (400,),
        {},
    ),
    "content-length-with-plus": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: +2\r\n\r\nok",
        (400,),
        {},
    ),
    "unknown-transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
        (400, 501),
        {},
    ),
    "chunked-not-last": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
        (400, 501),
        {},
    ),
    "double-space-in-request-line": (b"GET  / HTTP/1.1\r\n" + HOST + b"\r\n", (400,), {}),
    "fragment-in-target": (b"GET /a#frag HTTP/1.1\r\n" + HOST + b"\r\n", (400,), {}),
    "space-before-first-header": (b"GET / HTTP/1.1\r\n Host: test\r\n\r\n", (400,), {}),
    "body-over-max-body-size-content-length": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 11\r\n\r\nhello world",
        (413,),
        {"max_body_size": 10},
    ),
}


def check_error_reply(raw: bytes, statuses: tuple[int, ...]) -> int:
    """The whole reply: one complete error response, nothing after it. Returns its status."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw
    status_line, *header_lines = head.split(b"\r\n")
    version, status, reason = status_line.split(b" ", 2)
    assert version in (b"HTTP/1.1", b"HTTP/1.0")
    assert int(status) in statuses, raw
    assert reason.strip()
    headers = [line.split(b":", 1) for line in header_lines]
    headers = [(name.lower(), value.strip()) for name, value in headers]
    assert (b"connection", b"close") in headers
    lengths = [value for name, value in headers if name == b"content-length"]
    assert lengths == [str(len(body)).encode()], raw
    assert b"Traceback" not in body
    return int(status)


def check_rejection_logged(caplog: Any, status: int, raw: bytes, *, malformed: bool) -> None:
    """Nothing at WARNING or above but, for a malformed request, one line saying so.

    The line names the status and never repeats what the client sent.
    """
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    if not malformed:  # a limit (413), not a broken request: debug level only
        assert warnings == []
        return
    assert [r.levelno for r in warnings] == [logging.WARNING], warnings
    text = warnings[0].getMessage()
    assert text.startswith("Rejected a bad ")
    assert f": {status} " in text
    for line in raw.split(b"\r\n"):
        if len(line) > 4:
            assert line.decode("latin-1") not in text


async def assert_still_serving(connect: Any, server: Any) -> None:
    client = await connect(server)
    await client.send(b"GET /after HTTP/1.1\r\nHost: test\r\n\r\n")
    response = await client.read_response()
    assert response.status == 200
    assert response.body == b"ok"


@pytest.mark.parametrize("case", list(BAD_HEADS))
async def test_bad_request_head_is_refused(run_server, connect, caplog, case):
    raw, statuses, options = BAD_HEADS[case]
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    app = CountingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, **options) as server:
            client = await connect(server)
            await client.send(raw)
            reply = await client.read_until_eof()
            status = check_error_reply(reply, statuses)
            assert app.calls == 0
            await assert_still_serving(connect, server)
    assert app.calls == 1
    check_rejection_logged(caplog, status, raw, malformed=status != 413)


async def test_oversized_head_in_many_small_sends(run_server, connect):
    app = CountingApp()
    head = b"GET / HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 2000 + b"\r\n\r\n"
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, max_header_size=1024) as server:
            client = await connect(server)
            for start in range(0, len(head), 100):
                try:
                    await client.send(head[start : start + 100])
                except anyio.BrokenResourceError:
                    break  # the server already answered and closed
            reply = await client.read_until_eof()
            check_error_reply(reply, (431,))
            await assert_still_serving(connect, server)
    assert app.calls == 1


async def test_head_just_under_the_limits_is_served(respond_once):
    app = CountingApp()
    head = b"GET /" + b"p" * 90 + b" HTTP/1.1\r\n" + HOST + many_headers(8) + b"\r\n"
    options = {"max_target_length": 100, "max_header_count": 10, "max_header_size": 1024}
    response = await respond_once(app, head, **options)
    assert response.status == 200


# Bad framing inside a body is found only when the app reads the body: the app is
# called, its receive() returns http.disconnect, and the client gets the error.
BAD_BODIES: dict[str, tuple[bytes, int, dict[str, Any]]] = {
    "chunk-size-with-trailing-space": (b"5 \r\nhello\r\n0\r\n\r\n", 400, {}),
    "chunk-size-of-17-hex-digits": (b"10000000000000000\r\nhello\r\n0\r\n\r\n", 400, {}),
    "chunk-size-not-hex": (b"zz\r\nhello\r\n0\r\n\r\n", 400, {}),
    "chunk-without-crlf-after-data": (b"5\r\nhelloXX0\r\n\r\n", 400, {}),
    "bare-lf-after-chunk-size": (b"5\nhello\r\n0\r\n\r\n", 400, {}),
    "nul-in-chunk-extension": (b"5;a=\x00\r\nhello\r\n0\r\n\r\n", 400, {}),
    "bare-lf-in-trailer": (b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n", 400, {}),
    "chunked-body-over-max-body-size": (
        b"6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n",
        413,
        {"max_body_size": 10},
    ),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_chunked_body_is_refused(run_server, connect, caplog, case):
    body, status, options = BAD_BODIES[case]
    caplog.set_level(logging.DEBUG, logger="trio_asgi")
    app = CountingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, **options) as server:
            client = await connect(server)
            await client.send(
                b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + body
            )
            reply = await client.read_until_eof()
            check_error_reply(reply, (status,))
            assert app.received[-1] == {"type": "http.disconnect"}
            await assert_still_serving(connect, server)
    check_rejection_logged(caplog, status, body, malformed=status != 413)


async def test_body_within_max_body_size_is_served(run_server, connect):
    app = CountingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, max_body_size=10) as server:
            client = await connect(server)
            await client.send(
                b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 10\r\n\r\n0123456789"
            )
            response = await client.read_response()
            await client.send(
                b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
                b"5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"
            )
            second = await client.read_response()
    assert (response.status, second.status) == (200, 200)
    assert b"".join(m.get("body", b"") for m in app.received) == b"0123456789" * 2


async def test_bad_request_after_a_good_one_on_the_same_connection(run_server, connect):
    app = CountingApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"GET /good HTTP/1.1\r\n" + HOST + b"\r\nGARBAGE\r\n\r\n")
            good = await client.read_response()
            rest = await client.read_until_eof()
    assert good.status == 200
    check_error_reply(rest, (400,))
    assert app.calls == 1


async def test_absolute_form_target_reaches_the_app_as_a_path(respond_once):
    scopes: list[Any] = []

    async def app(scope, receive, send):
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    response = await respond_once(app, b"GET http://test/x/y?z=1 HTTP/1.1\r\n" + HOST + b"\r\n")
    assert response.status == 204
    assert scopes[0]["path"] == "/x/y"
    assert scopes[0]["raw_path"] == b"/x/y"
    assert scopes[0]["query_string"] == b"z=1"
