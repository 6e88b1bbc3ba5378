"""A small WebSocket client for server tests: a raw HTTP handshake, then wsproto frames.

It runs over an anyio byte stream (a TCP socket, on trio or asyncio) or a trio
stream (an in-memory connection, wrapped on the way in), so the same client
drives the socket tests and the virtual-clock memory tests, on both backends.

* :func:`upgrade_request` builds handshake bytes, valid by default; any header
  can be replaced, dropped or repeated to make a bad one.
* :func:`open_websocket` sends a handshake and reads the answer with an h11
  client. On a ``101`` the returned :class:`WSClient` speaks WebSocket through a
  post-handshake :class:`wsproto.connection.Connection` (bytes that came with the
  ``101`` are handed to it); on anything else it holds the HTTP answer.
* :meth:`WSClient.send_raw` writes bytes wsproto would never write (unmasked
  frames, reserved bits), built with :mod:`trio_asgi.testing._ws_frames`.
* :class:`EchoApp` is the app most tests serve; :func:`close_cleanly` is the
  client's side of a clean closing handshake.

The client never answers anything on its own: a test that wants a pong or a
closing-handshake reply sends it (or uses :meth:`WSClient.receive_message` and
:meth:`WSClient.expect_close`, which do).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import h11
import pytest
import trio
from wsproto.connection import CLIENT, Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

from trio_asgi._types import Message as ASGIMessage
from trio_asgi._types import Receive, Scope, Send
from trio_asgi.testing import AnyIOByteStream
from trio_asgi.testing._ws_frames import Frame

#: The key from RFC 6455's example; any valid key works, a fixed one keeps bytes readable.
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def upgrade_request(
    target: str = "/",
    *,
    replace: Mapping[str, str | bytes | None] | None = None,
    extra: Sequence[tuple[str, str | bytes]] = (),
    http_version: str = "1.1",
) -> bytes:
    """Handshake request bytes: valid, unless ``replace`` or ``extra`` say otherwise.

    Args:
        target: The request target.
        replace: New values for the default headers (names as below); ``None`` drops one.
        extra: More headers, appended as given (repeat a default one to duplicate it).
        http_version: ``"1.1"`` or ``"1.0"``.
    """
    headers: dict[str, str | bytes | None] = {
        "Host": "test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    headers.update(replace or {})
    lines = [f"GET {target} HTTP/{http_version}".encode("ascii")]
    for name, value in [*headers.items(), *extra]:
        if value is not None:
            raw = value if isinstance(value, bytes) else value.encode("latin-1")
            lines.append(name.encode("ascii") + b": " + raw)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclass
class HTTPAnswer:
    """The server's HTTP answer to a handshake (the ``101`` or a refusal)."""

    status: int
    reason: bytes
    #: Lower-cased names, in order.
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.headers if key == name]
        assert len(values) <= 1, f"{name!r} appears {len(values)} times"
        return values[0] if values else None


