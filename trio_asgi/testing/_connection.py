"""The real server in memory, and a small client for it: raw bytes, HTTP/1.1 and WebSocket.

Theory of operation: :func:`open_test_server` runs :func:`trio_asgi.serve` (lifespan,
connection handling, the HTTP/1.1 and WebSocket code: everything that serves a socket)
on an in-memory listener. Each :meth:`TestServer.connect` hands the server one end of
a :func:`~trio_asgi.testing.bounded_memory_stream_pair` and the test the other, wrapped
in a :class:`TestConnection`. Nothing here uses a socket, a thread or the wall clock
on its own: run tests under ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's
``autojump_clock`` fixture), or on asyncio in an event loop with the same virtual
clock (``trio_asgi.testing._virtual_clock.VirtualClockEventLoop``), and every server
timeout fires at once, in virtual time, and a run is a pure function of the inputs, so
a failing hypothesis example replays exactly.

The HTTP layer serialises requests with an ``h11`` client and parses each response
with a fresh ``h11`` client that is told only the request's method, so pipelined
requests, raw bytes and requests drawn by :mod:`trio_asgi.testing.strategies` are all
read back the same way. A server that writes something that is not HTTP raises
:class:`InvalidResponse`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.abc
import h11
import trio

from .._config import Config
from .._server._serve import Server, serve
from .._server._state import ServerStatistics
from .._types import ASGIApp
from ._client_errors import ConnectionClosed, InvalidResponse
from ._memory import MemoryListener
from ._server_errors import ServerErrors, capture_server_errors
from ._streams import BoundedMemoryStream, MemoryStreamStatistics
from ._virtual_clock import wait_all_tasks_blocked
from ._waiting import aclose_forcefully, read_deadline
from ._ws_client import TestWebSocket, open_websocket

#: Virtual seconds a read waits before :class:`trio.TooSlowError`: longer than every
#: default server timeout, so a hang is reported instead of blocking the test.
DEFAULT_TIMEOUT = 120.0

_READ_SIZE = 65536


@dataclass
class TestResponse:
    """One response, as the client read it.

    Attributes:
        status: The status code.
        reason: The reason phrase.
        headers: The header fields, names lower-cased, in order.
        body: The body, de-chunked (empty for HEAD, 1xx, 204 and 304).
        http_version: ``"1.1"`` or ``"1.0"``.
        closes_connection: The server said it closes the connection after this
            response (``Connection: close``, an HTTP/1.0 answer, or a body that ends
            at the close).
        informational: ``(status, headers)`` of each ``1xx`` response before it.
        trailers: The trailer fields of a chunked body.
    """

    __test__ = False  # not a pytest test class, despite the name

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    http_version: str
    closes_connection: bool
    informational: list[tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def header(self, name: bytes | str) -> bytes | None:
        """The value of header ``name`` (any case), or ``None``.

        Raises:
            AssertionError: The header appears more than once.
        """
        key = (name.encode("ascii") if isinstance(name, str) else name).lower()
        values = [value for n, value in self.headers if n == key]
        assert len(values) <= 1, f"{key!r} appears {len(values)} times: {values!r}"
        return values[0] if values else None


class WireRequest(Protocol):
    """Anything with a method and its bytes: :class:`TestRequest`, or a drawn
    :class:`~trio_asgi.testing.strategies.RawRequest`."""

    @property
    def method(self) -> str: ...

    @property
    def data(self) -> bytes: ...


HeaderPairs = Sequence[tuple[str | bytes, str | bytes]]


@dataclass(frozen=True)
class TestRequest:
    """A well-formed HTTP/1.1 request, serialised by an ``h11`` client.

    ``Host`` is added unless given, and ``Content-Length`` (or, with ``chunked``,
    ``Transfer-Encoding: chunked``) when there is a body.

    Attributes:
        method: The method.
        target: The request target, e.g. ``"/items?id=3"``.
        headers: Extra header fields.
        body: The body; a sequence of pieces becomes one chunk each when ``chunked``.
        chunked: Send the body with chunked framing.
    """

    __test__ = False

    method: str = "GET"
    target: str = "/"
    headers: HeaderPairs = ()
    body: bytes | Sequence[bytes] = b""
    chunked: bool = False

    @property
    def data(self) -> bytes:
        """The request's bytes on the wire."""
        pieces = [self.body] if isinstance(self.body, bytes) else list(self.body)
        headers = [(_b(name), _b(value)) for name, value in self.headers]
        names = {name.lower() for name, _ in headers}
        if b"host" not in names:
            headers.insert(0, (b"host", b"testserver"))
        if self.chunked:
            if b"transfer-encoding" not in names:
                headers.append((b"transfer-encoding", b"chunked"))
        elif any(pieces) and b"content-length" not in names:
            headers.append((b"content-length", b"%d" % sum(map(len, pieces))))
        client = h11.Connection(h11.CLIENT)
        out = [client.send(h11.Request(method=self.method, target=self.target, headers=headers))]
        out += [client.send(h11.Data(data=piece)) for piece in pieces if piece]
        out.append(client.send(h11.EndOfMessage()))
        return b"".join(part or b"" for part in out)


