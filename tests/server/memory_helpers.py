"""Shared helpers for the in-memory server tests (deadlines, limits, shutdown, lifespan).

A test runs the real :func:`trio_asgi.serve` on a
:class:`~trio_asgi.testing._memory.MemoryListener` in virtual time (the
``virtual_clock`` fixture: trio's ``MockClock(autojump_threshold=0)``, or its asyncio
twin), talks raw HTTP/1.1 through a :class:`Client` and reads answers with a small,
strict response parser (so the tests see exactly the bytes the server wrote). Only
anyio's API is used, so every helper runs on both backends; the client stream is a
trio stream (its ABCs and exceptions need no trio run).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import trio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskGroup, TaskStatus

import trio_asgi
from trio_asgi import Config, Server
from trio_asgi._types import ASGIApp, Message, Receive, Scope, Send
from trio_asgi.testing import BoundedMemoryStream
from trio_asgi.testing._memory import MemoryListener

ClientStream = trio.StapledStream[trio.abc.SendStream, trio.abc.ReceiveStream]

#: Virtual seconds after which a test counts as hung: under a virtual clock a hang
#: reaches this deadline at once, so it fails fast instead of blocking the suite.
HANG = 10_000.0


def make_config(**options: Any) -> Config:
    """A Config for memory tests: lifespan off unless asked for, no access log."""
    options.setdefault("lifespan", "off")
    options.setdefault("access_log", False)
    return Config(**options)


def now() -> float:
    return anyio.current_time()


# --- responses ------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    reason: bytes
    #: Lower-cased names, in order.
    headers: list[tuple[bytes, bytes]]
    body: bytes
    #: ``anyio.current_time()`` when the whole response had been read.
    at: float = 0.0

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, f"{name!r} appears {len(values)} times"
        return values[0] if values else None

    @property
    def closes(self) -> bool:
        return self.header(b"connection") == b"close"


class ProtocolViolation(AssertionError):
    """The server wrote bytes that are not a valid HTTP/1.1 response."""


class Client:
    """The client end of one in-memory connection, with a strict response reader."""

    def __init__(self, stream: ClientStream) -> None:
        self.stream = stream
        self._buffer = bytearray()
        self.eof = False
        #: Bytes successfully handed to the connection by :meth:`send`.
        self.bytes_sent = 0

    # sending
    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)
        self.bytes_sent += len(data)

    async def request(
        self,
        method: str = "GET",
        target: str = "/",
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        await self.send(raw_request(method, target, headers=headers, body=body))

    async def send_in_pieces(self, data: bytes, piece: int) -> None:
        """Send ``data`` ``piece`` bytes at a time (to watch a bounded pipe fill up)."""
        for start in range(0, len(data), piece):
            await self.send(data[start : start + piece])

    async def aclose(self) -> None:
        await self.stream.aclose()

    def unread_sent(self) -> int:
        """Bytes we sent that the server has not read (bounded listeners only)."""
        return cast(BoundedMemoryStream, self.stream.send_stream).statistics().unread_sent

    # receiving
    async def fill(self, max_bytes: int = 65536) -> bool:
        """Read once into the response buffer; False at end of stream."""
        if self.eof:
            return False
        data = await self.stream.receive_some(max_bytes)
        if not data:
            self.eof = True
            return False
        self._buffer += data
        return True

    async def _read_until(self, marker: bytes) -> bytes:
        while (end := self._buffer.find(marker)) < 0:
            if not await self.fill():
                raise ProtocolViolation(f"connection closed before {marker!r}: {self._buffer!r}")
        chunk = bytes(self._buffer[: end + len(marker)])
        del self._buffer[: end + len(marker)]
        return chunk

    async def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if not await self.fill():
                raise ProtocolViolation(f"closed {count - len(self._buffer)} bytes early")
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        return chunk

    async def response(self, *, head: bool = False) -> Response:
        """Read one whole response (``head``: it answers a HEAD request, so no body)."""
        raw_head = await self._read_until(b"\r\n\r\n")
        lines = raw_head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        status_text, _, reason = rest.partition(b" ")
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not status_text.isdigit() or not reason:
            raise ProtocolViolation(f"bad status line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolViolation(f"bad header line {line!r}")
            headers.append((name.lower(), value.strip()))
        response = Response(int(status_text), reason, headers, b"")
        if head or response.status in (204, 304) or response.status < 200:
            pass
        elif response.header(b"transfer-encoding") == b"chunked":
            response.body = await self._read_chunked()
        elif (length := response.header(b"content-length")) is not None:
            response.body = await self._read_exactly(int(length))
        else:
            response.body = await self.read_until_eof()
        response.at = now()
        return response

    async def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int((await self._read_until(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                while await self._read_until(b"\r\n") != b"\r\n":
                    pass  # trailers
                return bytes(body)
            body += await self._read_exactly(size)
            if await self._read_exactly(2) != b"\r\n":
                raise ProtocolViolation("chunk not followed by CRLF")

    async def read_until_eof(self) -> bytes:
        """Everything the server still writes, until it closes the connection."""
        while await self.fill():
            pass
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    async def expect_closed(self) -> float:
        """Wait for the server to close, asserting it wrote nothing more; returns the time."""
        rest = await self.read_until_eof()
        assert rest == b"", f"unexpected bytes before close: {rest!r}"
        return now()


def raw_request(
    method: str = "GET",
    target: str = "/",
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
) -> bytes:
    """An HTTP/1.1 request; adds ``Host`` and, for a body, ``Content-Length``, unless given."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append("Host: test")
    lines += [f"{name}: {value}" for name, value in headers]
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    """``pieces`` in chunked framing, with the final zero chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


# --- running a server -------------------------------------------------------------------------


@dataclass
class Running:
    """A server running on a memory listener inside a test's task group."""

    server: Server
    listener: MemoryListener
    nursery: TaskGroup
    #: Cancelling it is cancelling ``serve()`` from outside (only ``serve()`` is inside it).
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    #: Set when ``serve()`` has returned (or raised).
    stopped: anyio.Event = field(default_factory=anyio.Event)
    stopped_at: float = math.nan
    error: BaseException | None = None

    async def connect(self) -> Client:
        return Client(await self.listener.connect())

    def stats(self) -> tuple[int, int, int]:
        """``(open_connections, requests_in_flight, requests_served)``."""
        s = self.server.statistics()
        return (s.open_connections, s.requests_in_flight, s.requests_served)

    async def wait_stopped(self) -> float:
        await self.stopped.wait()
        return self.stopped_at


