"""One HTTP request and its response: the ``receive`` and ``send`` an app gets.

The cycle is protocol-neutral: it builds the scope, runs the app, checks every
message against the ASGI order table and hands what it means to its
:class:`~._request_stream.RequestStream` (HTTP/1.1 today, an HTTP/2 stream
tomorrow). It never looks at keep-alive or framing: :meth:`HTTPCycle.run`
returns a :class:`~._request_stream.CycleResult` and the connection decides.

The app runs in the connection's own task (no task per request). ``send()``
returns once the bytes are handed to the transport. The exception boundary
around the app call is :meth:`HTTPCycle.run`.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Final

import anyio

from .._errors import (
    ASGIProtocolError,
    ClientDisconnected,
    only_disconnects,
    raised_for_disconnect,
)
from .._protocol._asgi_http import (
    EarlyHint,
    ResponseBody,
    ResponseFile,
    ResponseOrder,
    ResponseStart,
    ResponseTrailers,
)
from .._protocol._scope import http_scope
from .._types import Message
from ._app_errors import log_app_exception
from ._request_stream import (
    APP_RAISED,
    APP_RAISED_MIDWAY,
    APP_RETURNED_EARLY,
    CLIENT_GONE,
    COMPLETED,
    INCOMPLETE,
    REQUEST_REFUSED,
    CycleContext,
    CycleResult,
    RequestStream,
)

logger = logging.getLogger("trio_asgi")

#: How long a reply written after the cycle was cancelled (a 503 at the end of a graceful
#: shutdown) may take: it is small, so it goes out at once or the client is not reading.
LAST_WORD_TIMEOUT: Final = 0.5

_DISCONNECT: Final = {"type": "http.disconnect"}


class HTTPCycle:
    __slots__ = ("_context", "_order", "_request_delivered", "_sending", "_stream")

    def __init__(self, context: CycleContext, stream: RequestStream) -> None:
        self._context = context
        self._stream = stream
        self._order = ResponseOrder(context.extensions.messages)
        self._request_delivered = False
        self._sending = False

    # --- the app call -----------------------------------------------------------------------

    async def run(self) -> CycleResult:
        """Run the app on this request; how the request ended (the connection decides the rest)."""
        context = self._context
        state = context.state
        stream = self._stream
        request = stream.request
        scope = http_scope(
            request,
            scheme=context.scheme,
            root_path=state.config.root_path,
            client=context.client,
            server=context.server,
            state=state.lifespan_state,
            extensions=(
                context.extensions.with_trailers
                if stream.accepts_trailers
                else context.extensions.plain
            ),
        )
        started = time.monotonic()
        state.requests_in_flight += 1
        stream.app_running = True
        try:
            await state.app(scope, self.receive, self.send)
        except ClientDisconnected:
            result = CLIENT_GONE  # the app let our own exception escape: nothing to report
        except Exception as exc:
            # The one place app errors are caught. Never sent to the client.
            result = await self._app_raised(exc)
        except BaseException:
            # Cancelled: at the end of a graceful shutdown's grace period, a client still
            # waiting for its response start learns why (and that it may retry).
            if stream.nothing_sent and state.grace_period_over():
                await self._last_word(503)
                self._log_response(503, started)
            raise
        else:
            result = await self._app_returned()
        finally:
            stream.app_running = False
            state.requests_in_flight -= 1
            state.requests_served += 1
        state.metrics.request_done(
            request.method,
            stream.status,
            time.monotonic() - started,
            stream.body_received,
            stream.bytes_sent,
        )
        if stream.status:
            self._log_response(stream.status, started)
        return result

    async def _app_raised(self, exc: Exception) -> CycleResult:
        stream = self._stream
        if only_disconnects(exc) or (stream.disconnected and raised_for_disconnect(exc)):
            return CLIENT_GONE
        request = self._stream.request
        log_app_exception(
            exc, "Exception in ASGI application (%s %s)", request.method, request.printable_target()
        )
        return APP_RAISED if await stream.send_error(500) else APP_RAISED_MIDWAY

    async def _app_returned(self) -> CycleResult:
        stream = self._stream
        if stream.response_complete:
            return REQUEST_REFUSED if stream.answered else COMPLETED
        if stream.disconnected:
            return CLIENT_GONE
        request = stream.request
        logger.error(
            "ASGI application returned without completing the response (%s %s)",
            request.method,
            request.printable_target(),
        )
        return APP_RETURNED_EARLY if await stream.send_error(500) else INCOMPLETE

    async def _last_word(self, status: int) -> None:
        """An error reply from a cancelled task: shielded, but only for LAST_WORD_TIMEOUT."""
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + LAST_WORD_TIMEOUT
            await self._stream.send_error(status)

    def _log_response(self, status: int, started: float) -> None:
        access_log = self._context.state.access_log
        if access_log.enabled:
            request = self._stream.request
            access_log.log_http(
                client=self._context.client,
                method=request.method,
                raw_target=request.raw_target,
                http_version=request.http_version,
                status=status,
                response_bytes=self._stream.bytes_sent,
                duration=time.monotonic() - started,
                headers=request.headers,
                response_headers=self._stream.response_headers,
            )

    # --- receive ----------------------------------------------------------------------------

    async def receive(self) -> Message:
        stream = self._stream
        # A disconnect we already know of is returned without a checkpoint, so a
        # receive() inside an already-cancelled scope still sees it.
        if stream.disconnected or stream.response_complete:
            return _DISCONNECT
        if not self._request_delivered:
            body = await stream.read_body()
            if body is None:
                return _DISCONNECT
            more = not stream.body_complete
            self._request_delivered = not more
            return {"type": "http.request", "body": body, "more_body": more}
        await stream.wait_disconnected()
        return _DISCONNECT

    # --- send -------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self._sending:
            raise ASGIProtocolError("send() called while another send() is in progress")
        stream = self._stream
        if stream.disconnected or stream.broken:
            raise ClientDisconnected("the client is gone")
        order = self._order
        parsed = order.check(message)
        self._sending = True
        try:
            if isinstance(parsed, ResponseStart):
                await stream.send_head(parsed.status, parsed.headers, trailers=parsed.trailers)
            elif isinstance(parsed, ResponseBody):
                await stream.send_body(parsed.body, final=not parsed.more and not order.trailers)
            elif type(parsed) is ResponseTrailers:
                if not parsed.more:
                    await stream.send_trailers(parsed.headers)
            elif type(parsed) is ResponseFile:
                await self._send_file(parsed, final=not parsed.more and not order.trailers)
            elif type(parsed) is EarlyHint:
                await stream.send_early_hint(parsed.links)
        except ASGIProtocolError:
            raise  # refused before anything was written: the message counts as never sent
        except BaseException:
            order.commit()  # maybe written in part: no second try
            raise
        finally:
            self._sending = False
        order.commit()

    async def _send_file(self, parsed: ResponseFile, *, final: bool) -> None:
        """``http.response.pathsend`` or ``zerocopysend``: opened (or sized) before a byte goes.

        Raises:
            ASGIProtocolError: the path cannot be opened or is not a regular file, or
                the offset lies beyond the file's end; nothing was sent.
        """
        if parsed.path is None:
            fd = parsed.fd
            try:
                offset = os.lseek(fd, 0, os.SEEK_CUR) if parsed.offset is None else parsed.offset
                count = os.fstat(fd).st_size - offset if parsed.count is None else parsed.count
            except OSError as exc:
                raise ASGIProtocolError(f"http.response.zerocopysend: {exc.strerror}") from None
            if count < 0:
                raise ASGIProtocolError("http.response.zerocopysend: offset beyond the file's end")
            await self._stream.send_file(fd, offset, count, final=final, sized=False)
            return
        try:
            fd = os.open(parsed.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise ASGIProtocolError(
                f"http.response.pathsend: cannot open {parsed.path!r}: {exc.strerror}"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ASGIProtocolError(
                    f"http.response.pathsend: {parsed.path!r} is not a regular file"
                )
            await self._stream.send_file(fd, 0, info.st_size, final=final, sized=True)
        finally:
            os.close(fd)
