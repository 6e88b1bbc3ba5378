"""Request limits on memory streams: max_body_size (413), limit_concurrency (503),
max_requests_per_connection, with the server's statistics at each point."""

from __future__ import annotations

import anyio
import pytest
from memory_helpers import (
    chunked,
    gated_app,
    hello_app,
    make_config,
    raw_request,
    read_body,
    respond,
    running,
)

from trio_asgi._types import Message, Receive, Scope, Send
from trio_asgi.testing._virtual_clock import wait_all_tasks_blocked

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("virtual_clock")]

# --- max_body_size ----------------------------------------------------------------------------


class Echo:
    """Echoes the request body; records every message and every call."""

    def __init__(self) -> None:
        self.calls = 0
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        body, messages = await read_body(receive)
        self.messages += messages
        if messages[-1]["type"] == "http.disconnect":
            return
        await respond(send, 200, body)


@pytest.mark.parametrize("size", [0, 1, 10])
async def test_content_length_within_max_body_size_is_served(size: int) -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=10)) as srv:
        client = await srv.connect()
        await client.send(
            raw_request("POST", headers=[("Content-Length", str(size))], body=b"b" * size)
        )
        response = await client.response()
        assert (response.status, response.body) == (200, b"b" * size)
        assert not response.closes


async def test_content_length_over_max_body_size_gets_413_before_the_app() -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=10)) as srv:
        client = await srv.connect()
        await client.send(raw_request("POST", body=b"b" * 11))
        response = await client.response()
        assert response.status == 413
        assert response.closes
        assert response.header(b"content-length") == str(len(response.body)).encode()
        await client.expect_closed()
        assert app.calls == 0


async def test_expect_continue_over_max_body_size_gets_413_without_100() -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=10)) as srv:
        client = await srv.connect()
        await client.send(
            raw_request("POST", headers=[("Content-Length", "5000"), ("Expect", "100-continue")])
        )
        response = await client.response()
        assert response.status == 413  # not "100 Continue": the body is refused unsent
        assert app.calls == 0


async def test_max_body_size_zero_allows_requests_without_a_body() -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=0)) as srv:
        client = await srv.connect()
        await client.request()
        assert (await client.response()).status == 200
        await client.send(raw_request("POST", body=b"x"))
        assert (await client.response()).status == 413
        await client.expect_closed()
        assert app.calls == 1


async def test_chunked_body_over_max_body_size_gets_413() -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=10)) as srv:
        client = await srv.connect()
        await client.send(
            raw_request("POST", headers=[("Transfer-Encoding", "chunked")])
            + chunked(b"aaaa", b"bbbb", b"cccc")
        )
        response = await client.response()
        assert response.status == 413
        assert response.closes
        await client.expect_closed()
        # The app saw at most 10 body bytes, then the disconnect.
        assert app.messages[-1] == {"type": "http.disconnect"}
        delivered = b"".join(m["body"] for m in app.messages[:-1])
        assert len(delivered) <= 10
        assert b"cccc" not in delivered
        assert all(m["more_body"] for m in app.messages[:-1])
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 1)


async def test_chunked_body_of_exactly_max_body_size_is_served() -> None:
    app = Echo()
    async with running(app, make_config(max_body_size=10)) as srv:
        client = await srv.connect()
        await client.send(
            raw_request("POST", headers=[("Transfer-Encoding", "chunked")])
            + chunked(b"aaaa", b"bbbb", b"cc")
        )
        response = await client.response()
        assert (response.status, response.body) == (200, b"aaaabbbbcc")


# --- limit_concurrency ------------------------------------------------------------------------


async def test_limit_concurrency_refuses_with_503_then_serves_again() -> None:
    gate = anyio.Event()
    entered: list[int] = []
    app = gated_app(gate, lambda: entered.append(1))
    async with running(app, make_config(limit_concurrency=2)) as srv:
        first, second = await srv.connect(), await srv.connect()
        await first.request(target="/1")
        await second.request(target="/2")
        await wait_all_tasks_blocked()
        assert len(entered) == 2
        assert srv.stats() == (2, 2, 0)

        third = await srv.connect()
        await third.request(target="/3")
        refused = await third.response()
        assert refused.status == 503
        assert refused.header(b"retry-after") == b"1"
        assert refused.closes
        await third.expect_closed()
        await third.aclose()
        await wait_all_tasks_blocked()
        assert len(entered) == 2  # the app never saw /3
        assert srv.stats() == (2, 2, 0)

        gate.set()
        assert (await first.response()).status == 200
        assert (await second.response()).status == 200
        await wait_all_tasks_blocked()
        assert srv.stats() == (2, 0, 2)

        # Capacity is free again: a new request on a kept-alive connection is served.
        await first.request(target="/4")
        assert (await first.response()).status == 200
        assert len(entered) == 3


async def test_limit_concurrency_also_applies_to_kept_alive_connections() -> None:
    gate = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/block":
            await gate.wait()
        await respond(send)

    async with running(app, make_config(limit_concurrency=1)) as srv:
        busy, kept = await srv.connect(), await srv.connect()
        await kept.request()
        assert (await kept.response()).status == 200  # served while under the limit
        await busy.request(target="/block")
        await wait_all_tasks_blocked()
        assert srv.stats() == (2, 1, 1)
        await kept.request()
        refused = await kept.response()
        assert refused.status == 503
        await kept.expect_closed()
        gate.set()
        assert (await busy.response()).status == 200


# --- max_requests_per_connection --------------------------------------------------------------


async def test_max_requests_per_connection_closes_after_the_nth() -> None:
    async with running(hello_app, make_config(max_requests_per_connection=3)) as srv:
        client = await srv.connect()
        for i in range(1, 4):
            await client.request(target=f"/{i}")
            response = await client.response()
            assert response.body == f"hello /{i}".encode()
            assert response.closes == (i == 3)
        await client.expect_closed()
        await client.aclose()
        await wait_all_tasks_blocked()
        assert srv.stats() == (0, 0, 3)


async def test_max_requests_per_connection_with_pipelining() -> None:
    async with running(hello_app, make_config(max_requests_per_connection=2)) as srv:
        client = await srv.connect()
        await client.send(b"".join(raw_request(target=f"/{i}") for i in range(1, 5)))
        first, second = await client.response(), await client.response()
        assert (first.body, first.closes) == (b"hello /1", False)
        assert (second.body, second.closes) == (b"hello /2", True)
        # Requests 3 and 4 are never answered: the connection ends after the 2nd.
        assert await client.read_until_eof() == b""
        assert srv.stats()[2] == 2
