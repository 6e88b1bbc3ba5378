"""A WebSocket on one HTTP/2 stream (RFC 8441), served by the HTTP/1.1 WebSocket session.

:class:`~._websocket.WebSocketSession` runs the app, the reader and the pinger as it
does over HTTP/1.1; here it gets the stream instead of the connection:

* :class:`H2StreamTransport` reads the stream's DATA (the window reopens as the
  session takes each chunk, and the session takes one only when it has room for it:
  a WebSocket that is not read stalls only its stream) and writes frames as DATA
  under the stream's window and ``timeout_write``.
* :class:`H2HandshakeAnswers` answers the extended CONNECT with HEADERS: ``200``
  (and the chosen subprotocol) to accept, ``403``/``500`` to refuse, or the app's
  denial response (the ``websocket.http.response`` extension) as HEADERS and DATA.

A reset from the client ends the session's reads, so the app sees
``websocket.disconnect`` 1006; the session's end sends END_STREAM.
"""

from __future__ import annotations

import logging

from .._errors import ClientDisconnected
from .._protocol._h2_websocket import validate_h2_handshake
from .._protocol._websocket import WebSocketConnection
from .._protocol._ws_handshake import HandshakeRejection
from ._http2_stream import H2Stream
from ._request_stream import CycleContext
from ._websocket import WebSocketSession

logger = logging.getLogger("trio_asgi")


class H2StreamTransport:
    """One HTTP/2 stream as the session's :class:`~._websocket_seam.WebSocketTransport`."""

    __slots__ = ("_broken", "_stream")

    def __init__(self, stream: H2Stream) -> None:
        self._stream = stream
        self._broken = False

    @property
    def broken(self) -> bool:
        return self._broken or self._stream.disconnected or self._stream.broken

    def mark_broken(self) -> None:
        self._broken = True

    async def read(self) -> bytes:
        return await self._stream.read_data()

    async def write(self, data: bytes, timeout: float | None) -> None:  # noqa: ASYNC109
        """DATA on the stream; the stream applies ``timeout_write`` to a window that stays shut."""
        if self._broken:
            raise ClientDisconnected("the WebSocket's stream is broken")
        await self._stream.send_body(data, final=False)

    async def close(self) -> None:
        """The peer stopped answering: reset the stream (the connection carries on)."""
        self._broken = True
        self._stream.abort()


class H2HandshakeAnswers:
    """The app's answer to an extended CONNECT, as HEADERS (and DATA) on its stream."""

    __slots__ = ("_stream",)

    def __init__(self, stream: H2Stream) -> None:
        self._stream = stream

    async def accept(
        self, ws: WebSocketConnection, subprotocol: str | None, headers: list[tuple[bytes, bytes]]
    ) -> None:
        fields = ws.accept_http2(subprotocol, headers)
        await self._stream.send_head(200, fields, trailers=False)
        await self._stream.flush()  # send(websocket.accept) returns once the 200 went out

    async def reject(self, ws: WebSocketConnection, status: int) -> None:
        ws.reject(status)  # the state change; its HTTP/1.1 bytes are not for this stream
        await self._stream.send_head(status, [(b"content-length", b"0")], trailers=False)
        await self._stream.send_body(b"", final=True)

    async def deny_start(
        self, ws: WebSocketConnection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        ws.deny_start(status, headers)  # checks the status and Content-Length
        await self._stream.send_head(status, headers, trailers=False)

    async def deny_body(self, ws: WebSocketConnection, body: bytes, more_body: bool) -> None:
        ws.deny_body(body, more_body)  # checks the body against the Content-Length
        await self._stream.send_body(body, final=not more_body)


class H2WebSocket:
    """Serves the WebSocket an extended CONNECT opens on ``stream``, until it ends."""

    __slots__ = ("_context", "_session", "_stream")

    def __init__(self, context: CycleContext, stream: H2Stream) -> None:
        self._context = context
        self._stream = stream
        self._session: WebSocketSession | None = None
        stream.carries_websocket = True

    async def run(self) -> None:
        stream = self._stream
        handshake = validate_h2_handshake(stream.request.headers)
        if isinstance(handshake, HandshakeRejection):
            logger.debug("HTTP/2 WebSocket handshake refused: %s", handshake.body.strip())
            await stream.send_error(handshake.status, body=handshake.body, extra=handshake.headers)
            return
        self._session = WebSocketSession(
            self._context,
            H2StreamTransport(stream),
            stream.request,
            handshake,
            b"",
            answers=H2HandshakeAnswers(stream),
        )
        result = await self._session.run()
        logger.debug("HTTP/2 WebSocket on stream %d ended (%s)", stream.stream_id, result.reason)
        if not (stream.response_complete or stream.disconnected):
            try:  # the close handshake is done (or timed out): END_STREAM (RFC 8441 section 6)
                await stream.send_body(b"", final=True)
            except ClientDisconnected:
                pass

    def begin_shutdown(self) -> None:
        """Close 1012, as every WebSocket gets when the server shuts down."""
        if self._session is not None:
            self._session.begin_shutdown()
