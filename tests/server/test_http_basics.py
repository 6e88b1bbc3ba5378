"""HTTP/1.1 over real sockets: request bodies, keep-alive, pipelining, 100-continue, framing."""

from __future__ import annotations

import os
import socket
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

pytestmark = pytest.mark.anyio

TIMEOUT = 5


async def send_text(send: Any, body: bytes, status: int = 200, headers: Any = ()) -> None:
    """A whole response with a Content-Length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    """All ``http.request`` messages and the body they add up to."""
    messages = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages.append(message)
        if not message.get("more_body", False):
            return b"".join(m["body"] for m in messages), messages


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the method, path and body it got."""
    body, _ = await read_body(receive)
    await send_text(send, f"{scope['method']} {scope['path']} ".encode() + body)


# --- request bodies -------------------------------------------------------------------------


async def test_get_without_body_gets_one_empty_request_message(make_request, respond_once):
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        _, messages = await read_body(receive)
        seen.extend(messages)
        await send_text(send, b"ok")

    response = await respond_once(app, make_request("/"))
    assert response.status == 200
    assert response.body == b"ok"
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}]


@pytest.mark.parametrize(
    ("headers", "first", "rest"),
    [
        pytest.param("Content-Length: 6\r\n", b"abc", b"def", id="content-length"),
        pytest.param(
            "Transfer-Encoding: chunked\r\n",
            b"3\r\nabc\r\n",
            b"3\r\ndef\r\n0\r\n\r\n",
            id="chunked",
        ),
    ],
)
async def test_body_streamed_as_several_messages(run_server, connect, headers, first, rest):
    """The app sees the first part with more_body=True before the client sends the rest."""
    got_first = anyio.Event()
    seen: list[dict[str, Any]] = []

    async def app(scope, receive, send):
        message = await receive()
        seen.append(message)
        got_first.set()
        body, messages = await read_body(receive)
        seen.extend(messages)
        await send_text(send, message["body"] + body)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(f"POST /up HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode() + first)
            await got_first.wait()
            await client.send(rest)
            response = await client.read_response()
    assert response.body == b"abcdef"
    assert seen[0] == {"type": "http.request", "body": b"abc", "more_body": True}
    assert [m["more_body"] for m in seen] == [True] * (len(seen) - 1) + [False]
    assert all(m["type"] == "http.request" for m in seen)


async def test_chunked_body_of_several_chunks_with_a_pipelined_request(run_server, connect):
    """Several chunks in one read, with the next request already buffered behind them."""
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server:
            client = await connect(server)
            await client.send(
                b"POST /a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n3\r\ndef\r\n2\r\ngh\r\n0\r\n\r\n"
                b"GET /b HTTP/1.1\r\nHost: test\r\n\r\n"
            )
            first = await client.read_response()
            second = await client.read_response()
    assert first.status == 200
    assert first.body == b"POST /a abcdefgh"
    assert second.body == b"GET /b "


async def test_chunked_body_with_an_incomplete_last_chunk_line(run_server, connect):
    """Two whole chunks and the start of the last-chunk line arrive together."""
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server:
            client = await connect(server)
            await client.send(
                b"POST /a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n3\r\ndef\r\n0\r"
            )
            await client.send(b"\n\r\n")
            response = await client.read_response()
    assert response.status == 200
    assert response.body == b"POST /a abcdef"


async def test_large_body_arrives_whole(run_server, url):
    payload = os.urandom(300_000)
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server, httpx.AsyncClient() as http:
            response = await http.post(url(server) + "/big", content=payload)
    assert response.status_code == 200
    assert response.content == b"POST /big " + payload


# --- connection reuse -----------------------------------------------------------------------


async def test_keep_alive_serves_two_requests_on_one_connection(run_server, connect, make_request):
    ports: list[int] = []

    async def app(scope, receive, send):
        ports.append(scope["client"][1])
        await send_text(send, scope["path"].encode())

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/one"))
            first = await client.read_response()
            await client.send(make_request("/two"))
            second = await client.read_response()
    assert (first.body, second.body) == (b"/one", b"/two")
    assert first.header(b"connection") is None
    assert ports[0] == ports[1]


async def test_keep_alive_with_httpx(run_server, url):
    ports: list[int] = []

    async def app(scope, receive, send):
        ports.append(scope["client"][1])
        await send_text(send, b"hi")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server, httpx.AsyncClient() as http:
            for _ in range(3):
                response = await http.get(url(server))
                assert response.text == "hi"
    assert len(set(ports)) == 1


async def test_pipelined_requests_answered_in_order(run_server, connect, make_request):
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server:
            client = await connect(server)
            await client.send(
                make_request("/1")
                + make_request("/2", "POST", body=b"two")
                + make_request("/3", "POST", headers=[("Transfer-Encoding", "chunked")])
                + b"5\r\nthree\r\n0\r\n\r\n"
            )
            bodies = [(await client.read_response()).body for _ in range(3)]
    assert bodies == [b"GET /1 ", b"POST /2 two", b"POST /3 three"]


async def test_http10_response_is_close_delimited(run_server, connect):
    async def app(scope, receive, send):
        assert scope["http_version"] == "1.0"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"GET / HTTP/1.0\r\n\r\n")
            raw = await client.read_until_eof()
    head, _, body = raw.partition(b"\r\n\r\n")
    lowered = head.lower()
    assert b"transfer-encoding" not in lowered
    assert b"content-length" not in lowered
    assert body == b"hello world"


