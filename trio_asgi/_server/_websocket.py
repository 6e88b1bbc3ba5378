"""One WebSocket connection: the app, a reader and a pinger in the connection's own task group.

The task tree under the connection's task::

    session task group
      app task        the app's websocket call (receive/send)
      reader task     socket -> WebSocketConnection -> bounded message queue
      pinger task     a ping every ws_ping_interval; no pong in time closes with 1011

Backpressure: the queue holds ``ws_max_queue`` messages; when the app stops
reading, the reader blocks on the queue and stops reading the socket, so a
client's pings get no pongs either and nothing grows. Writes from the app, the
reader (pongs, answering closes) and the pinger are serialised by one lock: they
never race on the stream. ``send()`` returns once the frame is handed to the socket.

Shutdown: :meth:`WebSocketSession.begin_shutdown` sends close 1012 and hands the
app ``websocket.disconnect`` with that code; the grace period bounds the rest.

The same session serves a WebSocket on an HTTP/2 stream (RFC 8441): it is given the
stream as its :class:`~._websocket_seam.WebSocketTransport` and
:class:`~._websocket_seam.HandshakeAnswers` that answer with HEADERS (see
:mod:`._http2_websocket`), so limits, pings, timeouts and close codes are this code on
both protocols.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, ClassVar, Final

import anyio
import anyio.abc

from .._errors import (
    ASGIProtocolError,
    ClientDisconnected,
    only_disconnects,
    raised_for_disconnect,
)
from .._metrics import CloseRecord
from .._protocol._asgi_ws_order import (
    Accept,
    AppMessage,
    Close,
    ResponseBody,
    ResponseStart,
    Send,
    WebSocketOrder,
)
from .._protocol._http11 import RequestHead
from .._protocol._scope import websocket_scope
from .._protocol._websocket import WebSocketConnection
from .._protocol._ws_events import (
    NEED_DATA,
    CloseReceived,
    ConnectionLost,
    Message,
    PongReceived,
    ProtocolViolation,
    WebSocketState,
)
from .._protocol._ws_handshake import Handshake
from .._types import Message as ASGIMessage
from ._app_errors import log_app_exception
from ._handoff import FairLock, MessageQueue, QueueClosed
from ._request_stream import (
    CLIENT_GONE,
    COMPLETED,
    CycleContext,
    CycleEnd,
    CycleResult,
)
from ._websocket_seam import HandshakeAnswers, HTTP11Answers, WebSocketTransport

logger = logging.getLogger("trio_asgi")

#: The app neither accepted nor closed in time: answered with a 500.
HANDSHAKE_TIMED_OUT: Final = CycleResult(CycleEnd.ANSWERED, "the WebSocket handshake timed out")

#: The close code sent to every open WebSocket when the server shuts down (service restart).
SHUTDOWN_CLOSE_CODE: Final = 1012
_ping_counter = itertools.count()


class WebSocketSession:
    #: Why the connection it ran on closed, for the metrics (unless a timeout, an error or
    #: the shutdown says otherwise): see :func:`trio_asgi._metrics.close_reason`.
    ends_connection_as: ClassVar[str] = "websocket"

    __slots__ = (
        "_answers",
        "_app_done",
        "_connect_sent",
        "_context",
        "_disconnect",
        "_handshake_done",
        "_max_bytes",
        "_messages",
        "_order",
        "_peer_activity",
        "_ping_payload",
        "_pong",
        "_reader_room",
        "_record",
        "_request",
        "_sending_bytes",
        "_started",
        "_subprotocols",
        "_task_group",
        "_transport",
        "_unsent",
        "_write_lock",
        "_ws",
    )

    def __init__(
        self,
        context: CycleContext,
        transport: WebSocketTransport,
        request: RequestHead,
        handshake: Handshake,
        trailing_data: bytes,
        *,
        record: CloseRecord | None = None,
        answers: HandshakeAnswers | None = None,
    ) -> None:
        """Serve the WebSocket that ``request`` opens.

        Args:
            context: What the connection knows (server state, addresses).
            transport: The connection's transport, handed over whole.
            request: The upgrade request.
            handshake: Its validated handshake.
            trailing_data: Bytes the client sent after the request head.
            record: Where a timeout records the connection's close reason (metrics).
            answers: How the handshake is answered (default: HTTP/1.1 responses).
        """
        state = context.state
        config = state.config
        self._subprotocols = handshake.subprotocols
        self._context = context
        self._request = request
        self._transport = transport
        self._record = record
        self._ws = _open_connection(context, handshake, trailing_data)
        self._order = WebSocketOrder()
        #: Messages from the reader to the app's receive().
        #: What the session may hold for the app: queued messages, the message being
        #: read and the app's message being sent (see _wait_for_room).
        self._max_bytes = config.ws_max_queue_bytes or config.ws_max_size
        self._messages: MessageQueue[Message] = MessageQueue(
            config.ws_max_queue, self._max_bytes, _size
        )
        #: Bytes of the app's send() in progress.
        self._sending_bytes = 0
        #: Set when what the session holds shrinks, if the reader waits for room.
        self._reader_room: anyio.Event | None = None
        self._write_lock = FairLock()
        self._answers: HandshakeAnswers = answers or HTTP11Answers(self._write)
        #: Bytes the WebSocketConnection produced that are not written yet (see _write).
        self._unsent: list[bytes] = []
        self._handshake_done = anyio.Event()
        #: Set by the reader after each event it handled, if somebody waits for one.
        self._peer_activity: anyio.Event | None = None
        self._pong = anyio.Event()
        self._ping_payload = b""
        self._connect_sent = False
        #: The ``websocket.disconnect`` for the app, once we know the WebSocket ended.
        self._disconnect: dict[str, Any] | None = None
        self._app_done = False
        self._started = time.monotonic()
        self._task_group: anyio.abc.TaskGroup | None = None

    # --- the session ------------------------------------------------------------------------

    async def run(self) -> CycleResult:
        """Run the app on the WebSocket until it ends; how it ended.

        Over HTTP/1.1 the connection closes after it whatever the result; over HTTP/2
        (RFC 8441) only the stream would end.
        """
        context = self._context
        state = context.state
        config = state.config
        scope = websocket_scope(
            self._request,
            scheme=context.scheme,
            root_path=config.root_path,
            client=context.client,
            server=context.server,
            state=state.lifespan_state,
            subprotocols=self._subprotocols,
        )
        state.requests_in_flight += 1
        try:
            async with anyio.create_task_group() as task_group:
                self._task_group = task_group
                task_group.start_soon(self._run_app, scope)
                with anyio.move_on_after(config.timeout_ws_handshake) as waited:
                    await self._handshake_done.wait()
                if waited.cancelled_caught:
                    logger.error(
                        "WebSocket app did not accept or close within %ss (%s)",
                        config.timeout_ws_handshake,
                        self._request.printable_target(),
                    )
                    await self._reject_quietly(500)
                    state.metrics.timed_out(self._record, "ws_handshake")
                    self._log("reject", 500)
                    task_group.cancel_scope.cancel()
                    return HANDSHAKE_TIMED_OUT
                # Accepted: read frames. Also when the app already closed after accepting
                # (LOCAL_CLOSING), or the peer's answering close would never be read.
                if self._ws.state in (WebSocketState.OPEN, WebSocketState.LOCAL_CLOSING):
                    task_group.start_soon(self._read_frames)
                    if config.ws_ping_interval is not None:
                        task_group.start_soon(
                            self._ping_periodically,
                            config.ws_ping_interval,
                            config.ws_ping_timeout,
                        )
                    if state.shutting_down:  # accepted after begin_shutdown() came and went
                        self.begin_shutdown()
        finally:
            self._task_group = None
            # Closed on every path (a refused handshake never calls _ended).
            self._messages.close_producer()
            self._messages.close_consumer()
            state.requests_in_flight -= 1
            state.requests_served += 1
        disconnect = self._disconnect
        return CLIENT_GONE if disconnect is not None and disconnect["code"] == 1006 else COMPLETED

    async def _run_app(self, scope: dict[str, Any]) -> None:
        error = False
        try:
            await self._context.state.app(scope, self.receive, self.send)
        except Exception as exc:
            gone = self._disconnect is not None and raised_for_disconnect(exc)
            if not (only_disconnects(exc) or gone):
                log_app_exception(
                    exc,
                    "Exception in ASGI application (WebSocket %s)",
                    self._request.printable_target(),
                )
                error = True
        await self._end_after_app(error=error)

    async def _end_after_app(self, *, error: bool) -> None:
        """The app's call ended: finish the handshake, or the closing handshake, for it."""
        self._app_done = True
        self._messages.close_consumer()  # a reader blocked on a full queue drops messages now
        self._wake_reader()
        ws = self._ws
        if ws.state is WebSocketState.HANDSHAKE:
            # Returned or raised before answering: the handshake fails with a 500.
            if not error:
                logger.error(
                    "WebSocket app returned without accepting or closing (%s)",
                    self._request.printable_target(),
                )
            await self._reject_quietly(500)
            self._log("reject", 500)
        elif ws.state is WebSocketState.OPEN:
            # Quietly: a write may already have failed (the client stopped reading).
            await self._close_quietly(1011 if error else 1000, "")
        # Whatever other tasks queued goes out before their task group is cancelled: the
        # reader's answer to the peer's close (it may still wait for its turn to write,
        # when the app's failed echo ended the app first), or a close frame whose sender
        # was cancelled. Waiting for the write lock also lets a write in progress finish.
        await self._write_quietly(b"")
        if ws.state is WebSocketState.LOCAL_CLOSING:
            # Give the peer a moment to answer our close frame, then drop the connection.
            with anyio.move_on_after(self._context.state.config.timeout_ws_close):
                while ws.state is WebSocketState.LOCAL_CLOSING and not self._transport.broken:
                    if self._peer_activity is None:
                        self._peer_activity = anyio.Event()
                    await self._peer_activity.wait()
        self._handshake_done.set()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    # --- receive ----------------------------------------------------------------------------

    async def receive(self) -> ASGIMessage:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        # What is already queued is returned without a checkpoint (also in a cancelled scope).
        try:
            message = self._messages.get_nowait()
            if message is None:
                if self._disconnect is not None:
                    return self._disconnect
                message = await self._messages.get()
        except QueueClosed:
            return self._disconnect_message()
        self._wake_reader()
        if isinstance(message.data, str):
            return {"type": "websocket.receive", "text": message.data}
        return {"type": "websocket.receive", "bytes": message.data}

    def _disconnect_message(self) -> dict[str, Any]:
        return self._disconnect or {"type": "websocket.disconnect", "code": 1006, "reason": ""}

    def _ended(self, code: int, reason: str = "", *, log: bool = True) -> None:
        """The WebSocket is over for the app; the first reason we learn of is the one it sees."""
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
            self._messages.close_producer()  # receive() drains the queue, then sees the disconnect
            if log and self._handshake_done.is_set():
                self._log("close", code)

    # --- send -------------------------------------------------------------------------------

    async def send(self, message: ASGIMessage) -> None:
        order = self._order
        parsed = order.check(message)  # ASGIProtocolError, or ClientDisconnected after close
        try:
            if isinstance(parsed, Send):  # the message of every echo: no _perform frame
                self._sending_bytes = len(parsed.data)
                await self._write(self._ws.send_message(parsed.data))
            else:
                await self._perform(parsed)
        except ASGIProtocolError:
            # The connection refused a value the order table cannot judge (an unoffered
            # subprotocol, a reserved close code, a bad status) before writing anything:
            # the message counts as never sent, so the app may still send a valid one.
            raise
        except BaseException:
            order.commit()  # maybe written in part: no second try
            raise
        finally:
            if self._sending_bytes:
                self._sending_bytes = 0
                self._wake_reader()
        order.commit()

    async def _perform(self, parsed: AppMessage) -> None:
        """Everything but a ``websocket.send`` (which :meth:`send` writes itself)."""
        ws = self._ws
        if isinstance(parsed, Accept):
            await self._answers.accept(ws, parsed.subprotocol, parsed.headers)
            self._log("accept", None)
            self._handshake_done.set()
        elif isinstance(parsed, Close):
            if ws.state is WebSocketState.HANDSHAKE:
                await self._answers.reject(ws, 403)
                self._log("reject", 403)
                self._ended(1000, parsed.reason, log=False)
                self._handshake_done.set()
            else:
                await self._close(parsed.code, parsed.reason)
        elif isinstance(parsed, ResponseStart):
            await self._answers.deny_start(ws, parsed.status, parsed.headers)
            self._log("reject", parsed.status)
            self._handshake_done.set()
        else:
            assert isinstance(parsed, ResponseBody)
            await self._answers.deny_body(ws, parsed.body, parsed.more_body)
            if not parsed.more_body:
                self._ended(1000, log=False)

    async def _close(self, code: int, reason: str) -> None:
        """Send our close frame (once) and tell the app the WebSocket is over."""
        if self._ws.state is not WebSocketState.OPEN:
            return
        data = self._ws.close(code, reason)
        self._ended(code, reason)
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        """Queue ``data`` behind what other tasks queued, then write the queue in order.

        The WebSocketConnection counts bytes as sent once it returned them (a close
        frame, a compressed message), so a task cancelled while waiting for its turn
        leaves its bytes queued and the next writer sends them. A write cancelled
        midway may leave part of a frame on the wire: nothing more can be written.
        """
        unsent = self._unsent
        if data:
            unsent.append(data)
        elif not unsent:
            return
        async with self._write_lock:
            # One frame (the common case, and a large echo) goes out as it is: no copy.
            data = unsent[0] if len(unsent) == 1 else b"".join(unsent)
            unsent.clear()
            if not data:  # an earlier writer took ours with its own
                if self._transport.broken:
                    raise ClientDisconnected("the client is gone")
                return
            try:
                await self._transport.write(data, self._context.state.config.timeout_write)
            except ClientDisconnected:
                self._ended(1006)
                raise
            except BaseException:
                self._transport.mark_broken()
                self._ended(1006)
                raise

    async def _write_quietly(self, data: bytes) -> None:
        try:
            await self._write(data)
        except ClientDisconnected:
            pass

    async def _reject_quietly(self, status: int) -> None:
        try:
            await self._answers.reject(self._ws, status)
        except ClientDisconnected:
            pass

    # --- reader and pinger --------------------------------------------------------------------

    async def _read_frames(self) -> None:
        ws = self._ws
        try:
            while True:
                event = ws.next_event()
                if event is NEED_DATA:
                    pending = ws.pending_output()
                    if pending or self._unsent:  # pongs wait for the client to read
                        await self._write(pending)
                    if ws.state is WebSocketState.CLOSED:
                        return
                    if self._messages.bytes or self._sending_bytes:
                        await self._wait_for_room()
                    ws.receive_data(await self._transport.read())
                    continue
                if isinstance(event, Message):
                    try:
                        await self._messages.put(event)  # blocks while the app is behind
                    except QueueClosed:
                        pass  # the app is done or the WebSocket ended: drop it
                elif isinstance(event, PongReceived):
                    if event.payload == self._ping_payload:
                        self._pong.set()
                elif isinstance(event, CloseReceived):
                    await self._write(ws.pending_output())  # our answering close, if due
                    self._ended(event.code, event.reason)
                elif isinstance(event, ConnectionLost):
                    self._ended(event.code, event.reason)
                elif isinstance(event, ProtocolViolation):
                    logger.debug("WebSocket protocol violation: %s", event.detail)
                    await self._write(ws.pending_output())  # our failing close frame
                    self._ended(event.code, event.reason)
                self._notify_peer_activity()
        except ClientDisconnected:
            pass
        finally:
            self._ended(1006)
            self._notify_peer_activity()
            if self._app_done and self._task_group is not None:
                self._task_group.cancel_scope.cancel()

    async def _wait_for_room(self) -> None:
        """Wait while what the session holds for the app reaches ``ws_max_queue_bytes``.

        Counted: the queued messages, the message being read, and the app's message
        being sent (an echo blocked on a client that does not read). Reading goes on
        when the app takes a message or its send() returns; with nothing queued or
        being sent, a message up to ``ws_max_size`` can always be read whole.
        """
        messages = self._messages
        while (
            (messages.bytes or self._sending_bytes)
            and messages.bytes + self._sending_bytes + self._ws.message_bytes >= self._max_bytes
            and not self._app_done
        ):
            if self._reader_room is None:
                self._reader_room = anyio.Event()
            await self._reader_room.wait()

    def _wake_reader(self) -> None:
        if self._reader_room is not None:
            self._reader_room.set()
            self._reader_room = None

    def _notify_peer_activity(self) -> None:
        if self._peer_activity is not None:
            self._peer_activity.set()
            self._peer_activity = None

    async def _ping_periodically(self, interval: float, timeout: float | None) -> None:  # noqa: ASYNC109
        ws = self._ws
        while ws.state is WebSocketState.OPEN:
            await anyio.sleep(interval)
            self._ping_payload = str(next(_ping_counter)).encode("ascii")
            self._pong = anyio.Event()
            try:
                await self._write(ws.send_ping(self._ping_payload))
            except ClientDisconnected:
                return
            with anyio.move_on_after(timeout) as waited:
                await self._pong.wait()
            if waited.cancelled_caught:
                logger.debug("WebSocket ping timed out (%s)", self._context.client)
                self._context.state.metrics.timed_out(self._record, "ws_ping")
                try:
                    await self._close(1011, "keepalive ping timeout")
                except ClientDisconnected:
                    pass
                self._transport.mark_broken()
                await self._transport.close()  # a peer that does not pong will not answer a close
                return

    def begin_shutdown(self) -> None:
        """Close with 1012 and end the app's WebSocket; the grace period bounds the rest."""
        if self._task_group is not None and self._ws.state is WebSocketState.OPEN:
            self._task_group.start_soon(self._close_quietly, SHUTDOWN_CLOSE_CODE, "server shutdown")

    async def _close_quietly(self, code: int, reason: str) -> None:
        try:
            await self._close(code, reason)
        except ClientDisconnected:
            pass

    def _log(self, event: str, code: int | None) -> None:
        self._context.state.metrics.websocket_event(event, code)
        access_log = self._context.state.access_log
        if access_log.enabled:
            access_log.log_websocket(
                client=self._context.client,
                raw_target=self._request.raw_target,
                http_version=self._request.http_version,
                event=event,
                code=code,
                duration=time.monotonic() - self._started,
                headers=self._request.headers,
            )


def _size(message: Message) -> int:
    """What a received message counts for against ``ws_max_queue_bytes``."""
    return len(message.data)


def _open_connection(
    context: CycleContext, handshake: Handshake, trailing_data: bytes
) -> WebSocketConnection:
    """The session's sans-IO WebSocket, with the server's limits and defaults."""
    config = context.state.config
    return WebSocketConnection(
        handshake,
        max_size=config.ws_max_size,
        per_message_deflate=config.ws_per_message_deflate,
        defaults=context.state.defaults,
        trailing_data=trailing_data,
    )
