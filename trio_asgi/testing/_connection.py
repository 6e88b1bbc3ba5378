"""The client end of one in-memory connection to the real server: raw bytes, HTTP/1.1, WebSocket.

Theory of operation: :func:`~trio_asgi.testing.open_test_server` runs
:func:`trio_asgi.serve` (lifespan, connection handling, the HTTP/1.1 and WebSocket code:
everything that serves a socket) on an in-memory listener. Each
:meth:`~trio_asgi.testing.TestServer.connect` hands the server one end of
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

import h11
import trio

from ._client_errors import ConnectionClosed, InvalidResponse
from ._requests import HeaderPairs, TestRequest, WireRequest, as_bytes
from ._responses import TestResponse, response_parser
from ._streams import BoundedMemoryStream, MemoryStreamStatistics
from ._virtual_clock import wait_all_tasks_blocked
from ._waiting import aclose_forcefully, read_deadline
from ._ws_client import TestWebSocket, open_websocket

_READ_SIZE = 65536


class TestConnection:
    """The client end of one in-memory connection to the server.

    Raw bytes (:meth:`send`, :meth:`send_in_pieces`, :meth:`send_eof`, :meth:`close`,
    :meth:`receive_some`, :meth:`read_until_eof`), HTTP/1.1 (:meth:`request`,
    :meth:`pipeline`, :meth:`read_response`) and WebSocket (:meth:`websocket`).

    Reads give up after :attr:`timeout` seconds (virtual seconds under a mock clock)
    with :class:`trio.TooSlowError`.
    """

    __test__ = False

    def __init__(
        self,
        stream: BoundedMemoryStream,
        *,
        timeout: float | None,
        check_app: Callable[[], None] = lambda: None,
    ) -> None:
        #: The raw client stream.
        self.stream = stream
        self._check_app = check_app
        #: Seconds a read may wait; ``None``: forever.
        self.timeout = timeout
        #: Bytes handed to the connection so far.
        self.bytes_sent: int = 0
        #: The server closed its side and everything it wrote has been read.
        self.eof: bool = False
        self._buffer = bytearray()

    def _deadline(self) -> AbstractContextManager[None]:
        return read_deadline(self.timeout)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read under the deadline; an app error that happened meanwhile wins.

        The app's own exception says more than what the client saw of it (a 500, a
        close, a timeout), so it is raised instead, with the client's error as context.
        """
        try:
            with self._deadline():
                yield
        except (ConnectionClosed, InvalidResponse, trio.TooSlowError):
            self._check_app()
            raise
        self._check_app()

    # --- raw bytes ----------------------------------------------------------------------------

    async def send(self, data: bytes) -> bool:
        """Write ``data`` (waits while the server's receive window is full).

        Returns:
            True if it was sent; False if the server had closed the connection (a
            client would see a reset), like :meth:`send_in_pieces`.
        """
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        self.bytes_sent += len(data)
        return True

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
            if not await self.send(data[start:end]):
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

    def set_receive_window(self, window: int | None) -> None:
        """From now on, at most ``window`` unread bytes from the server (``None``: any).

        A small window is a slow reader: the server's writes, so the app's ``send()``,
        wait until the test reads. (:meth:`TestServer.connect` sets it at the start.)
        """
        self.stream.set_receive_window(window)

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
        with self._reading():
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
        parser = response_parser(method)
        if self._buffer:  # (b"" would mean end-of-stream to h11)
            parser.receive_data(bytes(self._buffer))
            self._buffer.clear()
        if self.eof:
            parser.receive_data(b"")
        with self._reading():
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
            headers=[(as_bytes(n), as_bytes(v)) for n, v in headers],
            per_message_deflate=per_message_deflate,
            pending=pending,
            read_timeout=self.timeout,
            check_app=self._check_app,
        )