async def test_http10_with_content_length_still_closes(run_server, connect):
    async def app(scope, receive, send):
        await send_text(send, b"ten bytes!")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(b"GET / HTTP/1.0\r\n\r\n")
            response = await client.read_response()
            await client.expect_eof()
    assert response.body == b"ten bytes!"
    assert response.http_version in (b"1.0", b"1.1")


async def test_connection_close_request_closes_after_the_response(
    run_server, connect, make_request
):
    async def app(scope, receive, send):
        await send_text(send, b"bye")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/", headers=[("Connection", "close")]))
            response = await client.read_response()
            await client.expect_eof()
    assert response.body == b"bye"
    assert response.header(b"connection") == b"close"


# --- Expect: 100-continue -------------------------------------------------------------------


def peek_nonblocking(stream: anyio.abc.SocketStream) -> bytes:
    """What the kernel has received on this socket so far, without consuming it."""
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    with socket.socket(fileno=os.dup(raw.fileno())) as dup:
        try:
            return dup.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return b""


async def test_100_continue_only_when_the_app_first_receives(run_server, connect):
    app_called = anyio.Event()
    client_checked = anyio.Event()
    about_to_receive = anyio.Event()

    async def app(scope, receive, send):
        app_called.set()
        await client_checked.wait()
        about_to_receive.set()
        body, _ = await read_body(receive)
        await send_text(send, body)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(
                b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            await app_called.wait()
            # The app runs in the connection's task: an eager 100 would already be here.
            assert peek_nonblocking(client.stream) == b""
            client_checked.set()
            await about_to_receive.wait()
            interim = await client.read_until(b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
            await client.send(b"hello")
            response = await client.read_response()
    assert response.status == 200
    assert response.body == b"hello"


async def test_no_100_continue_when_the_app_answers_without_reading(run_server, connect):
    async def app(scope, receive, send):
        await send_text(send, b"no thanks", status=417)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(
                b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            response = await client.read_response()
            # The body never came, so the connection cannot be reused.
            await client.expect_eof()
    assert response.informational == []
    assert response.status == 417
    assert response.header(b"connection") == b"close"


# --- framing chosen by the server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", 200), ("GET", 204), ("GET", 304)],
)
async def test_no_body_for_head_204_304(run_server, connect, make_request, method, status):
    async def app(scope, receive, send):
        headers = [(b"content-length", b"5")] if status == 200 else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello" if status == 200 else b""})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            # A second request right behind: any stray body byte would corrupt its response.
            await client.send(make_request("/", method) + make_request("/", method))
            first = await client.read_until(b"\r\n\r\n")
            second = await client.read_until(b"\r\n\r\n")
            await client.send(make_request("/", method, headers=[("Connection", "close")]))
            third = await client.read_until(b"\r\n\r\n")
            rest = await client.read_until_eof()
    for head in (first, second, third):
        assert head.startswith(b"HTTP/1.1 %d " % status)
        assert b"transfer-encoding" not in head.lower()
    assert rest == b""
    if method == "HEAD":
        assert b"content-length: 5\r\n" in first.lower()


async def test_streamed_response_on_http11_is_chunked_and_app_te_ignored(
    make_request, respond_once
):
    async def app(scope, receive, send):
        headers = [(b"transfer-encoding", b"gzip"), (b"x-app", b"1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"part1,", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2"})

    response = await respond_once(app, make_request("/"))
    assert response.header_all(b"transfer-encoding") == [b"chunked"]
    assert response.header(b"content-length") is None
    assert response.body == b"part1,part2"


async def test_content_length_from_app_wins_over_its_transfer_encoding(make_request, respond_once):
    async def app(scope, receive, send):
        headers = [(b"transfer-encoding", b"chunked"), (b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"cd"})

    response = await respond_once(app, make_request("/"))
    assert response.header(b"transfer-encoding") is None
    assert response.header(b"content-length") == b"4"
    assert response.body == b"abcd"


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (200, b"OK"),
        (201, b"Created"),
        (404, b"Not Found"),
        (418, b"I'm a Teapot"),
        (299, None),
        (399, None),
        (499, None),
        (599, None),
    ],
)
async def test_every_status_line_has_a_reason_phrase(
    run_server, connect, make_request, status, phrase
):
    async def app(scope, receive, send):
        await send_text(send, b"", status=status)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/"))
            status_line = await client.read_until(b"\r\n")
    prefix = b"HTTP/1.1 %d " % status
    assert status_line.startswith(prefix)
    reason = status_line[len(prefix) : -2]
    assert reason.strip() == reason
    assert reason != b""
    if phrase is not None:
        assert reason.lower() == phrase.lower()