class WSClient:
    """One client connection after its handshake: see the module docstring."""

    def __init__(self, stream: anyio.abc.ByteStream, answer: HTTPAnswer, buffer: bytes) -> None:
        self.stream = stream
        #: The handshake's HTTP answer.
        self.answer = answer
        self.conn: Connection | None = None
        #: Bytes not yet handed to ``conn`` (or, for a refusal, after the answer).
        self._buffer = buffer
        #: Everything read after wsproto's connection closed.
        self.after_close = b""

    @property
    def accepted(self) -> bool:
        return self.conn is not None

    def _start(self, extensions: list[Extension]) -> None:
        self.conn = Connection(CLIENT, extensions=extensions, trailing_data=self._buffer)
        self._buffer = b""

    # --- sending ------------------------------------------------------------------------------

    async def send(self, event: Event) -> None:
        assert self.conn is not None, "not accepted"
        await self.stream.send(self.conn.send(event))

    async def send_text(self, text: str) -> None:
        await self.send(TextMessage(text))

    async def send_bytes(self, data: bytes) -> None:
        await self.send(BytesMessage(data))

    async def ping(self, payload: bytes = b"") -> None:
        await self.send(Ping(payload))

    async def close(self, code: int | None = 1000, reason: str | None = None) -> None:
        """Our close frame; ``code=None`` sends one without a code."""
        # wsproto writes an empty close payload only for this enum member (an identity test).
        await self.send(
            CloseConnection(CloseReason.NO_STATUS_RCVD if code is None else code, reason)
        )

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send(data)

    # --- receiving ----------------------------------------------------------------------------

    async def _read(self) -> bytes:
        try:
            return bytes(await self.stream.receive(65536))
        except (anyio.EndOfStream, anyio.BrokenResourceError):  # closed, or a reset
            return b""

    async def next_event(self) -> Event:
        """The next wsproto event; ``CloseConnection(1006)`` if the connection drops first."""
        conn = self.conn
        assert conn is not None, "not accepted"
        while True:
            for event in conn.events():
                return event
            if conn.state is ConnectionState.CLOSED:
                raise AssertionError("the WebSocket is closed: no more events")
            data = await self._read()
            conn.receive_data(data or None)

    async def receive_message(self) -> str | bytes:
        """The next whole data message; pings are answered, pongs skipped.

        Raises:
            AssertionError: a close came instead (its code and reason are in the message).
        """
        parts: list[str | bytes | bytearray] = []
        while True:
            event = await self.next_event()
            if isinstance(event, Ping):
                await self.send(event.response())
                continue
            if isinstance(event, Pong):
                continue
            assert isinstance(event, TextMessage | BytesMessage), f"expected a message: {event!r}"
            parts.append(event.data)
            if event.message_finished:
                if isinstance(event, TextMessage):
                    return "".join(p for p in parts if isinstance(p, str))
                return b"".join(p for p in parts if isinstance(p, bytes | bytearray))

    async def expect_close(self, *, reply: bool = True) -> tuple[int, str]:
        """Read up to the server's close frame (skipping pings and pongs) and answer it.

        Returns:
            The code and reason; ``(1006, "")`` if the connection dropped without one.
        """
        while True:
            event = await self.next_event()
            if isinstance(event, Ping | Pong):
                continue
            if isinstance(event, CloseConnection):
                assert self.conn is not None
                if reply and self.conn.state is ConnectionState.REMOTE_CLOSING:
                    try:
                        await self.send(event.response())
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                return event.code, event.reason or ""
            raise AssertionError(f"expected a close frame, got {event!r}")

    async def read_until_eof(self) -> bytes:
        """Raw bytes until the server closes the connection (a reset counts as closed).

        Then the client closes too, so a server that lingers after an error answer
        (reading what the client might still send) is not kept waiting.
        """
        data, self._buffer = self._buffer, b""
        while chunk := await self._read():
            data += chunk
        await self.aclose()
        return data

    async def expect_eof(self) -> None:
        """The server closes the connection without writing anything more."""
        rest = await self.read_until_eof()
        assert rest == b"", f"unexpected bytes before EOF: {rest!r}"

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)


# --- a test app --------------------------------------------------------------------------------


class EchoApp:
    """Accepts (with ``accept`` options) and echoes; records the scope and what it received."""

    def __init__(self, **accept: Any) -> None:
        self.accept = accept
        self.scope: Scope | None = None
        self.received: list[ASGIMessage] = []
        self.done = anyio.Event()

    @property
    def disconnect(self) -> ASGIMessage:
        last = self.received[-1]
        assert last["type"] == "websocket.disconnect", self.received
        return last

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        try:
            self.received.append(await receive())
            await send({"type": "websocket.accept", **self.accept})
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                data = {k: v for k, v in message.items() if k in ("text", "bytes")}
                await send({"type": "websocket.send", **data})
        finally:
            self.done.set()


# --- connecting --------------------------------------------------------------------------------


