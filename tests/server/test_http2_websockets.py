"""WebSockets over HTTP/2 (RFC 8441) and the configurable HTTP/2 settings, over real
sockets on both loops, with a client of h2 (streams) and wsproto (frames)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import h2.errors
import h2.settings
import pytest

from tests.server.h2_ws_client import open_h2_ws
from trio_asgi import Config, ConfigError

pytestmark = pytest.mark.anyio

TIMEOUT = 10


def closed_with(code: int) -> Callable[[list[Any]], bool]:
    return lambda received: ("close", code) in received


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain " + scope["path"].encode()})
        return
    assert (await receive())["type"] == "websocket.connect"
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol})
    await send({"type": "websocket.send", "text": f"{scope['http_version']} {scope['scheme']}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            return
        await send({"type": "websocket.send", **{k: v for k, v in message.items() if k != "type"}})


async def test_handshake_echo_and_the_settings_a_client_sees(
    run_server: Callable[..., Any],
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app) as server:
            client = await open_h2_ws(server)
            assert client.server_settings.enable_connect_protocol == 1
            sid = await client.open(headers=[(b"sec-websocket-protocol", b"chat, other")])
            ws = client.streams[sid]
            await client.until(lambda: len(ws.received) == 1)
            assert ws.status == b"200"
            assert ws.headers[b"sec-websocket-protocol"] == b"chat"
            assert b"sec-websocket-accept" not in ws.headers
            assert ws.received == ["2 ws"]
            await client.send_message(sid, "hello")
            await client.send_message(sid, b"\x00\xff" * 5000)
            await client.until(lambda: len(ws.received) == 3)
            assert ws.received[1:] == ["hello", b"\x00\xff" * 5000]
            await client.ping(sid, b"p1")
            await client.until(lambda: ("pong", b"p1") in ws.received)
            await client.close(sid, 1000)
            await client.until(lambda: ws.ended)
            assert ws.received[-1] == ("close", 1000)
            await client.stream.aclose()


async def test_app_and_client_close_codes(run_server: Callable[..., Any]) -> None:
    disconnects: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                disconnects.append(message["code"])
                return
            await send({"type": "websocket.close", "code": 4001})
            return

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2_ws(server)
            by_client = await client.open()
            await client.until(lambda: client.streams[by_client].status == b"200")
            await client.close(by_client, 4321)
            await client.until(lambda: client.streams[by_client].ended)
            assert client.streams[by_client].received == [("close", 4321)]
            by_app = await client.open()
            await client.until(lambda: client.streams[by_app].status == b"200")
            await client.send_message(by_app, "go")
            await client.until(lambda: closed_with(4001)(client.streams[by_app].received))
            await client.close(by_app, 4001)  # the answering close
            await client.until(lambda: client.streams[by_app].ended)
            await client.stream.aclose()
    assert disconnects == [4321]


async def test_a_message_over_ws_max_size_closes_with_1009(run_server: Callable[..., Any]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app, ws_max_size=1000) as server:
            client = await open_h2_ws(server)
            sid = await client.open()
            ws = client.streams[sid]
            await client.until(lambda: len(ws.received) == 1)
            await client.send_message(sid, b"x" * 1001)
            await client.until(lambda: closed_with(1009)(ws.received))
            await client.stream.aclose()


async def test_a_reset_stream_is_a_1006_disconnect_for_the_app(
    run_server: Callable[..., Any],
) -> None:
    got: list[dict[str, Any]] = []
    done = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        got.append(await receive())
        done.set()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2_ws(server)
            sid = await client.open()
            await client.until(lambda: client.streams[sid].status == b"200")
            client.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            await client.flush()
            await done.wait()
            other = await client.get(b"/after")  # the connection carries on
            await client.until(lambda: client.streams[other].ended)
            await client.stream.aclose()
    assert got == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


async def test_websockets_and_requests_share_a_connection_and_a_stalled_one_delays_none(
    run_server: Callable[..., Any],
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/flood":  # sends until its stream's window is shut
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                await send({"type": "websocket.send", "bytes": b"f" * 16000})
        await echo_app(scope, receive, send)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, timeout_write=30.0) as server:
            client = await open_h2_ws(server)
            stalled = await client.open(b"/flood")
            client.streams[stalled].starved = True
            # The stalled stream fills its whole window (65,535 bytes) and waits.
            await client.until(lambda: len(client.streams[stalled].body) >= 65535 - 16)
            first, second = await client.open(b"/a"), await client.open(b"/b")
            get = await client.get(b"/plain")
            for sid in (first, second):
                await client.until(lambda sid=sid: len(client.streams[sid].received) == 1)
                await client.send_message(sid, f"to {sid}")
            await client.until(
                lambda: all(len(client.streams[s].received) == 2 for s in (first, second))
            )
            await client.until(lambda: client.streams[get].ended)
            assert client.streams[first].received[1] == f"to {first}"
            assert client.streams[second].received[1] == f"to {second}"
            assert client.streams[get].body == b"plain /plain"
            assert len(client.streams[stalled].body) <= 65535
            await client.stream.aclose()


async def test_graceful_shutdown_closes_http2_websockets_with_1012(
    run_server: Callable[..., Any],
) -> None:
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo_app, timeout_graceful_shutdown=5.0) as server:
            client = await open_h2_ws(server)
            sid = await client.open()
            ws = client.streams[sid]
            await client.until(lambda: len(ws.received) == 1)
            server.shutdown()
            await client.until(lambda: closed_with(1012)(ws.received))
            await client.close(sid, 1012)
            await client.until(lambda: ws.ended)
            while await client.pump():
                pass  # the server closes the connection once the WebSocket is done
            await client.stream.aclose()
    assert client.goaways


async def test_app_closing_before_accept_is_a_403(run_server: Callable[..., Any]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2_ws(server)
            sid = await client.open()
            await client.until(lambda: client.streams[sid].ended)
            assert client.streams[sid].status == b"403"
            await client.stream.aclose()


BASE = [(b":scheme", b"http"), (b":path", b"/ws"), (b":authority", b"localhost")]


@pytest.mark.parametrize(
    ("pseudo", "ws_mode"),
    [
        ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE], "none"),
        ([(b":method", b"GET"), (b":protocol", b"websocket"), *BASE], "auto"),
        ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[1:]], "auto"),
        ([(b":method", b"CONNECT"), (b":protocol", b"websocket"), *BASE[:2]], "auto"),
    ],
    ids=["without-the-setting", "not-connect", "no-scheme", "no-authority"],
)
async def test_bad_extended_connects_are_a_protocol_error(
    run_server: Callable[..., Any], pseudo: list[tuple[bytes, bytes]], ws_mode: str
) -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws=ws_mode) as server:
            client = await open_h2_ws(server)
            assert client.server_settings.enable_connect_protocol == (ws_mode != "none")
            sid = await client.open(pseudo=pseudo)
            await client.until(lambda: client.streams[sid].reset is not None)
            assert client.streams[sid].reset == h2.errors.ErrorCodes.PROTOCOL_ERROR
            await client.stream.aclose()
    assert not called


async def test_configured_settings_reach_the_client_and_bound_the_streams(
    run_server: Callable[..., Any],
) -> None:
    release = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    options = {
        "http2_max_concurrent_streams": 2,
        "http2_initial_window_size": 16384,
        "http2_max_frame_size": 32768,
        "http2_max_header_list_size": 8000,
    }
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, **options) as server:
            client = await open_h2_ws(server)
            settings = client.server_settings
            assert settings.max_concurrent_streams == 2
            assert settings.initial_window_size == 16384
            assert settings.max_frame_size == 32768
            assert settings.max_header_list_size == 8000
            # Our client obeys the limit; lift it, to see the server refuse a third stream.
            client.conn.remote_settings = h2.settings.Settings(
                client=False,
                initial_values={
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384,
                    h2.settings.SettingCodes.MAX_FRAME_SIZE: 32768,
                },
            )
            # The app does not read: the client may send no more than the window.
            upload = client.conn.get_next_available_stream_id()
            post = [(b":method", b"POST"), *BASE[:2], (b":authority", b"localhost")]
            client.conn.send_headers(upload, post)
            assert client.conn.local_flow_control_window(upload) == 16384
            client.conn.send_data(upload, b"u" * 16384)
            await client.flush()
            assert client.conn.local_flow_control_window(upload) == 0
            second = await client.get(b"/2")
            third = await client.get(b"/3")  # over the limit: refused, never a GOAWAY
            await client.until(lambda: client.streams[third].reset is not None)
            assert client.streams[third].reset == h2.errors.ErrorCodes.REFUSED_STREAM
            release.set()
            await client.until(lambda: client.streams[second].ended)
            assert not client.goaways
            await client.stream.aclose()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("http2_max_concurrent_streams", 0),
        ("http2_initial_window_size", 2**31),
        ("http2_initial_window_size", 0),
        ("http2_max_frame_size", 16383),
        ("http2_max_frame_size", 2**24),
        ("http2_max_header_list_size", 10),
    ],
)
def test_settings_out_of_range_are_config_errors(name: str, value: int) -> None:
    with pytest.raises(ConfigError, match=name):
        Config(**{name: value})


async def test_the_docs_example_client_talks_to_the_echo_example(
    run_server: Callable[..., Any],
) -> None:
    from tests.test_docs_examples import load_example

    client = load_example("h2_websocket_client")
    echo = load_example("websocket_echo")
    with anyio.fail_after(TIMEOUT):
        async with run_server(echo.app) as server:
            host, _, port = server.addresses[0].rpartition(":")
            status, reply = await client.echo_over_http2(host, int(port), "hi")
    assert (status, reply) == (b"200", "hi")


async def test_an_unknown_version_is_a_426_naming_version_13(
    run_server: Callable[..., Any],
) -> None:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2_ws(server)
            sid = await client.open(version=b"12")
            await client.until(lambda: client.streams[sid].ended)
            ws = client.streams[sid]
            assert ws.status == b"426"
            assert ws.headers[b"sec-websocket-version"] == b"13"
            assert ws.body == b"this server speaks WebSocket version 13\n"
            await client.stream.aclose()
    assert not called


async def test_a_denial_response_is_headers_data_and_end_stream(
    run_server: Callable[..., Any],
) -> None:
    body = b"who are you?\n"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        headers = [(b"www-authenticate", b"Bearer"), (b"content-type", b"text/plain")]
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body[:5], "more_body": True})
        await send({"type": "websocket.http.response.body", "body": body[5:]})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await open_h2_ws(server)
            sid = await client.open()
            await client.until(lambda: client.streams[sid].ended)
            ws = client.streams[sid]
            assert (ws.status, ws.body, ws.reset) == (b"401", body, None)
            assert ws.headers[b"www-authenticate"] == b"Bearer"
            assert ws.headers[b"content-type"] == b"text/plain"
            assert ws.events[0] == "ResponseReceived"
            assert set(ws.events[1:-1]) == {"DataReceived"}
            assert ws.events[-1] == "StreamEnded"
            other = await client.get(b"/after")  # the connection carries on
            await client.until(lambda: client.streams[other].ended)
            await client.stream.aclose()
