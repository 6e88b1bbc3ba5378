"""What the fuzz tests found, as plain tests with the exact bytes.

The ``xfail(strict=True)`` ones are server bugs not fixed yet: when a fix lands the
test passes, strict xfail turns that into a failure, and the marker comes off.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from fuzz_apps import echo_app

from trio_asgi import Config
from trio_asgi.testing import (
    RecordingApp,
    assert_app_not_called,
    expect_one_response_each,
    open_test_server,
)


async def _answer(data: bytes, **options: object) -> tuple[list[int], RecordingApp]:
    app = RecordingApp(echo_app)
    async with open_test_server(app, **options) as server:
        client = await server.connect()
        await client.send(data)
        responses = await expect_one_response_each(client, ["GET"])
    return [r.status for r in responses], app


@pytest.mark.parametrize(
    "coding", [b"chunked, chunked", b"chunked, gzip", b"chunked\r\nTransfer-Encoding: chunked"]
)
async def test_transfer_codings_we_do_not_serve_get_501(coding: bytes, autojump_clock) -> None:
    # invalid_requests() expects 400 for these; RFC 9112 section 6.1 allows 501 (h11's).
    data = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n"
    statuses, app = await _answer(data)
    assert statuses == [501]
    assert_app_not_called(app)


async def test_a_head_request_gets_an_error_response_without_a_body(autojump_clock) -> None:
    # Found by test_misbehaving_apps_never_break_the_server: an app that sends an invalid
    # message answered a HEAD with "500 ... Internal Server Error\n": content after HEAD.
    async def invalid(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 0})

    for data, status in [
        (b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 500),
        (b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    ]:
        app = echo_app if status == 400 else invalid
        async with open_test_server(app, lifespan="off", raise_app_exceptions=False) as server:
            client = await server.connect()
            await client.send(data)
            [response] = await expect_one_response_each(client, ["HEAD"])
        assert response.status == status
        assert response.header("content-length") == b"%d" % len(response.reason + b"\n")


# Regression: Host values were not checked (RFC 9112 section 3.2 says 400).
@pytest.mark.parametrize("host", [b"a\\b", b"user@a", b"a/b", b"[::1", b"a b", b"a:x"])
async def test_an_invalid_host_gets_400(host: bytes, autojump_clock) -> None:
    statuses, app = await _answer(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert statuses == [400]
    assert_app_not_called(app)


# Policy, not a rule: visible ASCII that RFC 3986 keeps out of URIs is accepted in targets
# (browsers send some of it unencoded in query strings); the app sees it as sent.
@pytest.mark.parametrize("target", [b'/"', b"/{x}", b"/a|b", b"/<", b"/\\", b"/^", b"/`"])
async def test_a_target_with_non_uri_characters_reaches_the_app(
    target: bytes, autojump_clock
) -> None:
    statuses, app = await _answer(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert statuses == [200]
    assert [scope["raw_path"] for scope in app.scopes] == [target]


# max_header_size bounds the header fields; the request line has its own limit
# (max_target_length), so a head just under the limit in fields is served whatever its line.
async def test_max_header_size_bounds_the_header_fields(autojump_clock) -> None:
    line = b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\n"
    fields = b"Host: a\r\nX-Pad: "
    pad = Config.max_header_size - len(fields) - len(b"\r\n\r\n")
    at_limit = line + fields + b"a" * pad + b"\r\n\r\n"
    statuses, _ = await _answer(at_limit)
    assert statuses == [200]
    statuses, app = await _answer(line + fields + b"a" * (pad + 1) + b"\r\n\r\n")
    assert statuses == [431]
    assert_app_not_called(app)


# Regression: the session's task group was cancelled (the app's echo failed) while the
# reader still waited to write its close frame: the client saw 1006 in about half the
# schedules.
@pytest.mark.parametrize(
    ("frames", "code"),
    [
        # a text message "", then a close frame with the invalid code 0: we must fail with 1002
        (b"\x81\x80\x00\x00\x00\x00\x88\x82\x00\x00\x00\x00\x00\x00", 1002),
        # a text message "", then a close frame without a code: we must answer the close
        (b"\x81\x80\x00\x00\x00\x00\x88\x80\x00\x00\x00\x00", 1000),
    ],
)
def test_close_frame_survives_a_racing_echo(frames: bytes, code: int) -> None:
    # trio shuffles the run queue outside hypothesis: 20 runs meet the bad order.
    async def once() -> int:
        async with open_test_server(echo_app) as server:
            client = await server.connect()
            ws = await client.websocket("/echo")
            await ws.send_raw(frames)
            got, _ = await ws.receive_close()
            return got

    codes = {trio.run(once, clock=trio.testing.MockClock(autojump_threshold=0)) for _ in range(20)}
    assert codes <= {code, 1005}