@asynccontextmanager
async def running(
    app: ASGIApp, config: Config | None = None, *, receive_window: int | None = None
) -> AsyncIterator[Running]:
    """Serve ``app`` on a new memory listener; on exit, shut down gracefully and wait.

    The handle arrives once lifespan startup is done, as with ``nursery.start(serve)``.
    """
    listener = MemoryListener(receive_window=receive_window)
    config = config or make_config()
    scope = anyio.CancelScope()
    with anyio.fail_after(HANG):
        async with _serving(app, config, listener, scope) as handle:
            yield handle


@asynccontextmanager
async def _serving(
    app: ASGIApp, config: Config, listener: MemoryListener, scope: anyio.CancelScope
) -> AsyncIterator[Running]:
    async with anyio.create_task_group() as nursery:
        box: list[Running] = []

        async def run(*, task_status: TaskStatus[Server] = TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await trio_asgi.serve(
                        app, config, listeners=[listener], task_status=task_status
                    )
            finally:
                if box:
                    box[0].stopped_at = now()
                    box[0].stopped.set()

        server = await nursery.start(run)
        handle = Running(server, listener, nursery, scope)
        box.append(handle)
        yield handle
        server.shutdown()
        await handle.stopped.wait()


# --- small apps -------------------------------------------------------------------------------


async def read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """Read the whole request body; also return every message received."""
    body = bytearray()
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return bytes(body), messages
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), messages


async def respond(send: Send, status: int = 200, body: bytes = b"ok") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def hello_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, answers 200 with ``hello <path>``."""
    assert scope["type"] == "http"
    await read_body(receive)
    await respond(send, 200, b"hello " + scope["path"].encode())


def gated_app(
    gate: anyio.Event, entered: Callable[[], None] | None = None
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An app that reads the body, waits for ``gate``, then answers 200."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await read_body(receive)
        if entered is not None:
            entered()
        await gate.wait()
        await respond(send, 200, b"done")

    return app


class LifespanApp:
    """An app with a lifespan handler that records, with times, what happens to it.

    ``events`` gets ``(time, what)`` pairs: the messages received, ``"cancelled"`` when
    the lifespan call is cancelled, ``"returned"`` when it returns.
    """

    def __init__(
        self,
        http_app: ASGIApp = hello_app,
        *,
        on_startup: Callable[[Scope], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.http_app = http_app
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.events: list[tuple[float, str]] = []

    def times(self, what: str) -> list[float]:
        return [t for t, w in self.events if w == what]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.http_app(scope, receive, send)
            return
        try:
            message = await receive()
            self.events.append((now(), message["type"]))
            if self.on_startup is not None:
                await self.on_startup(scope)
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            self.events.append((now(), message["type"]))
            if self.on_shutdown is not None:
                await self.on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
        except anyio.get_cancelled_exc_class():
            self.events.append((now(), "cancelled"))
            raise
        self.events.append((now(), "returned"))
