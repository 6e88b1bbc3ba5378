"""What the client sees and what is logged when an app misbehaves."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from trio_asgi import ASGIProtocolError, ClientDisconnected

pytestmark = pytest.mark.anyio

TIMEOUT = 5
GET = b"GET /boom HTTP/1.1\r\nHost: test\r\n\r\n"
SECRET = "s3cret-detail-in-exception"


def app_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name.startswith("trio_asgi") and r.levelno >= logging.ERROR
    ]


async def assert_500(client: Any) -> Any:
    response = await client.read_response()
    assert response.status == 500
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.header(b"connection") == b"close"
    assert SECRET.encode() not in response.body
    assert b"Traceback" not in response.body
    await client.expect_eof()
    return response


async def test_exception_before_response_start_gives_500_and_one_log(run_server, connect, caplog):
    async def app(scope, receive, send):
        raise RuntimeError(SECRET)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await assert_500(client)
    (record,) = app_errors(caplog)
    assert record.exc_info is not None
    assert record.exc_info[0] is RuntimeError
    assert SECRET in caplog.text  # the traceback is in the log, not in the response


async def test_exception_after_start_with_known_length_still_gives_500(run_server, connect, caplog):
    """The head of a response with a Content-Length is held for the first body chunk,
    so nothing has reached the client yet and a 500 is still possible."""

    async def app(scope, receive, send):
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
        )
        raise RuntimeError(SECRET)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await assert_500(client)
    assert len(app_errors(caplog)) == 1


async def test_exception_after_body_started_closes_the_connection(run_server, connect, caplog):
    sent_some = anyio.Event()
    go_on = anyio.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        sent_some.set()
        await go_on.wait()
        raise RuntimeError(SECRET)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await sent_some.wait()
            go_on.set()
            raw = await client.read_until_eof()
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"partial" in raw
    assert not raw.endswith(b"0\r\n\r\n")  # the chunked body was never terminated
    assert SECRET.encode() not in raw
    assert len(app_errors(caplog)) == 1


async def test_app_returning_without_a_response_gives_500(run_server, connect, caplog):
    async def app(scope, receive, send):
        await receive()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await assert_500(client)
    assert len(app_errors(caplog)) == 1


async def test_app_returning_mid_body_closes_the_connection(run_server, connect, caplog):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET + GET)  # the second request must not be served
            raw = await client.read_until_eof()
    assert raw.count(b"HTTP/1.1 ") == 1
    assert b"half" in raw
    assert not raw.endswith(b"0\r\n\r\n")
    assert len(app_errors(caplog)) == 1


async def test_app_returning_mid_body_with_content_length_closes(run_server, connect):
    async def app(scope, receive, send):
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-length", b"10")]})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            raw = await client.read_until_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-length: 10" in head.lower()
    assert body == b"12345"


INVALID_MESSAGES: dict[str, dict[str, Any]] = {
    "unknown-type": {"type": "http.response.begin", "status": 200},
    "body-before-start": {"type": "http.response.body", "body": b"x"},
    "no-type": {"status": 200},
    "status-101": {"type": "http.response.start", "status": 101, "headers": []},
    "status-100": {"type": "http.response.start", "status": 100, "headers": []},
    "status-as-str": {"type": "http.response.start", "status": "200", "headers": []},
    "status-600": {"type": "http.response.start", "status": 600, "headers": []},
    "header-value-str": {"type": "http.response.start", "status": 200, "headers": [(b"a", "b")]},
    "headers-as-dict": {"type": "http.response.start", "status": 200, "headers": {b"a": b"b"}},
    "crlf-in-header-value": {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a", b"ok\r\nSet-Cookie: evil=1")],
    },
    "lf-in-header-value": {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a", b"ok\nSet-Cookie: evil=1")],
    },
    "nul-in-header-value": {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a", b"ok\x00evil=1")],
    },
    "crlf-in-header-name": {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x-a\r\nSet-Cookie", b"evil=1")],
    },
    "space-in-header-name": {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"x a", b"evil=1")],
    },
}


@pytest.mark.parametrize("case", list(INVALID_MESSAGES))
async def test_invalid_message_raises_from_send_and_gives_500(run_server, connect, caplog, case):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        try:
            await send(INVALID_MESSAGES[case])
        except ASGIProtocolError as exc:
            raised.append(exc)
            raise

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            response = await client.read_response()
            rest = await client.read_until_eof()
    assert len(raised) == 1
    assert response.status == 500
    assert rest == b""
    assert b"evil" not in repr(response.headers).encode()
    assert all(b"evil" not in value for _, value in response.headers)
    assert len(app_errors(caplog)) == 1


async def test_app_can_recover_from_an_invalid_start(respond_once):
    """Nothing was sent when send() refused the message: a valid one still works."""

    async def app(scope, receive, send):
        with pytest.raises(ASGIProtocolError):
            await send(INVALID_MESSAGES["crlf-in-header-value"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    response = await respond_once(app, GET)
    assert response.status == 200
    assert response.body == b"fine"
    assert all(b"evil" not in name + value for name, value in response.headers)


async def test_body_longer_than_content_length_raises(run_server, connect):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-length", b"2")]})
        try:
            await send({"type": "http.response.body", "body": b"too long"})
        except ASGIProtocolError as exc:
            raised.append(exc)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            raw = await client.read_until_eof()
    assert len(raised) == 1
    assert b"too long" not in raw


async def test_send_after_the_response_is_complete_raises(run_server, connect, caplog):
    raised: list[BaseException] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        for message in (
            {"type": "http.response.body", "body": b"more"},
            {"type": "http.response.start", "status": 200, "headers": []},
        ):
            try:
                await send(message)
            except (ASGIProtocolError, OSError) as exc:
                raised.append(exc)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET + GET)
            first = await client.read_response()
            second = await client.read_response()
    assert len(raised) == 4  # two refused sends in each of the two requests
    assert all(isinstance(exc, ASGIProtocolError) for exc in raised)
    assert (first.body, second.body) == (b"done", b"done")  # the connection stayed usable
    assert app_errors(caplog) == []


async def test_send_after_client_left_raises_oserror_and_is_not_logged(leave_mid_response, caplog):
    raised: list[BaseException] = []
    finished = anyio.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
            # The body is read and the response is in progress: this waits for the client.
            assert await receive() == {"type": "http.disconnect"}
            try:
                await send({"type": "http.response.body", "body": b"y", "more_body": True})
            except OSError as exc:
                raised.append(exc)
                raise  # let our own exception escape: that must not be logged as an error
        finally:
            finished.set()

    await leave_mid_response(app, GET, finished)
    assert len(raised) == 1
    assert isinstance(raised[0], ClientDisconnected)
    assert isinstance(raised[0], OSError)
    assert app_errors(caplog) == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_client_disconnected_inside_an_exception_group_is_not_logged(
    leave_mid_response, caplog
):
    """Apps with task groups let ClientDisconnected escape wrapped in an ExceptionGroup."""
    finished = anyio.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await receive()
            async with anyio.create_task_group() as nursery:

                async def stream() -> None:
                    assert await receive() == {"type": "http.disconnect"}
                    await send({"type": "http.response.body", "body": b"y", "more_body": True})

                nursery.start_soon(stream)
        finally:
            finished.set()

    await leave_mid_response(app, GET, finished)
    assert app_errors(caplog) == []


async def test_app_exception_does_not_affect_other_connections(run_server, connect):
    async def app(scope, receive, send):
        if scope["path"] == "/boom":
            raise ValueError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            bad = await connect(server)
            await bad.send(GET)
            assert (await bad.read_response()).status == 500
            await bad.aclose()
            good = await connect(server)
            await good.send(b"GET /ok HTTP/1.1\r\nHost: test\r\n\r\n")
            assert (await good.read_response()).body == b"fine"


async def test_write_to_a_closed_client_raises_client_disconnected(run_server, connect, caplog):
    """The app never calls receive(): it learns the client is gone from send() itself."""
    raised: list[BaseException] = []
    finished = anyio.Event()
    head_sent = anyio.Event()

    async def app(scope, receive, send):
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            head_sent.set()
            while True:
                await send({"type": "http.response.body", "body": b"x" * 4096, "more_body": True})
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            finished.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(GET)
            await head_sent.wait()
            await client.aclose()
            await finished.wait()
    assert len(raised) == 1
    assert isinstance(raised[0], ClientDisconnected)
    assert app_errors(caplog) == []