async def close_cleanly(client: WSClient, code: int = 1000) -> None:
    """The client's closing handshake: our close, the server's answer, then EOF."""
    await client.close(code)
    assert await client.expect_close() == (code, "")
    await client.expect_eof()


async def open_websocket(
    stream: anyio.abc.ByteStream | trio.abc.Stream,
    target: str = "/",
    *,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str | bytes]] = (),
    deflate: bool = False,
    request: bytes | None = None,
    also_send: bytes = b"",
) -> WSClient:
    """Send a handshake (``request``, or a valid one built from the arguments) and read the answer.

    Args:
        stream: The connection.
        target: The request target.
        subprotocols: Offered in ``Sec-WebSocket-Protocol``.
        headers: Extra request headers.
        deflate: Offer permessage-deflate (and use it if the server accepts it).
        request: Raw request bytes to send instead of building them.
        also_send: Bytes sent in the same write, right after the request.

    Returns:
        The client; check :attr:`WSClient.accepted` or :attr:`WSClient.answer`. A refusal's
        body is read (to its Content-Length, or to EOF without one).
    """
    if isinstance(stream, trio.abc.Stream):
        stream = AnyIOByteStream(stream)
    extension = PerMessageDeflate() if deflate else None
    if request is None:
        extra = list(headers)
        if subprotocols:
            extra.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
        if extension is not None:
            offer = extension.offer()
            assert isinstance(offer, str)
            extra.append(("Sec-WebSocket-Extensions", f"{extension.name}; {offer}"))
        request = upgrade_request(target, extra=extra)
    await stream.send(request + also_send)
    client = await _read_answer(stream)
    if client.answer.status == 101:
        accept = client.answer.header(b"sec-websocket-accept")
        assert accept == generate_accept_token(_sent_key(request)), accept
        extensions: list[Extension] = []
        agreed = client.answer.header(b"sec-websocket-extensions")
        if agreed is not None:
            assert extension is not None, f"an extension we did not offer: {agreed!r}"
            extension.finalize(agreed.decode("ascii"))
            extensions.append(extension)
        client._start(extensions)
    return client


def _sent_key(request: bytes) -> bytes:
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            return value.strip()
    raise AssertionError("no key sent")


async def _read_answer(stream: anyio.abc.ByteStream) -> WSClient:
    conn = h11.Connection(h11.CLIENT)
    # h11 must believe it sent an upgrade request, or it refuses a 101; nothing is sent.
    conn.send(
        h11.Request(
            method="GET",
            target="/",
            headers=[("host", "test"), ("upgrade", "websocket"), ("connection", "upgrade")],
        )
    )
    conn.send(h11.EndOfMessage())
    answer: HTTPAnswer | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = bytes(await stream.receive(65536))
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = b""
            conn.receive_data(data)
        elif event is h11.PAUSED:  # switched protocols: the rest is WebSocket
            assert answer is not None
            return WSClient(stream, answer, conn.trailing_data[0])
        elif isinstance(event, h11.InformationalResponse | h11.Response):
            answer = HTTPAnswer(event.status_code, event.reason, list(event.headers))
        elif isinstance(event, h11.Data):
            assert answer is not None
            answer.body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert answer is not None
            return WSClient(stream, answer, conn.trailing_data[0])
        else:
            raise AssertionError(f"unexpected {event!r} while reading the handshake answer")


# --- small helpers for the socket tests -----------------------------------------------------------

#: Seconds a socket test may take before it fails instead of hanging.
TIMEOUT = 5

#: The ``ws_connect`` fixture: ``await ws_connect(server, target, **open_websocket_options)``.
Connect = Callable[..., Awaitable["WSClient"]]


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def masked(opcode: int, payload: bytes, **options: Any) -> bytes:
    """A client frame, masked with a non-zero key unless ``mask`` is given."""
    options.setdefault("mask", b"\x12\x34\x56\x78")
    return Frame(opcode, payload, **options).data