async def test_app_connection_close_header_closes_after_the_response(
    run_server, connect, make_request
):
    async def app(scope, receive, send):
        await send_text(send, b"last", headers=[(b"connection", b"close")])

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/") + make_request("/never"))
            response = await client.read_response()
            rest = await client.read_until_eof()
    assert response.body == b"last"
    assert response.header_all(b"connection") == [b"close"]
    assert rest == b""


@pytest.mark.parametrize("client_accepts", [True, False])
async def test_response_trailers(run_server, connect, make_request, client_accepts):
    async def app(scope, receive, send):
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(start)
        await send({"type": "http.response.body", "body": b"data", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    headers = [("TE", "trailers")] if client_accepts else []
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/", headers=headers) + make_request("/again"))
            first = await client.read_until(b"\r\n\r\n")  # the head
            body_and_trailers = await client.read_until(b"\r\n\r\n")
            second = await client.read_response()  # the connection is still in sync
    assert b"transfer-encoding: chunked" in first.lower()
    assert body_and_trailers.startswith(b"4\r\ndata\r\n0\r\n")
    assert (b"x-checksum: abc" in body_and_trailers.lower()) is client_accepts
    assert second.status == 200


async def test_streamed_download_with_httpx(run_server, url):
    chunk = bytes(range(256)) * 256  # 64 KiB

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(16):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with anyio.fail_after(TIMEOUT):
        async with (
            run_server(app) as server,
            httpx.AsyncClient() as http,
            http.stream("GET", url(server)) as response,
        ):
            received = b"".join([part async for part in response.aiter_bytes()])
    assert received == chunk * 16


async def test_many_pipelined_requests_while_the_client_reads_concurrently(
    run_server, connect, make_request
):
    """More pipelined input than the server buffers: it reads as it answers, in order."""
    count = 300
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server:
            client = await connect(server)
            bodies: list[bytes] = []

            async def read_all() -> None:
                bodies.extend([(await client.read_response()).body for _ in range(count)])

            async with anyio.create_task_group() as nursery:
                nursery.start_soon(read_all)
                padding = [("X-Pad", "p" * 200)]
                await client.send(
                    b"".join(make_request(f"/{i}", headers=padding) for i in range(count))
                )
    assert bodies == [f"GET /{i} ".encode() for i in range(count)]


async def test_unread_small_body_is_drained_and_the_connection_reused(
    run_server, connect, make_request
):
    async def app(scope, receive, send):
        await send_text(send, scope["path"].encode())  # never reads the body

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)
            await client.send(make_request("/post", "POST", body=b"x" * 1000) + make_request("/2"))
            first = await client.read_response()
            second = await client.read_response()
    assert (first.body, second.body) == (b"/post", b"/2")


async def test_unread_large_body_closes_the_connection_after_a_complete_response(
    run_server, connect
):
    async def app(scope, receive, send):
        await send_text(send, b"answered early")  # never reads the body

    size = 10 * 1024 * 1024
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await connect(server)

            async def send_body() -> None:
                await client.send(
                    b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n" % size
                )
                try:
                    for _ in range(size // 65536):
                        await client.send(b"x" * 65536)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass  # the server stopped reading and closed, as it should

            async with anyio.create_task_group() as nursery:
                nursery.start_soon(send_body)
                response = await client.read_response()
                await client.expect_eof()
    assert response.body == b"answered early"
    # The server knew it could not drain 10 MiB, so the head must say it will close.
    assert (b"connection", b"close") in response.headers
    # Closing with unread input makes the kernel send RST, which can destroy the response
    # before the client reads it: the server must half-close and drain (a FIN, not RST).
    assert not client.reset
