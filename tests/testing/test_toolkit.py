"""The toolkit itself: the in-memory server and client, the invariants, the pytest plugin."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from fuzz_apps import echo_app

from trio_asgi import Config
from trio_asgi.testing import (
    ConnectionClosed,
    InvalidResponse,
    RecordingApp,
    TestConnection,
    TestRequest,
    WebSocketClosed,
    assert_app_calls,
    assert_app_not_called,
    assert_bounded_buffering,
    bounded_memory_stream_pair,
    capture_server_errors,
    expect_one_response_each,
    open_test_server,
)
from trio_asgi.testing.strategies import Frame, Opcode, encode_frame


def fake_server() -> tuple[TestConnection, trio.abc.HalfCloseableStream]:
    """A TestConnection whose "server" is the test itself, to feed the client any bytes."""
    client, server = bounded_memory_stream_pair()
    return TestConnection(client, timeout=10), server


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_request_pipeline_and_chunked_bodies(autojump_clock) -> None:
    app = RecordingApp(echo_app)
    async with open_test_server(app) as server:
        client = await server.connect()
        response = await client.request("POST", "/a?b=1", body=[b"xy", b"z"], chunked=True)
        assert response.status == 200
        assert response.header("X-Echo") == b"1"
        assert not response.closes_connection
        responses = await client.pipeline(
            [TestRequest("GET", "/1"), TestRequest("HEAD", "/2"), TestRequest("GET", "/3")]
        )
        assert [r.status for r in responses] == [200, 200, 200]
        assert responses[1].body == b""
        await trio.testing.wait_all_tasks_blocked()  # the app call ends after its response
        assert server.statistics().requests_served == 4
    assert_app_calls(app, 4)
    assert app.calls[0].body == b"xyz"
    assert [c.scope["path"] for c in app.calls] == ["/a", "/1", "/2", "/3"]


async def test_send_in_pieces_lets_the_server_read_each_piece(autojump_clock) -> None:
    app = RecordingApp(echo_app)
    wire = TestRequest("POST", "/", body=b"abcdef").data
    async with open_test_server(app) as server:
        client = await server.connect()
        assert await client.send_in_pieces(wire, [len(wire) - 4, len(wire) - 2])
        assert (await client.read_response("POST")).status == 200
    bodies = [m["body"] for m in app.calls[0].received if m["type"] == "http.request"]
    assert bodies == [b"ab", b"cd", b"ef"]


async def test_a_slow_reader_holds_the_server_back(autojump_clock) -> None:
    async def big(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"x" * 100_000})

    async with open_test_server(big, lifespan="off") as server:
        client = await server.connect(receive_window=1000)
        await client.send(TestRequest().data)
        await trio.testing.wait_all_tasks_blocked()
        assert client.statistics().unread_received == 1000
        assert server.statistics().requests_in_flight == 1
        assert len((await client.read_response()).body) == 100_000


async def test_read_response_reports_a_close_and_garbage() -> None:
    client, server = fake_server()
    await server.send_all(OK[:-1])
    await server.aclose()
    with pytest.raises(ConnectionClosed) as closed:
        await client.read_response()
    assert closed.value.partial is not None
    assert closed.value.partial.status == 200

    client, server = fake_server()
    await server.send_all(b"SMTP ready\r\n\r\n")
    with pytest.raises(InvalidResponse):
        await client.read_response()


async def test_expect_one_response_each_catches_an_extra_response() -> None:
    client, server = fake_server()
    await server.send_all(OK + OK)
    with pytest.raises(InvalidResponse, match="more than 1 response"):
        await expect_one_response_each(client, ["GET"])


async def test_expect_one_response_each_refuses_a_close_in_place_of_a_response() -> None:
    # No response at all, or a truncated one: lost, unless the test allows a close.
    for wire in (b"", OK[:-1]):
        for allowed in (False, True):
            client, server = fake_server()
            await server.send_all(wire)
            await server.aclose()
            if allowed:
                assert await expect_one_response_each(client, ["GET"], allow_close=True) == []
            else:
                with pytest.raises(AssertionError, match="got no complete response"):
                    await expect_one_response_each(client, ["GET"])
    # After a complete response, a close may leave the requests behind it unanswered.
    client, server = fake_server()
    await server.send_all(OK)
    await server.aclose()
    assert len(await expect_one_response_each(client, ["GET", "GET"])) == 1


async def test_websocket_echo_ping_close_and_rejection(autojump_clock) -> None:
    async def refuse(scope, receive, send) -> None:
        await receive()
        await send({"type": "websocket.close"})

    async with open_test_server(echo_app) as server:
        ws = await (await server.connect()).websocket("/ws")
        assert ws.accepted
        await ws.send_text("héllo")
        assert await ws.receive() == "héllo"
        await ws.ping(b"p")
        await ws.send_bytes(b"\x00")
        assert await ws.receive() == b"\x00"
        assert (await ws.close(1000))[0] == 1000
    async with open_test_server(refuse, lifespan="off") as server:
        ws = await (await server.connect()).websocket("/ws")
        assert not ws.accepted
        assert ws.rejection is not None
        assert ws.rejection.status == 403


def test_recording_app_and_not_called_checks() -> None:
    app = RecordingApp(echo_app)
    assert_app_not_called(app)
    assert_app_calls(app, 0)
    with pytest.raises(AssertionError, match="expected 1 app call"):
        assert_app_calls(app, 1)


async def test_open_test_server_fails_on_an_escaped_exception(autojump_clock) -> None:
    with pytest.raises(AssertionError, match="escaped a connection handler"):
        async with open_test_server(echo_app):
            logging.getLogger("trio_asgi").error("Unexpected error while serving a connection")
    with capture_server_errors() as errors:
        logging.getLogger("trio_asgi").error("Exception in ASGI application")
    assert len(errors.records) == 1
    assert errors.unexpected == []
    errors.check()


async def test_bounded_buffering_fails_a_server_that_reads_everything() -> None:
    client, server = fake_server()

    async def swallow() -> None:
        while await server.receive_some():
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(swallow)
        with pytest.raises(AssertionError, match="over the bound"):
            await assert_bounded_buffering(client, Config(), b"x" * 500_000)
        nursery.cancel_scope.cancel()


# --- the pytest plugin ---------------------------------------------------------------------


@pytest.fixture
def asgi_app():
    return echo_app


@pytest.fixture
def asgi_server_options():
    return {"max_body_size": 3}


async def test_plugin_fixtures_serve_the_asgi_app(asgi_client, autojump_clock) -> None:
    assert (await asgi_client.request("POST", "/", body=b"abcd")).status == 413


async def test_plugin_factory(test_server_factory, autojump_clock) -> None:
    assert test_server_factory is open_test_server


async def test_a_send_after_the_servers_close_frame_arrived_says_closed(autojump_clock) -> None:
    # The close frame can arrive in the same read as the last message: receive() returns
    # the message and leaves the close queued. A send then must say the socket closed
    # (and answer the close), not fail inside wsproto (found by the chat-room scenario).
    async def accept_and_wait(scope, receive, send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()  # the client's answer to the close below

    async with open_test_server(accept_and_wait, lifespan="off") as server:
        ws = await (await server.connect()).websocket("/ws")
        # What the server's last read would hand over: a message and a close, together.
        message = Frame(Opcode.TEXT, b"bye", mask=None)  # a server's frames are not masked
        close = Frame(Opcode.CLOSE, (4000).to_bytes(2, "big"), mask=None)
        ws.feed(encode_frame(message) + encode_frame(close))
        assert await ws.receive() == "bye"
        with pytest.raises(WebSocketClosed) as closed:
            await ws.send_text("too late")
        assert closed.value.code == 4000
