"""WebSocket over real TCP sockets on 127.0.0.1: handshakes and messages.

Most tests drive the server with the wsproto client of ``ws_helpers`` (it can also
write frames no real client would). Closing, racing writes, shutdown, logs and the
``websockets`` library's client are in ``test_ws_sockets_close.py``. Timing (pings,
every timeout) is tested in memory under a virtual clock, in ``test_ws_memory.py``.
"""

from __future__ import annotations

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from ws_helpers import (
    KEY,
    TIMEOUT,
    EchoApp,
    close_cleanly,
    masked,
    upgrade_request,
)
from wsproto.events import BytesMessage, Pong, TextMessage

from trio_asgi import ASGIProtocolError
from trio_asgi._types import Receive, Scope, Send
from trio_asgi.testing._ws_frames import Opcode

pytestmark = pytest.mark.anyio


# --- the handshake ------------------------------------------------------------------------------


async def test_connect_is_the_first_message_and_the_scope_is_complete(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(
                server, "/chat/caf%C3%A9?room=1", subprotocols=["chat"], headers=[("X-A", "b")]
            )
            assert client.answer.status == 101
            await client.close()
            assert await client.expect_close() == (1000, "")
            await app.done.wait()
    assert app.received[0] == {"type": "websocket.connect"}
    scope = app.scope
    assert scope is not None
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["scheme"] == "ws"
    assert scope["http_version"] == "1.1"
    assert scope["path"] == "/chat/café"
    assert scope["raw_path"] == b"/chat/caf%C3%A9"
    assert scope["query_string"] == b"room=1"
    assert scope["subprotocols"] == ["chat"]
    assert (b"x-a", b"b") in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ("127.0.0.1", int(server.addresses[0].rpartition(":")[2]))
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope


async def test_accept_with_a_subprotocol_and_extra_headers(run_server, ws_connect):
    app = EchoApp(subprotocol="v2.chat", headers=[(b"x-session", b"42")])
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, subprotocols=["v1.chat", "v2.chat"])
            assert client.answer.status == 101
            assert client.answer.header(b"sec-websocket-protocol") == b"v2.chat"
            assert client.answer.header(b"x-session") == b"42"
            assert client.answer.header(b"upgrade") == b"websocket"
            await client.send_text("hi")
            assert await client.receive_message() == "hi"
            await close_cleanly(client)


async def test_accepting_a_subprotocol_the_client_did_not_offer_raises(run_server, ws_connect):
    errors: list[Exception] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            await send({"type": "websocket.accept", "subprotocol": "other"})
        except ASGIProtocolError as exc:
            errors.append(exc)
        await send({"type": "websocket.accept"})  # the failed accept changed nothing
        await send({"type": "websocket.send", "text": "accepted"})
        await receive()

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, subprotocols=["chat"])
            assert client.answer.status == 101
            assert client.answer.header(b"sec-websocket-protocol") is None
            assert await client.receive_message() == "accepted"
            await close_cleanly(client)
    assert len(errors) == 1
    assert "not offered" in str(errors[0])


async def test_close_before_accept_is_http_403(run_server, ws_connect):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.close", "code": 4003})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert not client.accepted
            assert client.answer.status == 403
            assert client.answer.header(b"content-length") == b"0"
            await client.expect_eof()


@pytest.mark.parametrize("with_length", [True, False])
async def test_denial_response_is_the_http_response_the_app_chose(
    run_server, ws_connect, with_length
):
    body = b"no entry without a token"
    headers = [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]
    if with_length:
        headers.append((b"content-length", str(len(body)).encode()))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body[:5], "more_body": True})
        await send({"type": "websocket.http.response.body", "body": body[5:]})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            assert client.answer.status == 401
            assert client.answer.header(b"www-authenticate") == b"Bearer"
            assert client.answer.header(b"connection") == b"close"
            assert client.answer.body == body
            await client.expect_eof()


BAD_HANDSHAKES = {
    "key not base64": upgrade_request(replace={"Sec-WebSocket-Key": "not base64 at all!!!!!!="}),
    "key of 15 bytes": upgrade_request(replace={"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAA"}),
    "missing key": upgrade_request(replace={"Sec-WebSocket-Key": None}),
    "duplicate key": upgrade_request(extra=[("Sec-WebSocket-Key", KEY)]),
    "non-ASCII subprotocol (Granian CVE)": upgrade_request(
        extra=[("Sec-WebSocket-Protocol", b"chat, \xc3\xa9t\xc3\xa9")]
    ),
    "subprotocol not a token": upgrade_request(extra=[("Sec-WebSocket-Protocol", "a b")]),
    "POST": upgrade_request().replace(b"GET", b"POST", 1),
    "missing host": upgrade_request(replace={"Host": None}),
}


@pytest.mark.parametrize("request_bytes", BAD_HANDSHAKES.values(), ids=BAD_HANDSHAKES.keys())
async def test_bad_handshake_is_400_and_close_without_calling_the_app(
    run_server, ws_connect, request_bytes
):
    calls: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, request=request_bytes)
            assert client.answer.status == 400
            assert client.answer.header(b"connection") == b"close"
            await client.expect_eof()
    assert calls == []


async def test_unknown_version_is_426_naming_version_13(run_server, ws_connect):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not called")

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(
                server, request=upgrade_request(replace={"Sec-WebSocket-Version": "12"})
            )
            assert client.answer.status == 426
            assert client.answer.header(b"sec-websocket-version") == b"13"
            await client.expect_eof()


