"""One HTTP/2 connection: a reader, one writer, and one task per stream, in one nursery.

The reader (the connection's own task) reads under the connection's deadline,
feeds the sans-IO core (``receive_data(data, now)``) and dispatches its events: a
new request starts a task running the same :class:`~._http_cycle.HTTPCycle` as
HTTP/1.1 over an :class:`~._http2_stream.H2Stream`; a reset cancels that stream's
task; window updates wake the stream that waits for them. Only
:class:`~._http2_writer.H2Writer` writes.

Deadlines, on the options that govern HTTP/1.1 too: the connection preface under
``timeout_first_byte``, an open header block under ``timeout_request_head``, a
connection with no open stream under ``timeout_keep_alive``; per stream, body
silence under ``timeout_body_idle`` and a stalled send under ``timeout_write``
(in the stream). A shutdown is RFC 9113's two-step GOAWAY: in-flight streams
finish (the server's grace period bounds them), new ones are refused.
"""

from __future__ import annotations

import logging
import math
from typing import Final

import anyio
from h2.errors import ErrorCodes

from .._config import Config
from .._errors import ClientDisconnected
from .._protocol._http2 import H2ServerConnection
from .._protocol._http2_events import (
    BodyEnded,
    BodyReceived,
    ConnectionTerminated,
    H2Event,
    RequestReceived,
    RequestRejected,
    ShutdownComplete,
    StreamReset,
    WindowOpened,
)
from .._protocol._http2_frames import PREFACE
from .._protocol._http2_limits import H2Settings
from .._protocol._http11_request import RequestHead
from ._http2_stream import H2Stream, as_request_head
from ._http2_tasks import STREAM_TASK, StreamGroup, open_stream_group
from ._http2_websocket import H2WebSocket
from ._http2_writer import H2Writer
from ._http_cycle import HTTPCycle
from ._proxy import Peer
from ._request_stream import CycleContext, CycleEnd
from ._state import ServerState
from ._transport import Transport

logger = logging.getLogger("trio_asgi")

#: After our first GOAWAY, how long the client has to answer its PING before the
#: second GOAWAY names the last stream we serve.
SHUTDOWN_ROUND_TRIP: Final = 1.0


def h2_settings(config: Config) -> H2Settings:
    """The HTTP/2 settings a server with ``config`` advertises and enforces."""
    header_list = config.http2_max_header_list_size
    return H2Settings(
        max_concurrent_streams=config.http2_max_concurrent_streams,
        initial_window_size=config.http2_initial_window_size,
        # The connection window never caps one stream below its own window.
        connection_window_size=max(1048576, config.http2_initial_window_size),
        max_frame_size=config.http2_max_frame_size,
        max_header_list_size=max(config.max_header_size, 4096)
        if header_list is None
        else header_list,
        # RFC 8441: extended CONNECT opens WebSockets, when they are served at all.
        enable_connect_protocol=config.ws != "none",
    )


