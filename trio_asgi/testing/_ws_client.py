"""A WebSocket client for tests: wsproto's handshake and framing over an in-memory stream.

The client answers pings and closing handshakes as a browser would, reassembles
fragmented messages, and reports a close as :class:`WebSocketClosed`. Bytes wsproto
would never write (unmasked frames, reserved bits) go out through
:meth:`TestWebSocket.send_raw`, built with
:func:`trio_asgi.testing.strategies.encode_frame`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from ._client_errors import ConnectionClosed, InvalidResponse, WebSocketClosed
from ._waiting import aclose_forcefully, read_deadline

_READ_SIZE = 65536


@dataclass(frozen=True)
class WebSocketRejection:
    """The HTTP response a server sent instead of accepting the WebSocket.

    Attributes:
        status: The status code (403 when the app closed before accepting).
        headers: The header fields, names lower-cased.
        body: The body (the denial response extension's, or empty).
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class TestWebSocket:
    """The client side of one WebSocket, made by :meth:`TestConnection.websocket`.

    Attributes:
        accepted: The server accepted the handshake (a ``101``).
        subprotocol: The subprotocol the server chose, if any.
        response_headers: The ``101`` response's headers.
        rejection: The HTTP response instead of a ``101``, if the server refused.
        close_code: The server's close code once it closed (1006: no close frame).
        close_reason: The server's close reason.
        pongs: The payloads of the pongs received so far.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        stream: trio.abc.Stream,
        ws: WSConnection,
        timeout: float | None,
        check_app: Callable[[], None] = lambda: None,
    ) -> None:
        self.stream = stream
        self._check_app = check_app
        self.timeout = timeout
        self._ws = ws
        self._events: deque[Event] = deque()
        self.accepted: bool = False
        self.subprotocol: str | None = None
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.rejection: WebSocketRejection | None = None
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.pongs: list[bytes] = []

    def _deadline(self) -> AbstractContextManager[None]:
        return read_deadline(self.timeout)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read under the deadline; an app error that happened meanwhile wins."""
        try:
            with self._deadline():
                yield
        except (ConnectionClosed, InvalidResponse, WebSocketClosed, trio.TooSlowError):
            self._check_app()
            raise
        self._check_app()

    # --- plumbing -----------------------------------------------------------------------------

    async def _send(self, event: Event) -> None:
        await self.stream.send_all(self._ws.send(event))

    async def _read(self) -> None:
        """Read once from the stream into wsproto, and queue the events it produces."""
        try:
            data = bytes(await self.stream.receive_some(_READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        self.feed(data)

    def feed(self, data: bytes) -> None:
        """Hand bytes read from the server to wsproto (``b""``: end of stream)."""
        try:
            self._ws.receive_data(data or None)
        except RemoteProtocolError as exc:
            raise InvalidResponse(f"invalid handshake response: {exc}") from None
        self._events.extend(self._ws.events())

    async def _next_event(self) -> Event:
        while not self._events:
            if self.close_code is not None or self._ws.state is ConnectionState.CLOSED:
                raise WebSocketClosed(self.close_code or 1006, self.close_reason)
            await self._read()
        return self._events.popleft()

    async def _on_close(self, event: CloseConnection) -> WebSocketClosed:
        """Record the server's close frame and answer it (the closing handshake)."""
        self.close_code, self.close_reason = int(event.code), event.reason or ""
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            try:
                await self._send(event.response())
            except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError):
                pass
        return WebSocketClosed(self.close_code, self.close_reason)

    async def handshake(self) -> None:
        """Wait for the server's answer to the upgrade request."""
        with self._reading():
            while True:
                while not self._events:
                    if self._ws.state is ConnectionState.CLOSED and self.rejection is None:
                        raise ConnectionClosed("closed during the WebSocket handshake")
                    await self._read()
                event = self._events.popleft()
                if isinstance(event, AcceptConnection):
                    self.accepted = True
                    self.subprotocol = event.subprotocol
                    self.response_headers = [(bytes(n), bytes(v)) for n, v in event.extra_headers]
                    return
                if isinstance(event, RejectConnection):
                    headers = [(bytes(n), bytes(v)) for n, v in event.headers]
                    self.rejection = WebSocketRejection(event.status_code, headers, b"")
                    if not event.has_body:
                        return
                elif isinstance(event, RejectData) and self.rejection is not None:
                    rejection = self.rejection
                    body = rejection.body + event.data
                    self.rejection = WebSocketRejection(rejection.status, rejection.headers, body)
                    if event.body_finished:
                        return
                elif isinstance(event, CloseConnection):  # EOF before an answer
                    raise ConnectionClosed("closed during the WebSocket handshake")

    # --- the app-facing API -------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send a text message.

        Raises:
            WebSocketClosed: The server's close frame has arrived (it is answered).
        """
        await self._send_message(TextMessage(text))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message; raises as :meth:`send_text`."""
        await self._send_message(BytesMessage(data))

    async def _send_message(self, event: TextMessage | BytesMessage) -> None:
        if self._ws.state is not ConnectionState.OPEN:
            # The server's close frame came in with an earlier read (after the last
            # message receive() returned): answer it, and say the socket closed.
            while self._events:
                queued = self._events.popleft()
                if isinstance(queued, CloseConnection):
                    raise await self._on_close(queued)
            raise WebSocketClosed(self.close_code or 1006, self.close_reason or "")
        await self._send(event)

    async def send_raw(self, data: bytes) -> None:
        """Write raw bytes (frames wsproto would refuse to write)."""
        await self.stream.send_all(data)

    async def receive(self) -> str | bytes:
        """The next whole message; pings are answered, pongs recorded.

        Raises:
            WebSocketClosed: The server closed instead (the close is answered).
        """
        parts: list[str | bytes] = []
        with self._reading():
            while True:
                event = await self._next_event()
                if isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, Pong):
                    self.pongs.append(bytes(event.payload))
                elif isinstance(event, Message):
                    parts.append(event.data)
                    if event.message_finished:
                        if isinstance(event, TextMessage):
                            return "".join(p for p in parts if isinstance(p, str))
                        return b"".join(p for p in parts if isinstance(p, bytes | bytearray))
                elif isinstance(event, CloseConnection):
                    raise await self._on_close(event)

    async def ping(self, payload: bytes = b"") -> None:
        """Send a ping and wait for its pong; messages arriving meanwhile stay queued.

        Raises:
            WebSocketClosed: The server closed first.
        """
        await self._send(Ping(payload))
        held: list[Event] = []
        try:
            with self._deadline():
                while True:
                    event = await self._next_event()
                    if isinstance(event, Pong) and bytes(event.payload) == payload:
                        self.pongs.append(payload)
                        return
                    if isinstance(event, Ping):
                        await self._send(event.response())
                    elif isinstance(event, CloseConnection):
                        raise await self._on_close(event)
                    else:
                        held.append(event)
        finally:
            self._events.extendleft(reversed(held))

    async def receive_close(self) -> tuple[int, str]:
        """Wait for the server's close (messages before it are dropped) and answer it.

        Returns:
            The server's close code and reason; ``(1006, "")`` if the connection
            dropped without a close frame.
        """
        with self._reading():
            while self.close_code is None:
                try:
                    event = await self._next_event()
                except WebSocketClosed as closed:
                    return closed.code, closed.reason
                if isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    await self._on_close(event)
        return self.close_code, self.close_reason

    async def close(self, code: int | None = 1000, reason: str = "") -> tuple[int, str]:
        """Start the closing handshake and wait for the server's close frame.

        Args:
            code: Our close code; ``None`` sends a close frame without one.
            reason: Our close reason.

        Returns:
            The server's close code and reason.
        """
        if self._ws.state is ConnectionState.OPEN:
            # wsproto writes an empty close payload only for this enum member.
            await self._send(
                CloseConnection(CloseReason.NO_STATUS_RCVD if code is None else code, reason)
            )
        return await self.receive_close()

    async def aclose(self) -> None:
        """Drop the connection without a closing handshake."""
        await aclose_forcefully(self.stream)


async def open_websocket(
    stream: trio.abc.Stream,
    target: str,
    *,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[bytes, bytes]] = (),
    per_message_deflate: bool = False,
    pending: bytes = b"",
    read_timeout: float | None,
    check_app: Callable[[], None] = lambda: None,
) -> TestWebSocket:
    """Send a handshake on ``stream`` and wait for the answer.

    Args:
        stream: The client stream.
        target: The request target.
        subprotocols: The subprotocols to offer.
        headers: Extra request headers.
        per_message_deflate: Offer permessage-deflate.
        pending: Bytes already read from ``stream`` that belong to the answer.
        read_timeout: Seconds to wait for each answer.
        check_app: Raises the app's error, if it had one, after each read.
    """
    ws = WSConnection(ConnectionType.CLIENT)
    extensions: list[Extension] = [PerMessageDeflate()] if per_message_deflate else []
    request = Request(
        host="testserver",
        target=target,
        subprotocols=list(subprotocols),
        extensions=extensions,
        extra_headers=list(headers),
    )
    await stream.send_all(ws.send(request))
    websocket = TestWebSocket(stream, ws, read_timeout, check_app)
    if pending:
        websocket.feed(pending)
    await websocket.handshake()
    return websocket
