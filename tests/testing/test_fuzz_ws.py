"""Fuzzing the real server's WebSocket side with trio_asgi.testing: drawn frame sequences.

Valid traffic (fragments at any offset, pings and pongs between them, a close) is
echoed message for message and its close reported to the app; invalid traffic
ends with the close code RFC 6455 asks for, after at most the messages before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing
from fuzz_apps import echo_app
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi.testing import RecordingApp, open_test_server
from trio_asgi.testing.strategies import invalid_ws_frames, splits, ws_client_frames

MAX_SIZE = 4096


def run(test: Callable[[], Awaitable[None]]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


@given(ws_client_frames(max_message_size=MAX_SIZE), st.data())
def test_valid_frames_are_echoed_and_the_close_reported(traffic, data) -> None:
    # The close frame goes last, once every echo is in: a close racing the app's echo
    # is the case of test_fuzz_regressions.py::test_close_frame_survives_a_racing_echo.
    frames = traffic.frames[:-1] if traffic.close is not None else traffic.frames
    wire = b"".join(frame.data for frame in frames)
    pieces = data.draw(splits(wire, max_chunks=5), label="pieces")
    app = RecordingApp(echo_app)

    async def example() -> None:
        async with open_test_server(app, ws_max_size=MAX_SIZE) as server:
            client = await server.connect()
            ws = await client.websocket("/echo")
            assert ws.accepted
            for piece in pieces:
                await ws.send_raw(piece)
            echoed = [await ws.receive() for _ in traffic.messages]
            assert echoed == list(traffic.messages)
            if traffic.close is not None:
                await ws.send_raw(traffic.frames[-1].data)
                code, _ = await ws.receive_close()
                assert code != 1006
            else:
                await ws.close()
        (call,) = app.calls
        disconnects = [m for m in call.received if m["type"] == "websocket.disconnect"]
        assert len(disconnects) == 1
        if traffic.close is not None:
            code, reason = traffic.close
            assert (disconnects[0]["code"], disconnects[0].get("reason", "")) == (code, reason)

    run(example)


async def _listener(scope, receive, send) -> None:
    """Accepts and reads until the WebSocket ends; never sends (see the regression test
    of an echo racing a failing close frame in test_fuzz_regressions.py)."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] == "websocket.receive":
            pass
    elif scope["type"] == "lifespan":
        await echo_app(scope, receive, send)


@given(invalid_ws_frames(max_message_size=MAX_SIZE), st.data())
def test_invalid_frames_close_with_the_expected_code(traffic, data) -> None:
    pieces = data.draw(splits(traffic.data, max_chunks=4), label="pieces")
    app = RecordingApp(_listener)

    async def example() -> None:
        async with open_test_server(app, ws_max_size=MAX_SIZE) as server:
            client = await server.connect()
            ws = await client.websocket("/listen")
            for piece in pieces:
                await ws.send_raw(piece)
            code, _ = await ws.receive_close()
            assert code == traffic.expected_close_code, traffic.kind
        (call,) = app.calls
        received = [m.get("text", m.get("bytes")) for m in call.received[1:-1]]
        assert received == list(traffic.messages_before[: len(received)])
        assert call.received[-1] == {
            "type": "websocket.disconnect",
            "code": traffic.expected_close_code,
            "reason": call.received[-1]["reason"],
        }

    run(example)


async def _closes_after_one_message(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        if (await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.close", "code": 4001})
    elif scope["type"] == "lifespan":
        await echo_app(scope, receive, send)


@given(invalid_ws_frames(max_message_size=MAX_SIZE))
def test_an_app_that_closes_first_is_allowed_its_own_code(traffic) -> None:
    # The app closes after its first message: when that message comes before the
    # defect, the server's close is the app's 4001, which close_codes() accepts.
    async def example() -> None:
        async with open_test_server(_closes_after_one_message, ws_max_size=MAX_SIZE) as server:
            client = await server.connect()
            ws = await client.websocket("/")
            await ws.send_raw(traffic.data)
            code, _ = await ws.receive_close()
        assert code in traffic.close_codes(app_codes=[4001]), traffic.kind
        if not traffic.messages_before:
            assert code == traffic.expected_close_code

    run(example)