class H2Connection:
    """Serves one HTTP/2 connection and closes it (its owner may close it again)."""

    def __init__(
        self,
        transport: Transport,
        context: CycleContext,
        state: ServerState,
        *,
        peer: Peer | None = None,
        upgraded: tuple[bytes, RequestHead] | None = None,
    ) -> None:
        """``peer``: whose proxy headers each stream's request may carry (as on HTTP/1.1).
        ``upgraded``: the ``HTTP2-Settings`` and the request of an ``Upgrade: h2c``,
        which is served as stream 1."""
        self._transport = transport
        self._context = context
        self._peer = peer
        self._state = state
        config = state.config
        self._core = H2ServerConnection(
            h2_settings(config),
            scheme=context.scheme,
            max_header_count=config.max_header_count,
            upgrade_settings=upgraded[0] if upgraded else None,
        )
        self._upgraded_request = upgraded[1] if upgraded else None
        self._writer = H2Writer(
            self._core, transport, config.timeout_write, on_broken=self._writer_broken
        )
        self._streams: dict[int, H2Stream] = {}
        #: The streams that carry a WebSocket (RFC 8441), for a shutdown's close 1012.
        self._websockets: dict[int, H2WebSocket] = {}
        self._task_group: StreamGroup | None = None
        self._received = 0
        self._idle_since = anyio.current_time()
        self._shutdown_at = math.inf
        self._shutdown_done = False
        self._closing = False
        #: The writer failed: the reader stops, the streams see a disconnect.
        self._lost = False
        #: Set when the last stream task ends, once the connection is over.
        self._all_finished: anyio.Event | None = None
        #: We ended the connection (a GOAWAY with an error, a deadline) while the client
        #: may still be sending: close without RST, so it reads our GOAWAY.
        self._linger = False

    # --- lifetime ----------------------------------------------------------------------------

    async def run(self, first_bytes: bytes = b"") -> None:
        """Serve until the connection ends, then close it; the stream tasks end within
        :func:`lost_connection_grace` of that (see :meth:`_wait_for_apps`)."""
        async with open_stream_group() as task_group:
            self._task_group = task_group
            # Our SETTINGS go out before anything is read; the writer's task then lives
            # while a stream is open or output is queued (see _http2_writer).
            self._writer.start(task_group.start_soon, self._has_streams)
            if self._upgraded_request is not None:
                self._add_stream(1, self._upgraded_request, end_stream=True)
            try:
                await self._read_loop(first_bytes)
            except ClientDisconnected:
                pass  # the writer failed: the streams know already
            finally:
                self._closing = True
                self._lose_streams()
            await self._flush_last_frames()
            await self._close_transport()
            await self._wait_for_apps()
            task_group.cancel_scope.cancel()

    async def _flush_last_frames(self) -> None:
        """Our last frames (a GOAWAY, resets) out, briefly; then no more writes."""
        with anyio.move_on_after(_flush_timeout(self._state.config)):
            try:
                await self._writer.wait_written()
            except ClientDisconnected:
                pass
        self._linger = self._linger and not self._writer.broken
        self._writer.stop()
        await self._writer.wait_stopped()

    async def _close_transport(self) -> None:
        """Close at once, as HTTP/1.1 does when its client left; the apps may still run."""
        if self._linger:
            await self._transport.linger_close()  # cancellable: closes either way
        else:
            await self._transport.close()

    async def _wait_for_apps(self) -> None:
        """Let the apps see the disconnect and return, within the grace; then cancel them."""
        if not self._streams:
            return
        self._all_finished = anyio.Event()
        with anyio.move_on_after(lost_connection_grace(self._state.config)):
            await self._all_finished.wait()
            return
        for stream in self._streams.values():
            request = stream.request
            logger.warning(
                "ASGI application cancelled: still running %s seconds after its HTTP/2 "
                "connection was lost (%s %s)",
                self._state.config.timeout_graceful_shutdown,
                request.method,
                request.printable_target(),
            )
            stream.scope.cancel()

    def begin_shutdown(self) -> None:
        """Step one of a graceful shutdown: GOAWAY(2^31-1) and a PING; the reader does the rest."""
        if self._shutdown_at != math.inf or self._closing:
            return
        self._core.start_shutdown()
        for websocket in self._websockets.values():
            websocket.begin_shutdown()
        self._writer.wake()
        self._shutdown_at = anyio.current_time() + SHUTDOWN_ROUND_TRIP
        self._poke_reader()

    def client_departed(self) -> bool:
        return False  # the reader always reads: a client that leaves is seen at once

    async def close_departed(self) -> None:
        await self._transport.close()

    def mark_held_head(self, mark: int) -> bool:
        """For the in-flight sweep: mark every stream's held head; whether any is held."""
        held = [stream.mark_held_head(mark) for stream in self._streams.values()]
        return any(held)

    async def release_held_head(self, mark: int, timeout: float) -> None:  # noqa: ASYNC109
        """The heads still held since ``mark`` go to the writer (queued: never waits)."""
        for stream in list(self._streams.values()):
            stream.release_marked_head(mark)

    def _writer_broken(self) -> None:
        """A write failed (or stalled past ``timeout_write``): the connection is lost."""
        self._lost = True
        self._lose_streams()
        self._poke_reader()

    def _lose_streams(self) -> None:
        """The connection is over: each stream's app sees a disconnect (not a cancellation)."""
        for stream in self._streams.values():
            stream.connection_lost()

    def _poke_reader(self) -> None:
        """Make the reader look at its deadline again (a shutdown began, a stream ended)."""
        self._transport.cancel_idle_read()

    # --- the reader --------------------------------------------------------------------------

    async def _read_loop(self, data: bytes) -> None:
        core = self._core
        while True:
            if data:
                self._received += len(data)
                if not self._dispatch(core.receive_data(data, anyio.current_time())):
                    return
                self._writer.wake()
            if self._done():
                return
            while not core.wants_read:  # our output is over its bound: let it drain first
                await self._writer.wait_written()
            got = await self._read()
            if got is None:
                return
            if not got:
                self._dispatch(core.receive_data(b"", anyio.current_time()))
                return
            data = got

    async def _read(self) -> bytes | None:
        """The next bytes (``b""``: the client closed); None to close the connection."""
        while not self._done():
            deadline, what = self._deadline()
            if deadline > anyio.current_time():
                # read_idle: one cancel scope (the transport's) for the deadline and for
                # a poke (cancel_idle_read), where a scope of our own around read()
                # made two and a frame more for every idle connection to keep.
                got = await self._transport.read_idle(deadline)
                if got is not None:
                    return got
                if deadline > anyio.current_time():
                    continue  # poked: a shutdown began or a stream ended
            if what != "shutdown":
                logger.debug("HTTP/2 %s timed out (%s)", what, self._context.client)
                if what != "preface":
                    self._core.finish_shutdown()  # GOAWAY naming the last stream served
                self._linger = True
                return None
            self._shutdown_complete(self._core.finish_shutdown())
        return None

    def _deadline(self) -> tuple[float, str]:
        config = self._state.config
        core = self._core
        candidates = [(self._shutdown_at, "shutdown")]
        if self._received < len(PREFACE):
            candidates.append((_after(self._idle_since, config.timeout_first_byte), "preface"))
        since = core.header_block_since
        if since is not None:
            candidates.append((_after(since, config.timeout_request_head), "header block"))
        if not self._streams and self._received >= len(PREFACE):
            candidates.append((_after(self._idle_since, config.timeout_keep_alive), "keep-alive"))
        return min(candidates)

    def _has_streams(self) -> bool:
        return bool(self._streams)

    def _done(self) -> bool:
        return self._lost or (self._shutdown_done and not self._streams)

    # --- events ------------------------------------------------------------------------------

    def _dispatch(self, events: list[H2Event]) -> bool:
        """Act on the core's events; False when the connection is over."""
        carry_on = True
        streams = self._streams
        for event in events:
            if isinstance(event, BodyReceived):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.body_arrived(event.data)
            elif isinstance(event, BodyEnded):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.body_ended()
            elif isinstance(event, RequestReceived):
                self._start_stream(event)
            elif isinstance(event, WindowOpened):
                self._window_opened(event.stream_id)
            elif isinstance(event, StreamReset):
                stream = streams.get(event.stream_id)
                if stream is not None:
                    stream.reset()
            elif isinstance(event, RequestRejected):
                self._rejected(event)
            elif isinstance(event, ShutdownComplete):
                self._shutdown_complete(event)
            elif isinstance(event, ConnectionTerminated):
                carry_on = self._terminated(event) and carry_on
        return carry_on

    def _start_stream(self, event: RequestReceived) -> None:
        self._add_stream(
            event.stream_id,
            as_request_head(event.head),
            end_stream=event.end_stream,
            websocket=event.head.websocket,
        )

    def _add_stream(
        self, stream_id: int, request: RequestHead, *, end_stream: bool, websocket: bool = False
    ) -> None:
        assert self._task_group is not None
        stream = H2Stream(
            stream_id,
            request,
            end_stream=end_stream,
            core=self._core,
            writer=self._writer,
            state=self._state,
            client=self._context.client,
            scope=self._task_group.new_scope(),
        )
        self._streams[stream_id] = stream
        if websocket:
            self._websockets[stream_id] = H2WebSocket(self.stream_context(stream), stream)
        self._task_group.start_soon(self._serve_stream, stream, name=STREAM_TASK)

    def _window_opened(self, stream_id: int | None) -> None:
        if stream_id is None:
            for stream in self._streams.values():
                stream.window_opened()
        elif (waiting := self._streams.get(stream_id)) is not None:
            waiting.window_opened()

    def _rejected(self, event: RequestRejected) -> None:
        logger.debug(
            "HTTP/2 stream %d refused (%s): %s",
            event.stream_id,
            event.status or event.error_code,
            event.reason,
        )
        if event.status is not None:
            self._state.rejections.rejected(self._context.client, event.status, "HTTP/2 request")

    def _shutdown_complete(self, event: ShutdownComplete) -> None:
        self._shutdown_done = True
        self._shutdown_at = math.inf
        self._writer.wake()
        logger.debug("HTTP/2 shutdown: %d streams in flight", len(event.in_flight))

    def _terminated(self, event: ConnectionTerminated) -> bool:
        logger.debug(
            "HTTP/2 connection ended (%s, %s): %s",
            event.error_code,
            "by the client" if event.by_peer else "by us",
            event.reason,
        )
        if event.graceful:
            self._shutdown_done = True  # the client's GOAWAY: let in-flight streams finish
            return True
        self._linger = not event.by_peer
        self._lose_streams()
        return False

    # --- one stream --------------------------------------------------------------------------

    async def _serve_stream(self, stream: H2Stream) -> None:
        core = self._core
        try:
            with stream.scope:
                websocket = self._websockets.get(stream.stream_id)
                if await self._refused(stream):
                    pass
                elif websocket is not None:
                    await websocket.run()
                else:
                    await self._serve_request(stream)
            if stream.response_complete and not stream.request_ended:
                # RFC 9113 section 8.1: the response is complete; stop the upload.
                core.reset_stream(stream.stream_id, ErrorCodes.NO_ERROR)
        finally:
            del self._streams[stream.stream_id]
            self._websockets.pop(stream.stream_id, None)
            core.stream_finished(stream.stream_id)
            self._writer.wake()
            if not self._streams:
                self._idle_since = anyio.current_time()
                self._poke_reader()
                if self._all_finished is not None:
                    self._all_finished.set()

    async def _serve_request(self, stream: H2Stream) -> None:
        result = await HTTPCycle(self.stream_context(stream), stream).run()
        if result.end is CycleEnd.ABANDONED:
            self._core.reset_stream(stream.stream_id)
        elif result.end is CycleEnd.GONE:
            self._core.reset_stream(stream.stream_id, ErrorCodes.CANCEL)

    def stream_context(self, stream: H2Stream) -> CycleContext:
        """The context of one stream's request: its trusted proxy headers applied."""
        peer = self._peer
        if peer is None:
            return self._context
        return peer.request_context(self._context, stream.request.headers)

    async def _refused(self, stream: H2Stream) -> bool:
        """Answer what we refuse before the app (413, 503 at capacity), as HTTP/1.1 does."""
        state = self._state
        max_body = state.config.max_body_size
        if max_body is not None and (stream.request.content_length or 0) > max_body:
            return await stream.send_error(413)
        if state.at_capacity():
            return await stream.send_error(503)
        return False


def lost_connection_grace(config: Config) -> float:
    """How long stream apps may run on after their connection is lost, before cancellation.

    HTTP/1.1 lets an app whose client left run until it returns; a lost HTTP/2
    connection would then hold every stream's app (and their bytes) with nobody to
    answer, so they get what a graceful shutdown gives: ``timeout_graceful_shutdown``.
    """
    grace = config.timeout_graceful_shutdown
    return math.inf if grace is None else grace


def _after(start: float, timeout: float | None) -> float:
    return math.inf if timeout is None else start + timeout


def _flush_timeout(config: Config) -> float:
    return 1.0 if config.timeout_write is None else min(1.0, config.timeout_write)
