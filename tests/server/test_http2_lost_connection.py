"""A lost HTTP/2 connection is a disconnect for every stream's app, not a cancellation.

The client leaves (FIN, or RST through ``SO_LINGER`` 0) while one app waits in
``receive()`` for more body, one computes and then sends, and one serves a WebSocket
over HTTP/2: each sees ``http.disconnect`` (its ``send()`` raising an ``OSError``) or
``websocket.disconnect`` 1006 and returns, none is cancelled, and the server serves
the next connection. Real sockets, both loops, a client of ``h2`` and wsproto.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from anyio.abc import SocketAttribute
from memory_helpers import make_config, now, running

from tests.server.h2_ws_client import H2WSClient, open_h2_ws

pytestmark = pytest.mark.anyio

TIMEOUT = 10


async def leave(client: H2WSClient, how: str) -> None:
    """End the client's side: a FIN (half-close, the socket stays open) or an RST."""
    if how == "fin":
        await client.stream.send_eof()
        return
    sock = client.stream.extra(SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await client.stream.aclose()


async def still_serving(server: Any) -> None:
    """A new connection gets its response: the server carries on."""
    client = await open_h2_ws(server)
    sid = await client.get(b"/plain")
    await client.until(lambda: client.streams[sid].ended)
    assert client.streams[sid].status == b"200"
    await client.stream.aclose()


class Apps:
    """Three apps on one connection, each recording what it saw (or that it was cancelled)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {"upload": [], "compute": [], "ws": []}
        self.cancelled: list[str] = []
        self.ready = {name: anyio.Event() for name in self.seen}
        self.done = {name: anyio.Event() for name in self.seen}
        #: Set by the test once the upload app saw the disconnect: "computing" is over.
        self.computed = anyio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = scope["path"].strip("/")
        if name == "plain":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        try:
            await getattr(self, name)(receive, send, self.seen[name], self.ready[name])
            await anyio.lowlevel.checkpoint()  # cleanup after the disconnect still runs
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(name)
            raise
        finally:
            self.done[name].set()

    async def upload(self, receive: Any, send: Any, seen: list[Any], ready: anyio.Event) -> None:
        seen.append(await receive())  # the first part of the body
        ready.set()
        seen.append(await receive())  # waits for more: the client leaves instead

    async def compute(self, receive: Any, send: Any, seen: list[Any], ready: anyio.Event) -> None:
        seen.append((await receive())["type"])
        ready.set()
        await self.computed.wait()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:  # ASGI: send() to a gone client raises an OSError
            seen.append(type(exc).__name__)
        seen.append((await receive())["type"])

    async def ws(self, receive: Any, send: Any, seen: list[Any], ready: anyio.Event) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        ready.set()
        seen.append(await receive())


@pytest.mark.parametrize("how", ["fin", "rst"])
async def test_each_app_sees_the_disconnect_and_returns(
    run_server: Callable[..., Any], how: str
) -> None:
    apps = Apps()
    with anyio.fail_after(TIMEOUT):
        async with run_server(apps) as server:
            client = await open_h2_ws(server)
            conn = client.conn
            upload = conn.get_next_available_stream_id()
            conn.send_headers(upload, [*_request(b"POST", b"/upload")])
            conn.send_data(upload, b"first part")
            compute = upload + 2
            conn.send_headers(compute, [*_request(b"GET", b"/compute")], end_stream=True)
            await client.flush()
            ws = await client.open(b"/ws")
            await client.until(lambda: client.streams[ws].status == b"200")
            for name in ("upload", "compute", "ws"):
                await apps.ready[name].wait()
            await leave(client, how)
            await apps.done["upload"].wait()
            apps.computed.set()
            for name in ("compute", "ws"):
                await apps.done[name].wait()
            await still_serving(server)
            if how == "fin":
                await client.stream.aclose()
    assert apps.cancelled == []
    assert apps.seen["upload"] == [
        {"type": "http.request", "body": b"first part", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert apps.seen["compute"] == ["http.request", "ClientDisconnected", "http.disconnect"]
    assert apps.seen["ws"] == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


def _request(method: bytes, path: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", b"localhost"),
    ]


@pytest.mark.usefixtures("virtual_clock")
async def test_an_app_that_ignores_the_loss_is_cancelled_after_the_grace_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, cancelled = anyio.Event(), anyio.Event()
    cancelled_at: list[float] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        try:
            await anyio.sleep_forever()  # never looks at receive() or send()
        except anyio.get_cancelled_exc_class():
            cancelled_at.append(now())
            cancelled.set()
            raise

    async with running(app, make_config(timeout_graceful_shutdown=7.0)) as srv:
        client = await srv.connect()
        h2c = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        h2c.initiate_connection()
        h2c.send_headers(1, _request(b"GET", b"/sleepy"), end_stream=True)
        await client.send(h2c.data_to_send())
        await started.wait()
        t0 = now()
        await client.aclose()
        await cancelled.wait()
    assert cancelled_at == [pytest.approx(t0 + 7.0)]
    lines = [r.getMessage() for r in caplog.records if "cancelled" in r.getMessage()]
    assert len(lines) == 1
    assert "HTTP/2 connection was lost (GET /sleepy)" in lines[0]


@pytest.mark.usefixtures("virtual_clock")
async def test_a_write_stalled_past_the_write_timeout_loses_the_connection_for_every_stream() -> (
    None
):
    seen: dict[str, list[Any]] = {"/big": [], "/upload": []}
    cancelled: list[str] = []
    done = {path: anyio.Event() for path in seen}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        path = scope["path"]
        try:
            seen[path].append((await receive())["type"])
            if path == "/big":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                try:
                    await send({"type": "http.response.body", "body": b"b" * 60_000})
                except OSError as exc:
                    seen[path].append((type(exc).__name__, now()))
            seen[path].append(((await receive())["type"], now()))
            await anyio.lowlevel.checkpoint()  # cleanup after the disconnect still runs
        except anyio.get_cancelled_exc_class():
            cancelled.append(path)
            raise
        finally:
            done[path].set()

    config = make_config(timeout_write=6.0, timeout_keep_alive=None)
    async with running(app, config, receive_window=4096) as srv:
        client = await srv.connect()
        h2c = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        h2c.initiate_connection()
        h2c.send_headers(1, _request(b"POST", b"/upload"))
        h2c.send_data(1, b"part")
        h2c.send_headers(3, _request(b"GET", b"/big"), end_stream=True)
        t0 = now()
        await client.send(h2c.data_to_send())  # and never reads a byte
        for event in done.values():
            await event.wait()
        await client.aclose()
    assert cancelled == []
    assert seen["/upload"] == ["http.request", ("http.disconnect", pytest.approx(t0 + 6.0))]
    assert seen["/big"] == [
        "http.request",
        ("ClientDisconnected", pytest.approx(t0 + 6.0)),
        ("http.disconnect", pytest.approx(t0 + 6.0)),
    ]


@pytest.mark.usefixtures("virtual_clock")
async def test_our_goaway_for_a_protocol_error_is_a_disconnect_for_the_streams() -> None:
    seen: list[Any] = []
    ready, done = anyio.Event(), anyio.Event()
    cancelled = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal cancelled
        try:
            seen.append(await receive())
            ready.set()
            seen.append(await receive())
            await anyio.lowlevel.checkpoint()  # cleanup after the disconnect still runs
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise
        finally:
            done.set()

    async with running(app, make_config(timeout_keep_alive=None)) as srv:
        client = await srv.connect()
        h2c = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        h2c.initiate_connection()
        h2c.send_headers(1, _request(b"POST", b"/upload"))
        h2c.send_data(1, b"part")
        await client.send(h2c.data_to_send())
        await ready.wait()
        await client.send(b"\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # DATA on stream 0
        await done.wait()
        goaway = []
        while data := await client.stream.receive_some(65536):
            events = h2c.receive_data(data)
            goaway += [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert not cancelled
    assert seen[1] == {"type": "http.disconnect"}
    assert [e.error_code for e in goaway] == [h2.errors.ErrorCodes.PROTOCOL_ERROR]