async def test_http_1_0_upgrade_is_refused(run_server, ws_connect):
    calls: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope)

    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server, request=upgrade_request(http_version="1.0"))
            assert client.answer.status == 400
            await client.expect_eof()
    assert calls == []


async def test_with_ws_none_an_upgrade_request_is_plain_http(run_server, ws_connect):
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "http.request"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"plain"})

    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws="none") as server:
            client = await ws_connect(server)
            assert client.answer.status == 200
            assert client.answer.body == b"plain"
    assert [s["type"] for s in scopes] == ["http"]


async def test_bytes_sent_with_the_handshake_are_not_lost(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            # Robustness: a client must wait for the 101, but a frame in the same packet
            # as the request must still reach the app once it accepts.
            early = masked(Opcode.TEXT, b"early bird")
            client = await ws_connect(server, also_send=early)
            assert client.answer.status == 101
            assert await client.receive_message() == "early bird"
            await close_cleanly(client)
    assert app.received[1] == {"type": "websocket.receive", "text": "early bird"}


# --- messages ----------------------------------------------------------------------------------


async def test_text_and_binary_messages_echo(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send_text("héllo ✓")
            assert await client.receive_message() == "héllo ✓"
            await client.send_bytes(b"\x00\xff" * 40000)  # a 64-bit length frame
            assert await client.receive_message() == b"\x00\xff" * 40000
            await client.send_text("")
            assert await client.receive_message() == ""
            await client.close()
            assert await client.expect_close() == (1000, "")
            await app.done.wait()
    assert app.received[1:4] == [
        {"type": "websocket.receive", "text": "héllo ✓"},
        {"type": "websocket.receive", "bytes": b"\x00\xff" * 40000},
        {"type": "websocket.receive", "text": ""},
    ]


async def test_fragments_are_reassembled_and_control_frames_between_them_answered(
    run_server, ws_connect
):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send(TextMessage("frag", message_finished=False))
            await client.ping(b"in between")
            await client.send(TextMessage("ment", message_finished=False))
            await client.send(TextMessage("ed ✓", message_finished=True))
            assert await client.next_event() == Pong(b"in between")
            # The app got one message, not pieces.
            assert await client.receive_message() == "fragmented ✓"
            await client.send(BytesMessage(b"ab", message_finished=False))
            await client.send(BytesMessage(b"cd", message_finished=True))
            assert await client.receive_message() == b"abcd"
            await close_cleanly(client)
    assert app.received[1:3] == [
        {"type": "websocket.receive", "text": "fragmented ✓"},
        {"type": "websocket.receive", "bytes": b"abcd"},
    ]


async def test_client_ping_is_answered_with_its_payload(run_server, ws_connect):
    with anyio.fail_after(TIMEOUT):
        async with run_server(EchoApp()) as server:
            client = await ws_connect(server)
            await client.ping(b"are you there")
            assert await client.next_event() == Pong(b"are you there")
            await close_cleanly(client)


async def test_message_at_the_size_limit_passes_and_one_byte_more_closes_1009(
    run_server, ws_connect
):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws_max_size=1000) as server:
            client = await ws_connect(server)
            await client.send_bytes(b"x" * 1000)
            assert await client.receive_message() == b"x" * 1000
            await client.send_bytes(b"x" * 1001)
            assert await client.expect_close() == (1009, "message too big")
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1009,
        "reason": "message too big",
    }


async def test_fragmented_message_over_the_limit_closes_1009(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws_max_size=1000) as server:
            client = await ws_connect(server)
            for _ in range(3):
                await client.send(TextMessage("y" * 400, message_finished=False))
            assert await client.expect_close() == (1009, "message too big")
            await app.done.wait()
    assert app.disconnect["code"] == 1009


async def test_compressed_message_inflating_past_the_limit_closes_1009(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app, ws_max_size=64 * 1024) as server:
            client = await ws_connect(server, deflate=True)
            assert client.answer.header(b"sec-websocket-extensions") is not None
            await client.send_bytes(b"z" * 1000)
            assert await client.receive_message() == b"z" * 1000
            # 8 MiB of zeros deflate to a few KiB: a bomb against a 64 KiB limit.
            await client.send_bytes(bytes(8 * 1024 * 1024))
            assert await client.expect_close() == (1009, "message too big")
            await app.done.wait()
    assert app.disconnect["code"] == 1009


async def test_invalid_utf8_closes_1007(run_server, ws_connect):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send_raw(masked(Opcode.TEXT, b"ok \xff\xfe"))
            assert await client.expect_close() == (1007, "invalid payload data")
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1007,
        "reason": "invalid payload data",
    }


PROTOCOL_ERRORS = {
    "RSV bit without an extension": masked(Opcode.TEXT, b"hi", rsv=2),
    "unmasked client frame": masked(Opcode.TEXT, b"hi", mask=None),
    "reserved opcode": masked(3, b"hi"),
    "fragmented ping": masked(Opcode.PING, b"hi", fin=False),
    "continuation without a message": masked(Opcode.CONTINUATION, b"hi"),
    "one-byte close payload": masked(Opcode.CLOSE, b"\x03"),
    "ping over 125 bytes": masked(Opcode.PING, b"p" * 126),
}


@pytest.mark.parametrize("frame", PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
async def test_protocol_error_closes_1002(run_server, ws_connect, frame):
    app = EchoApp()
    with anyio.fail_after(TIMEOUT):
        async with run_server(app) as server:
            client = await ws_connect(server)
            await client.send_raw(frame)
            assert await client.expect_close() == (1002, "protocol error")
            await client.expect_eof()
            await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1002,
        "reason": "protocol error",
    }
