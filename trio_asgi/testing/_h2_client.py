"""An in-memory HTTP/2 client, on the ``h2`` library, over a :class:`TestConnection`.

Theory of operation: :meth:`TestServer.connect_http2` (or :func:`open_http2` on a
:class:`TestConnection` already open) writes the connection preface by prior
knowledge on the in-memory stream, so the real server takes its HTTP/2 path exactly
as for a cleartext client on a socket. An
``h2`` client connection keeps the protocol state; nothing runs in the background:
whenever the test waits for something (a response, a window update, a GOAWAY), the
waiting call reads from the stream and feeds ``h2`` until it has happened. Several
tasks may wait at once (one per stream, say); one of them reads at a time and each
sees what the others read.

Two ways to write. Through ``h2`` (:meth:`start_request`, :meth:`send_body`,
:meth:`send_trailers`, :meth:`reset_stream`, :meth:`goaway`...): valid frames, flow
control obeyed. Raw (:meth:`send_raw`, with the frame builders of
:mod:`trio_asgi.testing.strategies`): any bytes at all. The first raw write ends
``h2``'s bookkeeping (it cannot follow a protocol broken on purpose), so from then
on the client only records the server's frames (:attr:`frames`, :meth:`settle`,
:meth:`read_until_closed`) and its GOAWAY (:attr:`goaway`).

Every frame the server writes is recorded in :attr:`frames` in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from ._client_errors import ConnectionClosed, InvalidResponse
from ._connection import TestConnection
from ._h2_frames import (
    H2Frame,
    H2FrameReader,
    H2FrameType,
    encode_h2_frame,
    goaway_frame,
    request_fields,
)
from ._h2_responses import GoAway, TestH2Response
from ._requests import HeaderPairs, as_bytes
from ._virtual_clock import wait_all_tasks_blocked

#: RST_STREAM's CANCEL: what a client that gives up on a stream sends.
CANCEL = 0x8


class TestH2Connection:
    """The client end of one HTTP/2 connection to the server (prior knowledge, in memory).

    Reads give up after the connection's :attr:`TestConnection.timeout` with
    :class:`trio.TooSlowError`, and raise the app's own error first, as the HTTP/1.1
    client does. Make one with :meth:`TestServer.connect_http2`.

    Example:
        >>> import trio, trio.testing
        >>> from trio_asgi.testing import open_test_server
        >>> async def app(scope, receive, send):
        ...     await send({"type": "http.response.start", "status": 200})
        ...     await send({"type": "http.response.body", "body": scope["http_version"].encode()})
        >>> async def main():
        ...     async with open_test_server(app, lifespan="off") as server:
        ...         client = await server.connect_http2()
        ...         first, second = [await client.start_request("GET", p) for p in ("/a", "/b")]
        ...         return [(await client.read_response(s)).body for s in (second, first)]
        >>> trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        [b'2', b'2']
    """

    __test__ = False

    def __init__(self, connection: TestConnection, *, auto_window_update: bool = True) -> None:
        #: The in-memory connection underneath (raw bytes, statistics, close).
        self.connection: TestConnection = connection
        #: The ``h2`` client state (for what the methods here do not cover).
        self.h2: h2.connection.H2Connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        #: Give window back as DATA arrives; False: only :meth:`open_window` does.
        self.auto_window_update: bool = auto_window_update
        #: Every frame the server wrote, in order.
        self.frames: list[H2Frame] = []
        #: The last GOAWAY the server sent, if any.
        self.goaway_received: GoAway | None = None
        #: ``h2`` no longer follows the connection (after :meth:`send_raw`, or once
        #: the server broke the protocol in a way ``h2`` refused).
        self.raw: bool = False
        self._reader = H2FrameReader()
        self._responses: dict[int, TestH2Response] = {}
        self._settings_received = False
        self._pings_acked = 0
        self._goaway_sent = False
        self._read_lock = anyio.Lock()
        self._send_lock = anyio.Lock()

    # --- opening and raw bytes ----------------------------------------------------------------

    async def start(self, initial_window_size: int | None = None) -> None:
        """Send the preface and SETTINGS; wait for the server's SETTINGS.

        Args:
            initial_window_size: Our SETTINGS_INITIAL_WINDOW_SIZE: how many response
                bytes the server may send on a stream before we grant more (h2's
                default 65,535). The connection window stays at 65,535.

        Raises:
            ConnectionClosed: The server closed the connection first.
        """
        self.h2.initiate_connection()
        if initial_window_size is not None:
            self.h2.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window_size}
            )
        await self._flush()
        await self._wait_for(lambda: self._settings_received, "the server's SETTINGS")

    async def send_raw(self, data: bytes) -> bool:
        """Write any bytes; ``h2`` stops following the connection (see the module docs).

        Returns:
            False if the server had closed the connection already.
        """
        self.raw = True
        async with self._send_lock:
            return await self.connection.send(data)

    async def settle(self) -> list[H2Frame]:
        """Once every task is blocked, read what the server wrote; the new frames."""
        await wait_all_tasks_blocked()
        before = len(self.frames)
        while self.connection.stream.statistics().unread_received and not self.connection.eof:
            async with self._read_lock:
                await self._pump()
            await wait_all_tasks_blocked()
        return self.frames[before:]

    async def read_until_closed(self) -> list[H2Frame]:
        """Read until the server closes the connection; every frame it wrote."""
        await self._wait_for(lambda: False, "the end of the connection", eof_ok=True)
        return self.frames

    async def close(self) -> None:
        """Drop the connection without a GOAWAY."""
        await self.connection.close()

    @property
    def closed(self) -> bool:
        """The server closed the connection and everything it wrote has been read."""
        return self.connection.eof

    def resets(self) -> dict[int, int]:
        """The error code of each RST_STREAM the server sent, by stream."""
        return {
            frame.stream_id: code
            for frame in self.frames
            if frame.type == H2FrameType.RST_STREAM and (code := frame.error_code) is not None
        }

    # --- requests -----------------------------------------------------------------------------

    async def start_request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        headers: HeaderPairs = (),
        end_stream: bool = True,
        authority: str = "example.com",
        scheme: str = "http",
    ) -> int:
        """Open a stream with a request head; return its stream id.

        Args:
            method: The ``:method``.
            path: The ``:path``.
            headers: The other header fields (names lower-case, as HTTP/2 wants).
            end_stream: No body follows (else :meth:`send_body` / :meth:`send_trailers`).
            authority: The ``:authority``.
            scheme: The ``:scheme``.
        """
        fields = request_fields(
            method,
            path,
            [(as_bytes(n), as_bytes(v)) for n, v in headers],
            authority=authority.encode("ascii"),
            scheme=scheme.encode("ascii"),
        )
        self._check_not_raw()
        if self._goaway_sent:
            raise RuntimeError("this client sent GOAWAY: it opens no new streams")
        stream_id: int = self.h2.get_next_available_stream_id()
        self._responses[stream_id] = TestH2Response(stream_id)
        self.h2.send_headers(stream_id, fields, end_stream=end_stream)
        await self._flush()
        return stream_id

    async def send_body(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> bool:
        """Send body bytes, in frames as large as the windows allow, waiting for window.

        Returns:
            True if all was sent; False if the server reset the stream first (the
            rest is dropped, as a client would).

        Raises:
            ConnectionClosed: The connection ended first.
            trio.TooSlowError: The server granted no window within the read timeout
                (its app does not read).
        """
        self._check_not_raw()
        response = self._response(stream_id)
        view = memoryview(data)
        while True:
            room = await self._wait_send_room(response) if view else 0
            if response.reset_code is not None:
                return False
            piece, view = view[:room], view[room:]
            last = end_stream and not view
            if piece or last:
                self.h2.send_data(stream_id, bytes(piece), end_stream=last)
                await self._flush()
            if not view:
                return True

    async def send_trailers(self, stream_id: int, trailers: HeaderPairs) -> None:
        """End the request with trailer fields."""
        self._check_not_raw()
        fields = [(as_bytes(n), as_bytes(v)) for n, v in trailers]
        self.h2.send_headers(stream_id, fields, end_stream=True)
        await self._flush()

    async def end_stream(self, stream_id: int) -> None:
        """End the request body (an empty DATA frame with END_STREAM)."""
        self._check_not_raw()
        self.h2.end_stream(stream_id)
        await self._flush()

    async def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        headers: HeaderPairs = (),
        body: bytes | Sequence[bytes] = b"",
        trailers: HeaderPairs = (),
    ) -> TestH2Response:
        """Send one request on a new stream and read its response.

        Args:
            method: The ``:method``.
            path: The ``:path``.
            headers: Other header fields.
            body: The body, or its pieces (each its own DATA frame, or more).
            trailers: Trailer fields to end the request with.
        """
        pieces = [body] if isinstance(body, bytes) else list(body)
        has_body = any(pieces) or bool(trailers)
        stream_id = await self.start_request(method, path, headers=headers, end_stream=not has_body)
        if has_body:
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1 and not trailers
                await self.send_body(stream_id, piece, end_stream=last)
            if trailers:
                await self.send_trailers(stream_id, trailers)
        return await self.read_response(stream_id)

    async def read_response(self, stream_id: int) -> TestH2Response:
        """Wait until the stream is over (ended or reset by the server); its response.

        Raises:
            ConnectionClosed: The connection ended before the stream did.
            InvalidResponse: The server broke the protocol.
        """
        response = self._response(stream_id)
        await self._wait_for(lambda: response.finished, f"the end of stream {stream_id}")
        return response

    async def read_response_head(self, stream_id: int) -> TestH2Response:
        """Wait for the final response head only (the body may still be coming)."""
        response = self._response(stream_id)
        await self._wait_for(
            lambda: response.status != 0 or response.finished, f"a head on stream {stream_id}"
        )
        return response

    def response(self, stream_id: int) -> TestH2Response:
        """What stream ``stream_id`` received so far (updated as the client reads)."""
        return self._response(stream_id)

    # --- control ------------------------------------------------------------------------------

    async def reset_stream(self, stream_id: int, error_code: int = CANCEL) -> None:
        """Send RST_STREAM (default CANCEL): the client gives up on the stream."""
        self._check_not_raw()
        self.h2.reset_stream(stream_id, error_code)
        await self._flush()

    async def goaway(self, error_code: int = 0, last_stream_id: int = 0) -> None:
        """Send GOAWAY: we open no new streams; those open may finish (with NO_ERROR).

        The frame is written by hand: h2 would close its side at once, while a
        client's GOAWAY leaves its open streams to finish (RFC 9113 section 6.8).
        """
        self._check_not_raw()
        self._goaway_sent = True
        async with self._send_lock:
            await self.connection.send(goaway_frame(last_stream_id, error_code))

    async def ping(self, opaque: bytes = b"trioasgi") -> None:
        """Send a PING and wait for its ACK."""
        self._check_not_raw()
        acked = self._pings_acked
        self.h2.ping(opaque)
        await self._flush()
        await self._wait_for(lambda: self._pings_acked > acked, "a PING ACK")

    async def open_window(self, increment: int, stream_id: int | None = None) -> None:
        """Grant the server ``increment`` more bytes on a stream (None: the connection).

        With ``auto_window_update=False`` this is the only way the server gets window
        back: a client that does not read.
        """
        self._check_not_raw()
        self.h2.increment_flow_control_window(increment, stream_id)
        await self._flush()

    def send_window(self, stream_id: int) -> int:
        """How many body bytes we may send on the stream now (stream and connection)."""
        return int(self.h2.local_flow_control_window(stream_id))

    # --- the read loop ------------------------------------------------------------------------

    def _response(self, stream_id: int) -> TestH2Response:
        if stream_id not in self._responses:
            raise ValueError(f"stream {stream_id} was not opened by this client")
        return self._responses[stream_id]

    def _check_not_raw(self) -> None:
        if self.raw:
            raise RuntimeError("raw bytes were sent: h2 no longer follows this connection")

    async def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            async with self._send_lock:
                await self.connection.send(data)

    async def _wait_send_room(self, response: TestH2Response) -> int:
        """Wait until the stream may take body bytes (or was reset); how many."""
        stream_id = response.stream_id

        def ready() -> bool:
            return response.reset_code is not None or self.send_window(stream_id) > 0

        await self._wait_for(ready, f"window on stream {stream_id}")
        if response.reset_code is not None:
            return 0
        return min(self.send_window(stream_id), int(self.h2.max_outbound_frame_size))

    async def _wait_for(self, done: Callable[[], bool], what: str, *, eof_ok: bool = False) -> None:
        with self.connection._reading():
            while not done():
                if self.connection.eof:
                    if eof_ok:
                        return
                    raise ConnectionClosed(f"the server closed the connection before {what}")
                async with self._read_lock:
                    if not done():
                        await self._pump()

    async def _pump(self) -> None:
        """Read once; record the frames; let ``h2`` handle them unless in raw mode.

        GOAWAY frames are kept from h2, which would stop at the first one, while
        the streams it leaves open go on (the server's two-step graceful close).
        """
        data = await self.connection._read()
        for frame in self._reader.feed(data):
            self._record(frame)
            if self.raw or frame.type == H2FrameType.GOAWAY:
                continue
            wire = encode_h2_frame(frame.type, frame.flags, frame.stream_id, frame.payload)
            try:
                events = self.h2.receive_data(wire)
            except h2.exceptions.ProtocolError as exc:
                self.raw = True
                raise InvalidResponse(f"the server broke HTTP/2: {exc!r}") from None
            for event in events:
                self._handle(event)
        if not self.raw:
            await self._flush()

    def _record(self, frame: H2Frame) -> None:
        self.frames.append(frame)
        if frame.type == H2FrameType.GOAWAY:
            self.goaway_received = GoAway(
                frame.error_code or 0, frame.last_stream_id or 0, frame.payload[8:]
            )
        elif frame.type == H2FrameType.SETTINGS:
            self._settings_received = True
        elif (
            frame.type == H2FrameType.RST_STREAM
            and (response := self._responses.get(frame.stream_id)) is not None
            and response.reset_code is None  # the first reset ends it; others answer stragglers
        ):
            response.reset_code = frame.error_code

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.PingAckReceived):
            self._pings_acked += 1
        stream_id = getattr(event, "stream_id", None)
        response = self._responses.get(stream_id) if isinstance(stream_id, int) else None
        if response is None:
            return
        if isinstance(event, h2.events.InformationalResponseReceived):
            status, fields = _split_head(event.headers)
            response.informational.append((status, fields))
        elif isinstance(event, h2.events.ResponseReceived):
            response.status, response.headers = _split_head(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            response.body += event.data or b""
            if self.auto_window_update and event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, response.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            response.trailers = [(bytes(n), bytes(v)) for n, v in event.headers or []]
        elif isinstance(event, h2.events.StreamEnded):
            response.complete = True


def _split_head(
    fields: Sequence[tuple[bytes | str, bytes | str]] | None,
) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The ``:status`` and the other fields of a response head."""
    status = 0
    rest: list[tuple[bytes, bytes]] = []
    for raw_name, raw_value in fields or []:
        name, value = as_bytes(raw_name), as_bytes(raw_value)
        if name == b":status":
            status = int(value)
        else:
            rest.append((name, value))
    return status, rest


async def open_http2(
    connection: TestConnection,
    *,
    initial_window_size: int | None = None,
    auto_window_update: bool = True,
) -> TestH2Connection:
    """Speak HTTP/2 by prior knowledge on ``connection``; see :class:`TestH2Connection`."""
    client = TestH2Connection(connection, auto_window_update=auto_window_update)
    await client.start(initial_window_size)
    return client
