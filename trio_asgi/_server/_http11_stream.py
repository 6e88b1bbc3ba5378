"""One HTTP/1.1 connection as a :class:`~._request_stream.RequestStream`, one request at a time.

The cycle above knows ASGI; this knows HTTP/1.1 on a transport: request body
bytes are read from the socket only inside :meth:`HTTP11Stream.read_body` (an
app that does not read does not make us buffer), ``100 Continue`` goes out when
the body is first asked for, a response head is held back to go out with the
first body message in one write (so a file's size can still become its length)
but not much longer than a second (the server's in-flight sweep, ``_in_flight``,
writes a head held that long: a quiet stream shows its client its head), and
whether the response says ``Connection: close`` comes from the connection's
lifecycle table. One object serves every request of a connection
(:meth:`HTTP11Stream.begin` resets it), so a request allocates nothing here.
Finished responses to pipelined requests may wait in a bounded batch for the
next one's write (:data:`PIPELINE_BATCH_LIMIT`); the connection writes them
before it reads again.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence

import anyio
import anyio.lowlevel

from .._errors import ASGIProtocolError, ClientDisconnected
from .._metrics import CloseRecord
from .._protocol._http11 import (
    NEED_DATA,
    BadRequest,
    BodyData,
    ClientEOF,
    ConnectionInput,
    EndOfBody,
    Event,
    HTTP11Connection,
    RequestHead,
    ResponseError,
)
from .._protocol._http11_writer import early_hints
from ._state import ServerState
from ._transport import YIELD_EVERY, ReadTimeout, Transport

logger = logging.getLogger("trio_asgi")

#: A held response head goes out in one write with a first body chunk up to this size.
COALESCE_LIMIT = 64 * 1024

#: Complete responses to pipelined requests wait, up to this many bytes, to go out with
#: the next response in one write; they are written before the connection reads again.
PIPELINE_BATCH_LIMIT = 64 * 1024

#: After a response, request-body bytes the app left unread are read and dropped, up to
#: this many, so the connection can be kept alive; beyond it the connection closes.
DRAIN_LIMIT = 64 * 1024


class HTTP11Stream:
    """The request in progress on one HTTP/1.1 connection, and its response."""

    __slots__ = (
        "_awaiting_body",
        "_body_deadline",
        "_client",
        "_head_headers",
        "_head_queued",
        "_held_event",
        "_held_head",
        "_hold_mark",
        "_pending",
        "_protocol",
        "_record",
        "_state",
        "_transport",
        "_unyielded",
        "_waiter",
        "_waiter_done",
        "_writing",
        "_written",
        "answered",
        "app_running",
        "body_complete",
        "body_received",
        "bytes_sent",
        "disconnected",
        "request",
        "response_complete",
        "response_headers",
        "status",
    )

    def __init__(
        self,
        protocol: HTTP11Connection,
        transport: Transport,
        state: ServerState,
        client: tuple[str, int] | None,
        *,
        record: CloseRecord | None = None,
    ) -> None:
        self._client = client
        #: Where a body timeout or a refused body records the connection's close reason.
        self._record = record
        self._protocol = protocol
        self._transport = transport
        self._state = state
        self._waiter: anyio.CancelScope | None = None
        self._waiter_done: anyio.Event | None = None
        self._writing = False
        #: Set when the write in progress ends, if another task waits for it.
        self._written: anyio.Event | None = None
        #: Finished pipelined responses not written yet (see PIPELINE_BATCH_LIMIT).
        self._pending = b""
        self._unyielded = 0
        #: The in-flight sweep's mark on the held head (see mark_held_head).
        self._hold_mark = 0
        #: The app waits in receive() for body bytes the client has not sent yet.
        self._awaiting_body = False
        self.request: RequestHead = _NO_REQUEST
        #: The app is being called for the current request (see _in_flight).
        self.app_running = False
        self._reset()

    def _reset(self) -> None:
        self.body_received = 0
        self._body_deadline = math.inf
        self._held_head = b""
        self._head_headers: list[tuple[bytes, bytes]] = _NO_HEADERS
        self._head_queued = False
        self._held_event: Event | None = None
        self.answered = 0
        self.status = 0
        self.response_headers: Sequence[tuple[bytes, bytes]] = ()  # for the access log
        self.bytes_sent = 0
        self.body_complete = False
        self.disconnected = False
        self.response_complete = False

    def begin(self, request: RequestHead) -> None:
        """Serve ``request`` next."""
        self.request = request
        self._reset()

    def end(self) -> None:
        """The request is over: nothing of it stays referenced while the connection idles."""
        self.request = _NO_REQUEST
        self._held_event = None

    @property
    def accepts_trailers(self) -> bool:
        return self.request.accepts_trailers

    @property
    def broken(self) -> bool:
        return self._transport.broken

    @property
    def nothing_sent(self) -> bool:
        return not self._head_queued or bool(self._held_head)

    # --- the request body -------------------------------------------------------------------

    async def read_body(self) -> bytes | None:
        protocol = self._protocol
        config = self._state.config
        if self.request.expects_continue and self.body_received == 0:
            if not self._head_queued:
                interim = protocol.continue_response()  # "100 Continue" once, when first asked
                if interim:
                    await self._write(interim)
            elif not await self._release_head():
                # (The client waits for a response before it sends its body: the final
                # head is that answer, so it cannot wait for the app's first body.)
                return None
        while True:
            event = self._held_event or protocol.next_event()
            self._held_event = None
            if type(event) is BodyData:
                self.body_received += len(event.data)
                if config.max_body_size is not None and self.body_received > config.max_body_size:
                    self._state.metrics.protocol_error(self._record, 413)
                    await self._refuse_body(413, "request body too large")
                    return None
                # Look one event ahead so the last chunk carries more_body=False.
                follow = protocol.next_event()
                if type(follow) is EndOfBody:
                    self.body_complete = True
                elif follow is not NEED_DATA:
                    self._held_event = follow
                return event.data
            if type(event) is EndOfBody or protocol.request_complete:
                self.body_complete = True
                return b""
            if type(event) is BadRequest:
                logger.debug("bad request body: %s", event.detail)
                self._state.rejections.rejected(self._client, event.status, "request body")
                self._state.metrics.protocol_error(self._record, event.status)
                await self._refuse_body(event.status, event.detail)
                return None
            if type(event) is ClientEOF or not await self._flushed():
                self.disconnected = True
                return None
            if not await self._read_body_bytes(config.timeout_body, config.timeout_body_idle):
                self._state.metrics.timed_out(self._record, "body")
                await self._refuse_body(408, "request body timed out")
                return None

    async def _read_body_bytes(self, total: float | None, idle: float | None) -> bool:
        """Read more of the body under its deadlines; False if they passed."""
        now = anyio.current_time()
        if self._body_deadline == math.inf and total is not None:
            self._body_deadline = now + total
        deadline = min(self._body_deadline, now + idle if idle is not None else math.inf)
        self._awaiting_body = True  # the client is still sending: the head stays held
        try:
            self._protocol.receive_data(await self._transport.read(deadline))
        except ReadTimeout:
            return False
        finally:
            self._awaiting_body = False
        return True

    async def _refuse_body(self, status: int, why: str) -> None:
        """The request cannot be read to its end: answer ``status`` if we still can."""
        logger.debug("aborting request: %s", why)
        self.disconnected = True
        await self.send_error(status)
        self._transport.mark_broken()
        return

    async def wait_disconnected(self) -> None:
        """Block until the client goes away or the response is complete.

        Reading here may take bytes of a pipelined request: they are buffered, up to a
        bound; past it we stop reading and only wait for the response to complete.
        """
        protocol = self._protocol
        # The app waits on the client now, so no body is coming soon: the head goes
        # (a stream that awaits its first event, a long poll, tells its client so).
        if not await self._release_head():
            return
        while self._waiter is not None:
            # Another task is already reading for us (a stream has one reader at a time):
            # wait for its outcome. Starlette polls receive() while another task listens.
            if self._waiter_done is None:
                self._waiter_done = anyio.Event()
            await self._waiter_done.wait()
            if self.disconnected or self.response_complete:
                return
        try:
            with anyio.CancelScope() as self._waiter:
                while not self.response_complete:
                    event = protocol.next_event()
                    if type(event) is ClientEOF:
                        self.disconnected = True
                        return
                    if not protocol.wants_data:
                        await anyio.sleep_forever()
                    # Polled from a cancelled scope (Starlette's is_disconnected()): the read
                    # below cannot run, so ask the socket whether the client has gone.
                    cancelled = anyio.current_effective_deadline() == -math.inf
                    if cancelled and self._transport.peer_closed():
                        self.disconnected = True
                        return
                    if not await self._flushed():
                        self.disconnected = True
                        return
                    protocol.receive_data(await self._transport.read())
        finally:
            self._waiter = None
            if self._waiter_done is not None:
                self._waiter_done.set()
                self._waiter_done = None

    # --- the response -----------------------------------------------------------------------

    async def send_head(
        self, status: int, headers: list[tuple[bytes, bytes]], *, trailers: bool
    ) -> None:
        protocol = self._protocol
        # Decide now whether the connection survives this response, so the head says so.
        close = not protocol.request_complete and not self._body_fits_drain()
        try:
            head = protocol.response_head(status, headers, close=close)
        except ResponseError as exc:
            raise ASGIProtocolError(f"invalid response head: {exc}") from None
        self._head_queued = True
        self.status = status
        self.response_headers = headers
        # Hold the head until the first body-class message, as the ASGI spec allows: the
        # common response goes out in one write, a file is sized (pathsend) before its
        # head is final, and an app that fails before its body still gets a whole 500.
        self._held_head = head
        self._head_headers = headers
        self._hold_mark = 0  # not seen by the in-flight sweep yet (see _in_flight)

    def _body_fits_drain(self) -> bool:
        """Whether the unread rest of the body can be drained after the response.

        If not, the connection will close after it, and the head says so. A client
        still waiting for ``100 Continue`` will not send its body at all.
        """
        request = self.request
        if request.expects_continue and self.body_received == 0:
            return False
        if request.content_length is None:
            return False  # chunked: no telling how much is left
        return request.content_length - self.body_received <= DRAIN_LIMIT

    async def send_body(self, data: bytes, *, final: bool) -> None:
        try:
            data = self._protocol.response_body(data, final=final)
        except ResponseError as exc:
            raise ASGIProtocolError(f"invalid response body: {exc}") from None
        if self._held_head:
            if len(data) <= COALESCE_LIMIT:
                data, self._held_head = self._held_head + data, b""
            else:
                # Copying a large body behind the head costs more than a second write,
                # and a fresh buffer of its size each time (page faults, not just memcpy:
                # 0.4 ms of a 1 MiB echo on asyncio, measured).
                await self._flush_head()
        if final and self._batched(data):
            await self._yield_if_due()
            return
        if data:
            await self._write(data)
        if final:
            self._complete()

    def _batched(self, data: bytes) -> bool:
        """Keep a finished response for the next one's write, if a pipelined request
        waits and the batch stays within PIPELINE_BATCH_LIMIT; True if it was kept."""
        if (
            len(self._pending) + len(data) > PIPELINE_BATCH_LIMIT
            or not self._protocol.next_request_waiting
        ):
            return False
        self._pending += data
        self.bytes_sent += len(data)
        self._complete()
        return True

    async def _yield_if_due(self) -> None:
        """A batched response skipped the write that would count toward the transport's
        YIELD_EVERY: count it here, so a pipelining client cannot starve the others."""
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await anyio.lowlevel.checkpoint()

    @property
    def pending(self) -> bool:
        """Finished responses wait to be written: :meth:`flush` before reading again."""
        return bool(self._pending)

    async def flush(self) -> None:
        """Write the finished responses that wait; a client gone leaves the stream broken."""
        with contextlib.suppress(ClientDisconnected):
            await self._write(b"")  # takes the pending bytes along

    async def _flushed(self) -> bool:
        """Before a read: the finished responses that wait are written; False if the
        client is gone. (Not while another task writes: its write takes them along.)"""
        if self._pending and not self._writing:
            await self.flush()
        return not self._transport.broken

    def take_pending(self) -> bytes:
        """The finished responses that wait, for a caller that writes them first."""
        data, self._pending = self._pending, b""
        return data

    async def send_file(
        self, fd: int, offset: int, count: int, *, final: bool, sized: bool
    ) -> None:
        """Body bytes from a file; with ``sized`` (pathsend) the file is the whole body,
        and a held head without a length gets ``Content-Length: count``."""
        protocol = self._protocol
        try:
            if (
                sized
                and self._held_head
                and not protocol.response_has_length
                and self.status not in _NO_LENGTH_STATUSES
            ):
                self._held_head = protocol.response_head_with_length(
                    self.status, self._head_headers, count
                )
            before, after, send = protocol.response_file(count, final=final)
        except ResponseError as exc:
            raise ASGIProtocolError(f"invalid response body: {exc}") from None
        if self._held_head:
            before, self._held_head = self._held_head + before, b""
        if before:
            await self._write(before)
        if send:
            if self._pending:
                await self._write(b"")  # the responses that wait go first
            try:
                await self._transport.send_file(fd, offset, count, self._state.config.timeout_write)
            except ClientDisconnected:
                self.disconnected = True
                raise
            self.bytes_sent += count
        if after:
            await self._write(after)
        if final:
            self._complete()

    async def send_early_hint(self, links: list[bytes]) -> None:
        """A ``103 Early Hints``; dropped for HTTP/1.0 and once the head went out."""
        if self.request.http_version != "1.1" or (self._head_queued and not self._held_head):
            return
        try:
            data = early_hints(links)
        except ResponseError as exc:
            raise ASGIProtocolError(f"invalid early hint: {exc}") from None
        await self._write(data)

    async def send_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        protocol = self._protocol
        chunked = protocol.response_chunked and self.request.accepts_trailers
        try:
            data = protocol.response_body(b"", final=True, trailers=headers if chunked else None)
        except ResponseError as exc:
            raise ASGIProtocolError(f"invalid trailers: {exc}") from None
        if self._held_head:
            data, self._held_head = self._held_head + data, b""
        await self._write(data)
        self._complete()

    async def send_error(self, status: int) -> bool:
        if self.answered or not self.nothing_sent or self._transport.broken:
            return False
        self.answered = self.status = status
        self.response_headers = ()  # the error reply's own, not the app's
        self._held_head = b""
        self._protocol.lifecycle.advance(ConnectionInput.ERROR_ANSWERED)
        await self._transport.write_quietly(
            self.take_pending() + self._protocol.error_response(status),
            self._state.config.timeout_write,
        )
        self.response_complete = True
        return True

    def peer_gone(self) -> None:
        """The client left (found by peeking at the socket): no more reads or writes."""
        self.disconnected = True
        if self._waiter is not None:
            self._waiter.cancel()

    def _complete(self) -> None:
        self.response_complete = True
        if self._waiter is not None:
            self._waiter.cancel()

    async def _release_head(self) -> bool:
        """From ``receive()``: a held head goes out on its own (not while another task
        writes: it takes the head along); False if the client is gone."""
        if self._held_head and not self._writing:
            with contextlib.suppress(ClientDisconnected):
                await self._flush_head()
        return not self.disconnected

    def mark_held_head(self, mark: int) -> bool:
        """For the in-flight sweep: whether a head is held back now; if so it is marked
        ``mark``, which the next response's :meth:`send_head` clears.

        Not while the app waits for body bytes: the client is still sending them (it
        is not waiting for a head yet), and a body that stalls then still gets a whole
        ``408``.
        """
        if (
            not self._held_head
            or self._awaiting_body
            or self.disconnected
            or self._transport.broken
        ):
            return False
        self._hold_mark = mark
        return True

    async def release_held_head(self, mark: int, timeout: float) -> None:  # noqa: ASYNC109
        """From the in-flight sweep: the head still held since it was marked ``mark`` goes
        out on its own, in a write bounded by ``timeout`` (a client that does not read
        for that long is cut off, per the transport's write contract).

        Not while another task writes (it takes the head along, or the next sweep
        does): the sweep waits on no connection's writer. Framing stays as the head
        said: a response without a length is chunked, a pathsend after it too.
        """
        if not self._held_head or self._hold_mark != mark or self._writing or self._awaiting_body:
            return
        head, self._held_head = self._held_head, b""
        data, self._pending = self._pending + head, b""
        self._writing = True
        try:
            await self._transport.write(data, timeout)
            self.bytes_sent += len(head)
        except ClientDisconnected:
            self.disconnected = True  # the app's next send() raises it
        finally:
            self._writing = False
            if self._written is not None:
                self._written.set()
                self._written = None

    async def _flush_head(self) -> None:
        head, self._held_head = self._held_head, b""
        await self._write(head)

    async def _write(self, data: bytes) -> None:
        while self._writing:
            # receive() in another task is writing the held head or finished responses
            # (an app's send and receive may run in two tasks): one writer at a time.
            await self._wait_for_writer()
        self._writing = True
        size = len(data)
        try:
            if self._pending:
                await self._write_after_pending(data)
            else:
                await self._transport.write(data, self._state.config.timeout_write)
        except ClientDisconnected:
            self.disconnected = True
            raise
        finally:
            self._writing = False
            if self._written is not None:
                self._written.set()
                self._written = None
        self.bytes_sent += size

    async def _wait_for_writer(self) -> None:
        if self._written is None:
            self._written = anyio.Event()
        await self._written.wait()

    async def _write_after_pending(self, data: bytes) -> None:
        """The responses that wait, then ``data``: in one write unless ``data`` is large."""
        pending, self._pending = self._pending, b""
        timeout = self._state.config.timeout_write
        if len(data) <= COALESCE_LIMIT:
            await self._transport.write(pending + data, timeout)
        else:
            await self._transport.write(pending, timeout)
            await self._transport.write(data, timeout)


#: Statuses whose head must not carry a Content-Length (RFC 9110 section 8.6).
_NO_LENGTH_STATUSES = frozenset({204, 304})

_NO_HEADERS: list[tuple[bytes, bytes]] = []

#: The request of a stream between requests: nothing, without an Optional on the hot path.
_NO_REQUEST = RequestHead(
    method="",
    http_version="1.1",
    raw_target=b"",
    raw_path=b"",
    query_string=b"",
    headers=[],
    content_length=None,
    chunked=False,
    expects_continue=False,
    accepts_trailers=False,
)
