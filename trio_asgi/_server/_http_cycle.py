"""One HTTP request and its response: the ``receive`` and ``send`` an app gets.

The app runs in the connection's own task (no task per request). Request body
bytes are read from the socket only inside ``receive()``, so an app that does not
read does not make us buffer. ``send()`` returns once the bytes are handed to the
socket. The exception boundary around the app call is :meth:`HTTPCycle.run`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._errors import (
    ASGIProtocolError,
    ClientDisconnected,
    only_disconnects,
    raised_for_disconnect,
)
from .._protocol._asgi_http import ResponseBody, ResponseOrder, ResponseStart, ResponseState
from .._protocol._http11 import (
    NEED_DATA,
    BadRequest,
    BodyData,
    ClientEOF,
    EndOfBody,
    Event,
    HTTP11Connection,
    RequestHead,
    ResponseError,
)
from .._protocol._scope import http_scope
from .._types import Message
from ._app_errors import log_app_exception
from ._transport import ReadTimeout, Transport

#: A held response head goes out in one write with a first body chunk up to this size.
COALESCE_LIMIT = 64 * 1024

#: After a response, request-body bytes the app left unread are read and dropped, up to
#: this many, so the connection can be kept alive; beyond it the connection closes.
DRAIN_LIMIT = 64 * 1024

if TYPE_CHECKING:
    from ._connection import HTTPConnection

logger = logging.getLogger("trio_asgi")

_DISCONNECT: Final = {"type": "http.disconnect"}
_TRAILERS_EXTENSION: Final[dict[str, dict[str, Any]]] = {"http.response.trailers": {}}
_NO_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {}


class HTTPCycle:
    __slots__ = (
        "_body_deadline",
        "_body_received",
        "_conn",
        "_held_event",
        "_held_head",
        "_order",
        "_protocol",
        "_request_delivered",
        "_sending",
        "_transport",
        "_waiter",
        "_waiter_done",
        "bytes_sent",
        "close_after",
        "disconnected",
        "request",
        "response_complete",
        "response_headers",
        "status",
    )

    def __init__(self, conn: HTTPConnection, request: RequestHead) -> None:
        self._conn = conn
        self._protocol: HTTP11Connection = conn.protocol
        self._transport: Transport = conn.transport
        self.request = request
        self._order = ResponseOrder()
        self._request_delivered = False
        self._body_received = 0
        self._body_deadline = math.inf
        self._held_head = b""
        self._held_event: Event | None = None
        self._sending = False
        self._waiter: anyio.CancelScope | None = None
        self._waiter_done: anyio.Event | None = None
        self.disconnected = False
        self.response_complete = False
        #: Close the connection after this response (decided when the head is sent).
        self.close_after = False
        self.status = 0
        self.bytes_sent = 0
        self.response_headers: list[tuple[bytes, bytes]] = []  # for the access log

    # --- the app call -----------------------------------------------------------------------

    async def run(self) -> None:
        conn = self._conn
        state = conn.state
        scope = http_scope(
            self.request,
            scheme=conn.scheme,
            root_path=state.config.root_path,
            client=conn.client,
            server=conn.server,
            state=state.lifespan_state,
            extensions=_TRAILERS_EXTENSION if self.request.accepts_trailers else _NO_EXTENSIONS,
        )
        started = time.monotonic()
        state.requests_in_flight += 1
        try:
            await state.app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass  # the client left; the app let our own exception escape: nothing to report
        except Exception as exc:
            # The one place app errors are caught. Never sent to the client.
            left = only_disconnects(exc) or (self.disconnected and raised_for_disconnect(exc))
            if not left:
                log_app_exception(
                    exc,
                    "Exception in ASGI application (%s %s)",
                    self.request.method,
                    self.request.printable_target(),
                )
                await self._fail(500, "the app raised")
        else:
            if not self.response_complete and not self.disconnected:
                logger.error(
                    "ASGI application returned without completing the response (%s %s)",
                    self.request.method,
                    self.request.printable_target(),
                )
                await self._fail(500, "the app returned early")
        finally:
            state.requests_in_flight -= 1
            state.requests_served += 1
        state.metrics.request_done(
            self.request.method,
            self.status,
            time.monotonic() - started,
            self._body_received,
            self.bytes_sent,
        )
        if self.status:
            conn.log_response(
                self.request, self.status, self.bytes_sent, started, self.response_headers
            )

    def _nothing_sent(self) -> bool:
        """No byte of the response has been written (a held head counts as unsent)."""
        return self._order.state is ResponseState.START or bool(self._held_head)

    async def _fail(self, status: int, why: str) -> None:
        """After an app error: a 500 if nothing was sent yet, else just close."""
        self.close_after = True
        if self._nothing_sent() and not self._transport.broken:
            self.status = status
            await self._transport.write_quietly(
                self._protocol.error_response(status), self._conn.state.config.timeout_write
            )
            self.response_complete = True
        logger.debug("closing connection: %s", why)

    # --- receive ----------------------------------------------------------------------------

    async def receive(self) -> Message:
        # A disconnect we already know of is returned without a checkpoint, so a
        # receive() inside an already-cancelled scope still sees it.
        if self.disconnected or self.response_complete:
            return _DISCONNECT
        if not self._request_delivered:
            return await self._receive_body()
        await self._wait_for_disconnect()
        return _DISCONNECT

    async def _receive_body(self) -> Message:
        protocol = self._protocol
        config = self._conn.state.config
        if self.request.expects_continue and self._order.state is ResponseState.START:
            interim = protocol.continue_response()  # "100 Continue" once, when first asked
            if interim:
                await self._write(interim)
        while True:
            event = self._held_event or protocol.next_event()
            self._held_event = None
            if type(event) is BodyData:
                self._body_received += len(event.data)
                if config.max_body_size is not None and self._body_received > config.max_body_size:
                    self._conn.state.metrics.protocol_error(self._conn, 413)
                    return await self._abort_request(413, "request body too large")
                # Look one event ahead so the last chunk carries more_body=False.
                follow = protocol.next_event()
                if type(follow) is EndOfBody:
                    self._request_delivered = True
                    return {"type": "http.request", "body": event.data, "more_body": False}
                if follow is not NEED_DATA:
                    self._held_event = follow
                return {"type": "http.request", "body": event.data, "more_body": True}
            if type(event) is EndOfBody or protocol.request_complete:
                self._request_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if type(event) is BadRequest:
                logger.debug("bad request body: %s", event.detail)
                self._conn.state.metrics.protocol_error(self._conn, event.status)
                return await self._abort_request(event.status, event.detail)
            if type(event) is ClientEOF:
                self.disconnected = True
                return _DISCONNECT
            if not await self._read_body_bytes(config.timeout_body, config.timeout_body_idle):
                self._conn.state.metrics.timed_out(self._conn, "body")
                return await self._abort_request(408, "request body timed out")

    async def _read_body_bytes(self, total: float | None, idle: float | None) -> bool:
        """Read more of the body under its deadlines; False if they passed."""
        now = anyio.current_time()
        if self._body_deadline == math.inf and total is not None:
            self._body_deadline = now + total
        deadline = min(self._body_deadline, now + idle if idle is not None else math.inf)
        try:
            self._protocol.receive_data(await self._transport.read(deadline))
        except ReadTimeout:
            return False
        return True

    async def _abort_request(self, status: int, why: str) -> Message:
        """The request cannot be read to its end: answer ``status`` if we still can, and close."""
        logger.debug("aborting request: %s", why)
        self.disconnected = True
        self.close_after = True
        if self._nothing_sent() and not self._transport.broken:
            self.status = status
            self._order.state = ResponseState.DONE
            await self._transport.write_quietly(
                self._protocol.error_response(status), self._conn.state.config.timeout_write
            )
        self._transport.broken = True
        return _DISCONNECT

    async def _wait_for_disconnect(self) -> None:
        """Block until the client goes away or the response is complete.

        Reading here may take bytes of a pipelined request: they are buffered, up to a
        bound; past it we stop reading and only wait for the response to complete.
        """
        protocol = self._protocol
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
                    protocol.receive_data(await self._transport.read())
        finally:
            self._waiter = None
            if self._waiter_done is not None:
                self._waiter_done.set()
                self._waiter_done = None

    # --- send -------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self._sending:
            raise ASGIProtocolError("send() called while another send() is in progress")
        if self.disconnected or self._transport.broken:
            raise ClientDisconnected("the client is gone")
        order = self._order
        previous = order.state
        parsed = order.advance(message)
        self._sending = True
        try:
            if isinstance(parsed, ResponseStart):
                await self._start_response(parsed, previous)
            elif isinstance(parsed, ResponseBody):
                await self._send_body(parsed)
            else:
                await self._send_trailers(parsed.headers, final=not parsed.more)
        finally:
            self._sending = False

    async def _start_response(self, start: ResponseStart, previous: ResponseState) -> None:
        protocol = self._protocol
        conn = self._conn
        request = self.request
        # Decide now whether the connection survives this response, so the head says so.
        self.close_after = conn.closing or (
            not protocol.request_complete and not self._body_fits_drain(request)
        )
        try:
            head = protocol.response_head(start.status, start.headers, close=self.close_after)
        except ResponseError as exc:
            self._order.state = previous  # nothing was sent: a 500 is still possible
            raise ASGIProtocolError(f"invalid response head: {exc}") from None
        self.status = start.status
        self.response_headers = start.headers
        # Hold the head of a response with a known length to send it with the first body
        # chunk: one write (one syscall) instead of two. Streams go out at once.
        if protocol.response_chunked or start.trailers:
            await self._write(head)
        else:
            self._held_head = head

    def _body_fits_drain(self, request: RequestHead) -> bool:
        """Whether the unread rest of the body can be drained after the response.

        If not, the connection will close after it, and the head says so. A client
        still waiting for ``100 Continue`` will not send its body at all.
        """
        if request.expects_continue and self._body_received == 0:
            return False
        if request.content_length is None:
            return False  # chunked: no telling how much is left
        return request.content_length - self._body_received <= DRAIN_LIMIT

    async def _send_body(self, body: ResponseBody) -> None:
        final = not body.more and not self._order.trailers
        try:
            data = self._protocol.response_body(body.body, final=final)
        except ResponseError as exc:
            self.close_after = True
            raise ASGIProtocolError(f"invalid response body: {exc}") from None
        if self._held_head:
            head, self._held_head = self._held_head, b""
            if len(data) <= COALESCE_LIMIT:
                data = head + data
            else:
                # Copying a large body behind the head costs more than a second write,
                # and a fresh buffer of its size each time (page faults, not just memcpy:
                # 0.4 ms of a 1 MiB echo on asyncio, measured).
                await self._write(head)
        if data:
            await self._write(data)
        if final:
            self._complete()

    async def _send_trailers(self, headers: list[tuple[bytes, bytes]], *, final: bool) -> None:
        if not final:
            return  # more_trailers: trailers are sent together with the last message
        chunked = self._protocol.response_chunked and self.request.accepts_trailers
        try:
            data = self._protocol.response_body(
                b"", final=True, trailers=headers if chunked else None
            )
        except ResponseError as exc:
            self.close_after = True
            raise ASGIProtocolError(f"invalid trailers: {exc}") from None
        await self._write(data)
        self._complete()

    def _complete(self) -> None:
        self.response_complete = True
        if self._waiter is not None:
            self._waiter.cancel()

    async def _write(self, data: bytes) -> None:
        try:
            await self._transport.write(data, self._conn.state.config.timeout_write)
        except ClientDisconnected:
            self.disconnected = True
            self.close_after = True
            raise
        self.bytes_sent += len(data)
