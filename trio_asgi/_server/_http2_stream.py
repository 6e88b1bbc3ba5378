"""One HTTP/2 stream as a :class:`~._request_stream.RequestStream`.

The connection's reader hands this stream its body chunks as the core delivers
them (:meth:`H2Stream.body_arrived`); they are held here and reported read to the
core (``body_consumed``) only as the app takes them, so receive window goes back
to the client as the app reads: the stream's unread body is bounded by the
window. Responses go through the core, which queues no more than the windows and
its output bound allow; a sender waits on its own stream's window (never on a
shared lock) under ``timeout_write``, and returns once the one writer task has
handed its bytes to the transport.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque

import anyio
from h2.errors import ErrorCodes

from .._errors import ASGIProtocolError, ClientDisconnected
from .._protocol._http2 import H2ServerConnection
from .._protocol._http2_request import H2RequestHead
from .._protocol._http2_response import H2ResponseError
from .._protocol._http11_request import RequestHead
from .._protocol._response import reason_phrase
from ._http2_tasks import StreamScope
from ._http2_writer import H2Writer
from ._state import ServerState
from ._transport import WRITE_SLICE, FileShrunk

logger = logging.getLogger("trio_asgi")


def as_request_head(head: H2RequestHead) -> RequestHead:
    """The HTTP/2 request head in the shape the request cycle and the scope read."""
    return RequestHead(
        method=head.method,
        http_version="2",
        raw_target=head.raw_target,
        raw_path=head.raw_path,
        query_string=head.query_string,
        headers=list(head.headers),  # the app's own: the head's list may be shared
        content_length=head.content_length,
        chunked=False,
        expects_continue=head.expects_continue,
        accepts_trailers=head.accepts_trailers,
    )


class H2Stream:
    """The request and response of one HTTP/2 stream."""

    __slots__ = (
        "_arrived",
        "_awaiting_body",
        "_body_deadline",
        "_body_received",
        "_chunks",
        "_client",
        "_core",
        "_ended",
        "_gone",
        "_head_sent",
        "_held",
        "_hold_mark",
        "_state",
        "_window",
        "_writer",
        "answered",
        "app_running",
        "body_complete",
        "bytes_sent",
        "carries_websocket",
        "disconnected",
        "request",
        "response_complete",
        "response_headers",
        "scope",
        "status",
        "stream_id",
    )

    def __init__(
        self,
        stream_id: int,
        request: RequestHead,
        *,
        end_stream: bool,
        core: H2ServerConnection,
        writer: H2Writer,
        state: ServerState,
        client: tuple[str, int] | None,
        scope: StreamScope | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.request = request
        self._core = core
        self._writer = writer
        self._state = state
        self._client = client
        self._chunks: deque[bytes] = deque()
        self._ended = end_stream
        # Made when a task first waits on one (an anyio.Event costs about 4 us on trio,
        # and most streams wait on none); setting one that nobody waits on changes nothing.
        self._arrived: anyio.Event | None = None
        self._window: anyio.Event | None = None
        self._gone: anyio.Event | None = None
        self._head_sent = False
        #: The response head, checked, held until the first body message (see send_head).
        self._held: tuple[int, list[tuple[bytes, bytes]]] | None = None
        #: The in-flight sweep's mark on the held head (0: not marked).
        self._hold_mark = 0
        #: The app waits for body bytes (the client is still sending: no head to show).
        self._awaiting_body = False
        self._body_received = 0
        self._body_deadline = math.inf
        #: The scope the stream's task runs in: a reset or a lost connection cancels it.
        self.scope: StreamScope = anyio.CancelScope() if scope is None else scope
        #: An RFC 8441 WebSocket: a reset ends its reads (close 1006 for the app), it
        #: does not cancel it.
        self.carries_websocket = False
        self.app_running = False
        self.answered = 0
        self.status = 0
        self.bytes_sent = 0
        self.body_complete = False
        self.disconnected = False
        self.response_complete = False
        #: The app's response headers, for the access log (not an error reply's).
        self.response_headers: list[tuple[bytes, bytes]] = []

    # --- what the connection's reader tells the stream ---------------------------------------

    def body_arrived(self, data: bytes) -> None:
        self._chunks.append(data)
        _set(self._arrived)

    def body_ended(self) -> None:
        self._ended = True
        _set(self._arrived)

    def window_opened(self) -> None:
        _set(self._window)

    def reset(self) -> None:
        """The stream was reset (by the client, or by the core because of its frames)."""
        self.disconnected = True
        self._wake_all()
        if not self.carries_websocket:
            self.scope.cancel()

    def connection_lost(self) -> None:
        self.disconnected = True
        self._wake_all()

    def _wake_all(self) -> None:
        _set(self._arrived)
        _set(self._window)
        _set(self._gone)

    @property
    def request_ended(self) -> bool:
        return self._ended

    # --- RequestStream -----------------------------------------------------------------------

    @property
    def accepts_trailers(self) -> bool:
        return True  # HTTP/2 frames trailers itself: always deliverable

    @property
    def broken(self) -> bool:
        return self._writer.broken

    @property
    def nothing_sent(self) -> bool:
        return not self._head_sent

    async def read_body(self) -> bytes | None:
        if (
            self.request.expects_continue
            and self.request.http_version == "2"
            and not self._head_sent
            and not self._body_received
        ):
            self._core.send_informational(self.stream_id, 100, [])
            self._writer.wake()
        while not self._chunks:
            if self.disconnected or self.answered:
                return None
            if self._ended:
                self.body_complete = True
                return b""
            self._awaiting_body = True
            try:
                arrived = await self._wait_body()
            finally:
                self._awaiting_body = False
            if not arrived:
                logger.debug("HTTP/2 stream %d: request body timed out", self.stream_id)
                await self.send_error(408)
                return None
        data = self._chunks.popleft()
        self._core.body_consumed(self.stream_id, len(data))
        self._writer.wake()
        self._body_received += len(data)
        limit = self._state.config.max_body_size
        if limit is not None and self._body_received > limit:
            await self.send_error(413)
            return None
        if not self._chunks and self._ended:
            self.body_complete = True
        return data

    async def _wait_body(self) -> bool:
        """Wait for body bytes under ``timeout_body`` and ``timeout_body_idle``; False at them."""
        config = self._state.config
        now = anyio.current_time()
        if self._body_deadline == math.inf and config.timeout_body is not None:
            self._body_deadline = now + config.timeout_body
        idle = config.timeout_body_idle
        self._arrived = anyio.Event()
        with anyio.move_on_after(math.inf) as scope:
            scope.deadline = min(self._body_deadline, now + idle if idle is not None else math.inf)
            await self._arrived.wait()
            return True
        return False

    async def read_data(self) -> bytes:
        """The next DATA bytes of a WebSocket stream (RFC 8441); ``b""`` once it ended.

        The window reopens as each chunk is taken, as for a body; no body deadlines:
        the WebSocket's pings judge a silent peer.
        """
        while not self._chunks:
            if self.disconnected or self._ended:
                return b""
            self._arrived = anyio.Event()
            await self._arrived.wait()
        data = self._chunks.popleft()
        self._core.body_consumed(self.stream_id, len(data))
        self._writer.wake()
        return data

    def abort(self) -> None:
        """Reset the stream (RST_STREAM CANCEL): its peer stopped answering."""
        self.disconnected = True
        self._core.reset_stream(self.stream_id, ErrorCodes.CANCEL)
        self._writer.wake()
        self._wake_all()

    @property
    def body_received(self) -> int:
        return self._body_received

    async def wait_disconnected(self) -> None:
        self.release_held_head()  # the app waits on the client: the client sees the head
        if not (self.disconnected or self.response_complete):
            if self._gone is None:
                self._gone = anyio.Event()
            await self._gone.wait()

    async def send_head(
        self, status: int, headers: list[tuple[bytes, bytes]], *, trailers: bool
    ) -> None:
        """Check the head now, and hold it for the app's first body message.

        As on HTTP/1.1: HEADERS and the first DATA go out in one writer turn, and a
        ``pathsend`` whose file cannot be opened is a whole 500, not HEADERS and a reset.
        The head goes out on its own when the app waits on the client (``receive()``) or
        has held it for about a second (:meth:`release_held_head`, from the in-flight sweep).
        """
        self.response_headers = headers
        fields = list(headers)
        self._state.defaults.complete(fields, {name.lower() for name, _ in fields})
        try:
            self._held = (status, self._core.response_heads.checked(status, fields))
        except H2ResponseError as exc:
            raise ASGIProtocolError(f"invalid response head: {exc}") from None
        self._hold_mark = 0
        self.status = status

    def mark_held_head(self, mark: int) -> bool:
        """For the in-flight sweep: whether a head is held now (not while the app waits
        for body bytes, as on HTTP/1.1); if so it is marked ``mark``."""
        if self._held is None or self._awaiting_body or self.disconnected:
            return False
        self._hold_mark = mark
        return True

    def release_marked_head(self, mark: int) -> None:
        """The head still held since the sweep marked it ``mark`` goes to the writer."""
        if self._held is not None and self._hold_mark == mark and not self._awaiting_body:
            self.release_held_head()

    def release_held_head(self) -> None:
        """A held head to the core, for the writer (never blocks)."""
        held, self._held = self._held, None
        if held is None or self.disconnected or self._writer.broken:
            return
        self._core.send_checked_head(self.stream_id, *held)
        self._head_sent = True
        self._writer.wake()

    async def flush(self) -> None:
        """Return once what the stream queued is handed to the transport.

        Raises:
            ClientDisconnected: the connection is gone.
        """
        self._check_writable()
        self.release_held_head()
        await self._written()

    async def send_body(self, data: bytes, *, final: bool) -> None:
        core = self._core
        if self._held is not None:
            self._check_writable()
            self.release_held_head()
        while True:
            self._check_writable()
            result = core.send_body(self.stream_id, data, end_stream=final)
            self.bytes_sent += result.sent
            if not result.remaining:
                break
            data = data[result.sent :]
            if result.window_blocked:
                await self._wait_window()
            else:
                await self._written()
        if final:
            self._complete()
        await self._written()

    async def send_file(
        self, fd: int, offset: int, count: int, *, final: bool, sized: bool
    ) -> None:
        """The file as DATA a slice at a time, each waiting for window as any body does.

        HTTP/2 frames the body itself, so ``sized`` changes nothing (no Content-Length
        is needed); no more than one slice of the file is read at once.
        """
        if not count:
            await self.send_body(b"", final=final)
            return
        while count:
            chunk = os.pread(fd, min(count, WRITE_SLICE), offset)
            if not chunk:
                raise FileShrunk
            offset += len(chunk)
            count -= len(chunk)
            await self.send_body(chunk, final=final and not count)

    async def send_early_hint(self, links: list[bytes]) -> None:
        """A 103 Early Hints on the stream, before the final head (else nothing)."""
        if self._head_sent or self.disconnected:
            return
        try:
            self._core.send_informational(self.stream_id, 103, [(b"link", link) for link in links])
        except H2ResponseError as exc:
            raise ASGIProtocolError(f"invalid early hint: {exc}") from None
        self._writer.wake()
        await self._written()

    async def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._check_writable()
        self.release_held_head()
        try:
            self._core.send_trailers(self.stream_id, headers)
        except H2ResponseError as exc:
            raise ASGIProtocolError(f"invalid trailers: {exc}") from None
        self._complete()
        await self._written()

    async def send_error(
        self,
        status: int,
        *,
        body: bytes | None = None,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> bool:
        """Answer ``status`` for the app (``body``: plain text, else the reason phrase;
        ``extra``: headers it needs, such as a 426's ``sec-websocket-version``)."""
        if self.answered or self._head_sent or self.broken or self.disconnected:
            return False
        self._held = None  # the app's head, never sent: the error replaces it
        self.answered = self.status = status
        self.response_headers = []
        self._head_sent = True
        if body is None:
            body = reason_phrase(status) + b"\n"
        fields = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            *extra,
        ]
        self._state.defaults.complete(fields, {name for name, _ in fields})
        core = self._core
        core.send_response_head(self.stream_id, status, fields)
        if core.send_body(self.stream_id, body, end_stream=True).remaining:
            # No window for even a short reply: the head says it all; end the stream.
            core.reset_stream(self.stream_id, ErrorCodes.NO_ERROR)
        elif not self._ended:
            # RFC 9113 section 8.1: a complete response, then stop the upload.
            core.reset_stream(self.stream_id, ErrorCodes.NO_ERROR)
        self._complete()
        try:
            await self._written()
        except ClientDisconnected:
            pass
        return True

    # --- helpers -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self.disconnected or self._writer.broken:
            raise ClientDisconnected("the client is gone")

    def _complete(self) -> None:
        self.response_complete = True
        _set(self._gone)

    async def _wait_window(self) -> None:
        """Wait for this stream's (or the connection's) window to open, under the write timeout."""
        timeout = self._state.config.timeout_write
        self._window = anyio.Event()
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            await self._window.wait()
            return
        logger.debug("HTTP/2 stream %d: no window for %s seconds", self.stream_id, timeout)
        self._state.metrics.count_timeout("write")  # the stream is reset, not the connection
        self.disconnected = True
        self._core.reset_stream(self.stream_id, ErrorCodes.CANCEL)
        self._writer.wake()
        raise ClientDisconnected(f"the client granted no window for {timeout} seconds")

    async def _written(self) -> None:
        try:
            await self._writer.wait_written()
        except ClientDisconnected:
            self.disconnected = True
            raise


def _set(event: anyio.Event | None) -> None:
    if event is not None:
        event.set()