def _b(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


class TestConnection:
    """The client end of one in-memory connection to the server.

    Raw bytes (:meth:`send`, :meth:`send_in_pieces`, :meth:`send_eof`, :meth:`close`,
    :meth:`receive_some`, :meth:`read_until_eof`), HTTP/1.1 (:meth:`request`,
    :meth:`pipeline`, :meth:`read_response`) and WebSocket (:meth:`websocket`).

    Reads give up after :attr:`timeout` seconds (virtual seconds under a mock clock)
    with :class:`trio.TooSlowError`.
    """

    __test__ = False

    def __init__(self, stream: BoundedMemoryStream, *, timeout: float | None) -> None:
        #: The raw client stream.
        self.stream = stream
        #: Seconds a read may wait; ``None``: forever.
        self.timeout = timeout
        #: Bytes handed to the connection so far.
        self.bytes_sent = 0
        #: The server closed its side and everything it wrote has been read.
        self.eof = False
        self._buffer = bytearray()

    def _deadline(self) -> AbstractContextManager[None]:
        return read_deadline(self.timeout)

    # --- raw bytes ----------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write ``data`` (waits while the server's receive window is full).

        Raises:
            trio.BrokenResourceError: The server closed the connection.
        """
        await self.stream.send_all(data)
        self.bytes_sent += len(data)

    async def send_in_pieces(self, data: bytes, splits: int | Sequence[int]) -> bool:
        """Write ``data`` in pieces, letting the server process each before the next.

        Args:
            data: The bytes.
            splits: A piece size, or the offsets to cut at (any order; out-of-range
                and repeated offsets are ignored).

        Returns:
            True if every piece was sent; False if the server closed the connection
            first (a client would see a reset), so the rest was not.
        """
        if isinstance(splits, int):
            if splits < 1:
                raise ValueError("piece size must be at least 1")
            cuts = list(range(splits, len(data), splits))
        else:
            cuts = sorted({cut for cut in splits if 0 < cut < len(data)})
        for start, end in itertools.pairwise([0, *cuts, len(data)]):
            try:
                await self.send(data[start:end])
            except trio.BrokenResourceError:
                return False
            # The server reads what is there: without this it would get all pieces at once.
            await wait_all_tasks_blocked()
        return True

    async def send_eof(self) -> None:
        """Half-close: the server reads end-of-stream after what was sent."""
        await self.stream.send_eof()

    async def close(self) -> None:
        """Drop the connection (the server's reads end and its writes fail)."""
        await aclose_forcefully(self.stream)

    def statistics(self) -> MemoryStreamStatistics:
        """Bytes waiting in each direction of the connection."""
        return self.stream.statistics()

    @property
    def bytes_taken_by_server(self) -> int:
        """How many of the bytes sent the server has read from the connection."""
        return self.bytes_sent - self.stream.statistics().unread_sent

    async def _read(self) -> bytes:
        """One read from the stream; ``b""`` at end-of-stream (a reset counts as one)."""
        if self.eof:
            return b""
        try:
            data = bytes(await self.stream.receive_some(_READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.eof = True
        return data

    async def receive_some(self) -> bytes:
        """The next bytes from the server; ``b""`` once it closed the connection."""
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        with self._deadline():
            return await self._read()

    async def read_until_eof(self) -> bytes:
        """Everything the server writes until it closes the connection."""
        data = bytearray(self._buffer)
        self._buffer.clear()
        with self._deadline():
            while chunk := await self._read():
                data += chunk
        return bytes(data)

    async def expect_closed(self) -> None:
        """Wait for the server to close, asserting it writes nothing more."""
        rest = await self.read_until_eof()
        assert not rest, f"the server wrote {len(rest)} unexpected bytes: {rest[:200]!r}"

    async def unread_response_bytes(self) -> bytes:
        """Once every task is blocked: what the server wrote that was not read yet."""
        await wait_all_tasks_blocked()
        data = bytes(self._buffer)
        self._buffer.clear()
        if self.stream.statistics().unread_received:
            data += await self._read()
        return data

    # --- HTTP/1.1 -----------------------------------------------------------------------------

    async def request(
        self,
        method: str = "GET",
        target: str = "/",
        *,
        headers: HeaderPairs = (),
        body: bytes | Sequence[bytes] = b"",
        chunked: bool = False,
    ) -> TestResponse:
        """Send one request and read its response (see :class:`TestRequest`).

        Raises:
            ConnectionClosed: The server closed the connection before a complete response.
            InvalidResponse: The server's answer is not valid HTTP/1.1.
            trio.TooSlowError: No complete response within :attr:`timeout`.
        """
        request = TestRequest(method, target, headers, body, chunked)
        await self.send(request.data)
        return await self.read_response(method)

    async def pipeline(self, requests: Sequence[WireRequest]) -> list[TestResponse]:
        """Send all ``requests`` back to back in one write, then read their responses.

        Raises:
            ConnectionClosed: The connection closed before every response; the
                responses read before are lost (use :meth:`read_responses` to keep them).
        """
        await self.send(b"".join(request.data for request in requests))
        return [await self.read_response(request.method) for request in requests]

    async def read_responses(self, methods: Sequence[str]) -> list[TestResponse]:
        """Read up to one response per method, stopping early if the server closes.

        Raises:
            InvalidResponse: The server wrote something that is not a response.
        """
        responses: list[TestResponse] = []
        for method in methods:
            try:
                responses.append(await self.read_response(method))
            except ConnectionClosed:
                break
        return responses

    async def read_response(self, method: str = "GET") -> TestResponse:
        """Read the next response, to a request with ``method`` (HEAD responses have no body).

        Raises:
            ConnectionClosed: The server closed the connection before a complete response.
            InvalidResponse: The server's answer is not valid HTTP/1.1.
            trio.TooSlowError: No complete response within :attr:`timeout`.
        """
        parser = h11.Connection(h11.CLIENT)
        # The parser only needs to know the method; it never sends anything.
        parser.send(h11.Request(method=method, target="/", headers=[(b"host", b"x")]))
        parser.send(h11.EndOfMessage())
        if self._buffer:  # (b"" would mean end-of-stream to h11)
            parser.receive_data(bytes(self._buffer))
            self._buffer.clear()
        if self.eof:
            parser.receive_data(b"")
        with self._deadline():
            response = await self._parse_response(parser)
        leftover, _ = parser.trailing_data
        self._buffer += leftover
        return response

    async def _parse_response(self, parser: h11.Connection) -> TestResponse:
        informational: list[tuple[int, list[tuple[bytes, bytes]]]] = []
        response: TestResponse | None = None
        body = bytearray()
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as exc:
                if self.eof:
                    raise ConnectionClosed(
                        f"closed in the middle of a response ({exc})", response
                    ) from None
                raise InvalidResponse(f"invalid response from the server: {exc}") from None
            if event is h11.NEED_DATA:
                parser.receive_data(await self._read())
            elif isinstance(event, h11.InformationalResponse):
                informational.append((event.status_code, list(event.headers)))
            elif isinstance(event, h11.Response):
                if not event.reason:
                    raise InvalidResponse(f"status line without a reason phrase: {event!r}")
                response = TestResponse(
                    status=event.status_code,
                    reason=bytes(event.reason),
                    headers=list(event.headers),
                    body=b"",
                    http_version=event.http_version.decode("ascii"),
                    closes_connection=False,
                    informational=informational,
                )
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                response.body = bytes(body)
                response.trailers = list(event.headers)
                response.closes_connection = parser.their_state in (h11.MUST_CLOSE, h11.CLOSED)
                return response
            else:  # ConnectionClosed before a response began
                raise ConnectionClosed("the server closed the connection without a response")

    # --- WebSocket ----------------------------------------------------------------------------

    async def websocket(
        self,
        target: str = "/",
        *,
        subprotocols: Sequence[str] = (),
        headers: HeaderPairs = (),
        per_message_deflate: bool = False,
    ) -> TestWebSocket:
        """Open a WebSocket on this connection (a wsproto client does the handshake).

        Args:
            target: The request target.
            subprotocols: The subprotocols to offer.
            headers: Extra request headers.
            per_message_deflate: Offer permessage-deflate.

        Returns:
            The WebSocket; :attr:`TestWebSocket.accepted` is false if the server
            answered with an HTTP response instead (:attr:`TestWebSocket.rejection`).

        Raises:
            ConnectionClosed: The server closed the connection without an answer.
            InvalidResponse: The answer is not a valid handshake response.
        """
        pending = bytes(self._buffer)
        self._buffer.clear()
        return await open_websocket(
            self.stream,
            target,
            subprotocols=subprotocols,
            headers=[(_b(n), _b(v)) for n, v in headers],
            per_message_deflate=per_message_deflate,
            pending=pending,
            read_timeout=self.timeout,
        )


class TestServer:
    """The handle :func:`open_test_server` yields: connect to the server, watch it, stop it.

    Attributes:
        server: The :class:`trio_asgi.Server` being run.
        app: The app as given.
    """

    __test__ = False

    def __init__(
        self,
        server: Server,
        app: ASGIApp,
        listener: MemoryListener,
        timeout: float | None,
        errors: ServerErrors,
    ) -> None:
        self.server = server
        #: What the server logged at ERROR level while running.
        self.errors = errors
        self.app = app
        self._listener = listener
        self._timeout = timeout
        #: Every connection made, in order.
        self.connections: list[TestConnection] = []

    @property
    def config(self) -> Config:
        return self.server.config

    async def connect(
        self,
        receive_window: int | None = None,
        *,
        client_address: tuple[str, int] | None = None,
    ) -> TestConnection:
        """Open a new connection to the server.

        Args:
            receive_window: At most this many unread bytes in each direction; the
                writer waits beyond it. A small window is a slow client: the
                server's ``send()`` blocks until the test reads. ``None``: unbounded.
            client_address: The ``client`` the scope reports (default: 127.0.0.1
                and a fresh port).
        """
        stream = await self._listener.open_stream(
            receive_window=receive_window, client_address=client_address
        )
        connection = TestConnection(stream, timeout=self._timeout)
        self.connections.append(connection)
        return connection

    def statistics(self) -> ServerStatistics:
        """Open connections, requests in flight and requests served, right now."""
        return self.server.statistics()

    def shutdown(self) -> None:
        """Start a graceful shutdown (what leaving the ``async with`` block does too)."""
        self.server.shutdown()


@asynccontextmanager
async def open_test_server(
    app: ASGIApp,
    config: Config | None = None,
    *,
    read_timeout: float | None = DEFAULT_TIMEOUT,
    check_server_errors: bool = True,
    **config_options: Any,
) -> AsyncIterator[TestServer]:
    """Run ``app`` on the real server stack, in memory, for the duration of the block.

    Lifespan startup has completed when the block starts; leaving the block shuts
    the server down gracefully (lifespan shutdown included) and waits for it.
    It runs on trio and on asyncio. Run it under
    ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``
    fixture), or on asyncio in an event loop with the same virtual clock: server
    timeouts then pass instantly, and a run depends on nothing but its inputs.

    Args:
        app: The ASGI app (ASGI 3, or ASGI 2 with ``interface="auto"``).
        config: The server configuration (default: ``Config()`` with the access log off).
        read_timeout: Seconds a client read waits before :class:`trio.TooSlowError`
            (``None``: forever).
        check_server_errors: On leaving the block, raise :class:`AssertionError` if
            an exception escaped a connection handler (a server bug; see
            :func:`~trio_asgi.testing.capture_server_errors`).
        **config_options: Options that replace those of ``config``, e.g.
            ``max_body_size=1024``.

    Yields:
        The :class:`TestServer`.

    Raises:
        trio_asgi.LifespanFailure: Lifespan startup failed.
        AssertionError: An exception escaped a connection handler.

    Example:
        >>> import trio, trio.testing
        >>> async def app(scope, receive, send):
        ...     if scope["type"] == "http":
        ...         await send({"type": "http.response.start", "status": 200})
        ...         body = b"hi " + scope["path"].encode()
        ...         await send({"type": "http.response.body", "body": body})
        >>> async def main():
        ...     async with open_test_server(app, lifespan="off") as server:
        ...         client = await server.connect()
        ...         response = await client.request("GET", "/there")
        ...         print(response.status, response.body)
        >>> trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        200 b'hi /there'
    """
    base = config if config is not None else Config(access_log=False)
    if config_options:
        base = base.replace(**config_options)
    listener = MemoryListener()
    with capture_server_errors() as errors:
        async with anyio.create_task_group() as group:
            server: Server = await group.start(partial(_serve, app, base, listener))
            handle = TestServer(server, app, listener, read_timeout, errors)
            yield handle
            server.shutdown()
        if check_server_errors:
            errors.check()


async def _serve(
    app: ASGIApp,
    config: Config,
    listener: MemoryListener,
    *,
    task_status: anyio.abc.TaskStatus[Server] = anyio.TASK_STATUS_IGNORED,
) -> None:
    await serve(app, config, listeners=[listener], task_status=task_status)
