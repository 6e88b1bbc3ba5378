"""The sans-IO WebSocket server connection: bytes in, events out; app actions in, bytes out.

Theory of operation
-------------------
One :class:`WebSocketConnection` serves one WebSocket, from the moment
:func:`~._ws_handshake.validate_handshake` accepted the upgrade request to the
end. It wraps wsproto's frame parser (:class:`wsproto.frame_protocol.FrameDecoder`)
and fills what wsproto leaves to its user (the HTTP responses are built in
:mod:`._ws_handshake`, close codes, frames and permessage-deflate in :mod:`._ws_codec`):

* **The handshake answer.** :meth:`~WebSocketConnection.accept` returns the 101
  response (subprotocol checked against the offer, permessage-deflate negotiated
  when enabled and offered); :meth:`~WebSocketConnection.reject` a 403 (or 500)
  response; :meth:`~WebSocketConnection.deny_start` and
  :meth:`~WebSocketConnection.deny_body` the app's denial response, framed by its
  Content-Length or, without one, by closing the connection.
* **Whole messages, bounded.** :meth:`~WebSocketConnection.next_event` returns
  :class:`Message` only for complete messages (fragments reassembled). A message
  larger than ``max_size`` bytes, counted after decompression, fails the
  connection with 1009 as soon as that is known: a frame header announcing too
  much, or the inflater producing one byte more than allowed. We never inflate
  more than ``max_size + 1`` bytes of a message, and never buffer the rest.
* **Failing the connection ourselves.** On a framing error (1002), invalid UTF-8
  in a text message or close reason (1007) or an oversized message (1009),
  wsproto only reports; we queue the close frame, return
  :class:`ProtocolViolation` and ignore everything the peer sends after that.
* **Answering the peer.** A ping queues its pong and a close frame queues our
  answering close; both go out through :meth:`~WebSocketConnection.pending_output`.

Driving it (the I/O layer's part):

1. Build it with the :class:`~._ws_handshake.Handshake` and the bytes that
   arrived after the request head (``trailing_data``). Call ``accept``,
   ``reject`` or ``deny_start``/``deny_body`` when the app answers, and write what
   they return. Bytes received before ``accept`` are kept unparsed and unbounded:
   don't read from the socket until the app has answered.
2. Feed what the socket reads to :meth:`~WebSocketConnection.receive_data`
   (``b""`` at EOF), then call :meth:`~WebSocketConnection.next_event` until it
   returns :data:`NEED_DATA`. Write :meth:`~WebSocketConnection.pending_output`
   before reading again: pongs then obey backpressure like everything else, and
   a client that floods pings but reads nothing stops being read. After
   :class:`CloseReceived`, :class:`ConnectionLost` or :class:`ProtocolViolation`
   nothing more is reported.
3. :meth:`~WebSocketConnection.send_message`, :meth:`~WebSocketConnection.send_ping`
   and :meth:`~WebSocketConnection.close` return bytes to write. Each starts with any
   pending output, so a pong never follows our close frame; write the returned
   bytes in the order the calls were made (one writer).
4. :attr:`~WebSocketConnection.state` says what to do next: ``OPEN`` keep going;
   ``LOCAL_CLOSING`` keep reading until the peer's close (with a deadline);
   ``CLOSED`` or ``REJECTED`` write what is pending, then close the socket.

Errors: an app's invalid action (an unoffered subprotocol, a reserved close code,
an unsafe header) raises :class:`~trio_asgi.ASGIProtocolError`; an action on a
WebSocket that is closing or closed raises :class:`~trio_asgi.ClientDisconnected`
(the ``OSError`` ASGI asks ``send()`` to raise). Neither changes the state.
"""

from __future__ import annotations

from codecs import IncrementalDecoder, getincrementaldecoder
from collections.abc import Iterable

from wsproto.frame_protocol import CloseReason, Frame, FrameDecoder, Opcode, ParseFailed

from .._errors import ASGIProtocolError
from ._response import DefaultHeaders
from ._ws_codec import (
    FAILURE_REASONS,
    PerMessageDeflate,
    check_close,
    encode_frame,
    negotiate_deflate,
    parse_close,
)
from ._ws_events import (
    NEED_DATA,
    Action,
    Closer,
    CloseReceived,
    ConnectionLost,
    Event,
    Message,
    NeedData,
    PingReceived,
    PongReceived,
    ProtocolViolation,
    WebSocketState,
    next_state,
)
from ._ws_frames_fast import FIN_TEXT, take_simple_frame
from ._ws_handshake import (
    DenialResponse,
    Handshake,
    accept_fields,
    accept_response,
    render_response,
)

# --- the connection ---------------------------------------------------------------------------


class WebSocketConnection:
    """One WebSocket, server side, without I/O: see the module's theory of operation.

    Args:
        handshake: The client's valid handshake, from
            :func:`~._ws_handshake.validate_handshake`.
        max_size: The largest message in bytes (after decompression); larger closes with 1009.
        per_message_deflate: Accept permessage-deflate when the client offers it.
        defaults: ``Date``, ``Server`` and configured headers for our HTTP responses.
        trailing_data: Bytes that arrived after the request head, in the same read.
        simple_frames: Read whole, final, masked data frames without wsproto (see
            :mod:`._ws_frames_fast`); off, wsproto reads every frame. The two read
            the same bytes the same way (a differential test holds them to it); the
            switch is for that test and for diagnosis.
    """

    __slots__ = (
        "_close_received",
        "_close_sent",
        "_closed_by",
        "_decoder",
        "_defaults",
        "_deflate",
        "_denial",
        "_early",
        "_eof",
        "_handshake",
        "_inbox",
        "_max_size",
        "_message_opcode",
        "_message_size",
        "_output",
        "_parts",
        "_per_message_deflate",
        "_simple_frames",
        "_state",
        "_text_parts",
        "_utf8",
        "_via_decoder",
        "subprotocol",
    )

    def __init__(
        self,
        handshake: Handshake,
        *,
        max_size: int = 16 * 1024 * 1024,
        per_message_deflate: bool = True,
        defaults: DefaultHeaders | None = None,
        trailing_data: bytes = b"",
        simple_frames: bool = True,
    ) -> None:
        self._handshake = handshake
        self._simple_frames = simple_frames
        self._max_size = max_size
        self._per_message_deflate = per_message_deflate
        self._defaults = defaults
        self._state = WebSocketState.HANDSHAKE
        #: The subprotocol the app accepted (``None``: none).
        self.subprotocol: str | None = None
        self._deflate: PerMessageDeflate | None = None
        self._decoder: FrameDecoder | None = None
        #: Received bytes not given to the decoder: simple frames are read from here
        #: without it (see _ws_frames_fast). Empty whenever the decoder holds bytes.
        self._inbox = bytearray()
        #: The decoder holds bytes or a frame in progress: it reads everything until idle.
        self._via_decoder = False
        self._early = bytearray(trailing_data)
        self._eof = False
        self._output = bytearray()
        self._closed_by: Closer | None = None
        self._close_sent = self._close_received = False
        self._denial: DenialResponse | None = None
        self._message_opcode: Opcode | None = None
        self._message_size = 0
        self._parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._utf8: IncrementalDecoder | None = None

    # --- state queries ------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        return self._state

    @property
    def per_message_deflate(self) -> bool:
        """Whether permessage-deflate was negotiated."""
        return self._deflate is not None

    @property
    def message_bytes(self) -> int:
        """Bytes of the message being received that are held here until it is whole."""
        return self._message_size

    @property
    def closed_by(self) -> Closer | None:
        """Who closed first, once either side did."""
        return self._closed_by

    @property
    def closing_handshake_done(self) -> bool:
        """Both close frames went out and came in: a clean close (``wasClean``)."""
        return self._close_sent and self._close_received

    def _next(self, action: Action) -> WebSocketState:
        return next_state(self._state, action)

    # --- the handshake answer -----------------------------------------------------------------

    def accept(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> bytes:
        """The ``101 Switching Protocols`` response; the WebSocket is then open.

        Raises:
            ASGIProtocolError: the client did not offer ``subprotocol``, or ``headers``
                name ``sec-websocket-protocol`` or hold an invalid header.
            ClientDisconnected: the client went away during the handshake.
        """
        state = self._next(Action.ACCEPT)
        deflate = self._negotiate_deflate()
        extension = deflate.response_header() if deflate is not None else None
        response = accept_response(self._handshake, subprotocol, headers, extension, self._defaults)
        self._open(state, subprotocol, deflate)
        return response

    def accept_http2(
        self, subprotocol: str | None = None, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> list[tuple[bytes, bytes]]:
        """Accept as :meth:`accept` does, for RFC 8441: the fields of the ``200`` HEADERS
        that answer an extended CONNECT on an HTTP/2 stream, instead of a 101 response.

        Raises:
            ASGIProtocolError, ClientDisconnected: as :meth:`accept`.
        """
        state = self._next(Action.ACCEPT)
        deflate = self._negotiate_deflate()
        extension = deflate.response_header() if deflate is not None else None
        fields = accept_fields(self._handshake, subprotocol, headers, extension)
        self._open(state, subprotocol, deflate)
        return [(name.lower(), value) for name, value in fields]

    def _negotiate_deflate(self) -> PerMessageDeflate | None:
        if not self._per_message_deflate:
            return None
        return negotiate_deflate(self._handshake.deflate_offers, self._max_size)

    def _open(
        self, state: WebSocketState, subprotocol: str | None, deflate: PerMessageDeflate | None
    ) -> None:
        self._state = state
        self.subprotocol = subprotocol
        self._deflate = deflate
        self._decoder = FrameDecoder(client=False, extensions=[deflate] if deflate else [])
        # Compressed messages need the extension's hooks on every frame: all go to wsproto.
        self._simple_frames = self._simple_frames and deflate is None
        self._via_decoder = not self._simple_frames
        self._feed_frames(bytes(self._early))
        self._early = bytearray()

    def reject(self, status: int = 403, headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """An empty HTTP response instead of the 101: 403 when the app closes before
        accepting, 500 when it fails. Close the connection once it is written."""
        state = self._next(Action.REJECT)
        out = [(b"content-length", b"0"), (b"connection", b"close"), *headers]
        response = render_response(status, out, self._defaults)
        self._state = state
        return response

    def deny_start(self, status: int, headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """Start the app's denial response (``websocket.http.response.start``).

        Returns ``b""``: the head goes out with the first body chunk, in one write.

        Raises:
            ASGIProtocolError: a status outside 200-599, a bad Content-Length or header.
        """
        state = self._next(Action.DENY_START)
        self._denial = DenialResponse(status, headers, self._defaults)
        self._state = state
        return b""

    def deny_body(self, body: bytes, more_body: bool = False) -> bytes:
        """Body bytes of the denial response (``websocket.http.response.body``).

        Without a Content-Length, the body ends when the connection closes.

        Raises:
            ASGIProtocolError: more or fewer bytes than the declared Content-Length.
        """
        state = self._next(Action.DENY_BODY if more_body else Action.DENY_END)
        assert self._denial is not None  # DENYING state
        out = self._denial.body(body, more_body)
        self._state = state
        return out

    # --- receiving ----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the socket; ``b""`` means EOF.

        Before :meth:`accept` they are kept for the WebSocket; once the connection is
        rejected, closed or failed they are dropped.
        """
        if self._eof:
            return
        if not data:
            self._eof = True
        elif self._decoder is not None:
            self._feed_frames(data)
        elif self._state is WebSocketState.HANDSHAKE:
            self._early += data

    def _feed_frames(self, data: bytes) -> None:
        """Bytes for the open WebSocket's frame reader (``receive_data`` after accept)."""
        if self._via_decoder:
            assert self._decoder is not None
            self._decoder.receive_bytes(data)
        else:
            self._inbox += data

    def next_event(self) -> Event | NeedData:
        """The next event from the bytes received so far, or :data:`NEED_DATA`."""
        decoder = self._decoder
        if decoder is not None:
            try:
                if not self._via_decoder:
                    if self._inbox:
                        message = self._next_simple_message(decoder)
                        if message is not None:
                            return message
                    if not self._via_decoder:
                        return NEED_DATA if not self._eof else self._lost()
                while (frame := decoder.process_buffer()) is not None:
                    event = self._on_frame(frame, decoder)
                    if event is not None:
                        return event
                if decoder.header is None and not len(decoder.buffer):
                    self._via_decoder = not self._simple_frames  # idle again
            except ParseFailed as exc:
                return self._fail(exc)
        elif self._state not in (WebSocketState.HANDSHAKE, WebSocketState.DENYING):
            return NEED_DATA
        if not self._eof:
            return NEED_DATA
        return self._lost()

    def _next_simple_message(self, decoder: FrameDecoder) -> Message | None:
        """A message read from the inbox without the decoder, or None: then the decoder
        has the inbox (a frame only it reads, or one not all here yet)."""
        if self._message_opcode is None:  # not in the middle of a fragmented message
            simple = take_simple_frame(self._inbox, self._max_size)
            if simple is not None:
                first, payload = simple
                if first != FIN_TEXT:
                    return Message(payload)
                try:
                    return Message(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ParseFailed(
                        "invalid UTF-8 in a text message", CloseReason.INVALID_FRAME_PAYLOAD_DATA
                    ) from None
        if self._inbox:
            decoder.receive_bytes(bytes(self._inbox))
            self._inbox.clear()
            self._via_decoder = True
        return None

    def _lost(self) -> ConnectionLost:
        self._state = self._next(Action.PEER_GONE)
        self._closed_by = self._closed_by or Closer.REMOTE
        self._stop_receiving()
        return ConnectionLost()

    def _on_frame(self, frame: Frame, decoder: FrameDecoder) -> Event | None:
        opcode = frame.opcode
        if not opcode.iscontrol():
            return self._on_data(frame, decoder)
        payload = frame.payload
        assert isinstance(payload, bytes)  # wsproto decodes only TEXT payloads to str
        if opcode is Opcode.PING:
            if self._state is WebSocketState.OPEN:
                self._output += encode_frame(Opcode.PONG, payload)
            return PingReceived(payload)
        if opcode is Opcode.PONG:
            return PongReceived(payload)
        code, reason = parse_close(payload)
        if self._state is WebSocketState.OPEN:
            # Answer with the same code (RFC 6455 5.5.1); a close without code gets one without.
            self._output += encode_frame(
                Opcode.CLOSE, b"" if code == 1005 else code.to_bytes(2, "big")
            )
            self._close_sent = True
            self._closed_by = Closer.REMOTE
        self._close_received = True
        self._state = self._next(Action.PEER_CLOSE)
        self._stop_receiving()
        return CloseReceived(code, reason)

    def _on_data(self, frame: Frame, decoder: FrameDecoder) -> Message | None:
        """Add one chunk (a frame or part of one) to the message being received."""
        payload = frame.payload
        assert isinstance(payload, bytes)
        if frame.opcode is Opcode.CONTINUATION:
            # Also the rest of a frame that arrived in pieces: wsproto labels it so.
            if self._message_opcode is None:
                raise ParseFailed("continuation frame without a message to continue")
        elif self._message_opcode is not None:
            raise ParseFailed("new data frame before the fragmented message was finished")
        else:
            self._message_opcode = frame.opcode
        size = self._message_size + len(payload)
        if size > self._max_size:
            raise ParseFailed("message too big", CloseReason.MESSAGE_TOO_BIG)
        if not frame.frame_finished and not (self._deflate and self._deflate.message_compressed):
            # The header announces the frame's length: refuse now rather than read it all.
            assert decoder.header is not None
            if size + decoder.header.payload_len - decoder.payload_consumed > self._max_size:
                raise ParseFailed(
                    "frame too big for the message size limit", CloseReason.MESSAGE_TOO_BIG
                )
        finished = frame.frame_finished and frame.message_finished
        if self._message_opcode is Opcode.TEXT:
            try:
                if finished and self._utf8 is None:  # the common case: one chunk, one message
                    self._reset_message()
                    return Message(payload.decode("utf-8"))
                if self._utf8 is None:
                    self._utf8 = getincrementaldecoder("utf-8")()
                # Decoded chunk by chunk, so invalid UTF-8 fails fast (Autobahn section 6).
                self._text_parts.append(self._utf8.decode(payload, finished))
            except UnicodeDecodeError:
                raise ParseFailed(
                    "invalid UTF-8 in a text message", CloseReason.INVALID_FRAME_PAYLOAD_DATA
                ) from None
            if finished:
                text = "".join(self._text_parts)
                self._reset_message()
                return Message(text)
        else:
            if finished and not self._parts:
                self._reset_message()
                return Message(payload)
            self._parts.append(payload)
            if finished:
                data = b"".join(self._parts)
                self._reset_message()
                return Message(data)
        self._message_size = size
        return None

    def _reset_message(self) -> None:
        self._message_opcode = None
        self._message_size = 0
        self._parts = []
        self._text_parts = []
        self._utf8 = None

    def _fail(self, exc: ParseFailed) -> ProtocolViolation:
        """Fail the WebSocket connection (RFC 6455 7.1.7): our close frame, then nothing more."""
        code = int(exc.code)
        reason = FAILURE_REASONS.get(code, "protocol error")
        if self._state is WebSocketState.OPEN:
            self._output += encode_frame(
                Opcode.CLOSE, code.to_bytes(2, "big") + reason.encode("ascii")
            )
            self._close_sent = True
            self._closed_by = Closer.LOCAL
        self._state = self._next(Action.FAIL)
        self._stop_receiving()
        return ProtocolViolation(code, reason, str(exc))

    def _stop_receiving(self) -> None:
        # Whatever follows a close frame, a failure or EOF is ignored: drop it, never buffer it.
        self._decoder = None
        self._early = bytearray()
        self._inbox = bytearray()
        self._eof = True
        self._reset_message()

    # --- sending ------------------------------------------------------------------------------

    def pending_output(self) -> bytes:
        """Queued bytes to write (pongs, our answering or failing close frame), then cleared."""
        if not self._output:
            return b""
        out = bytes(self._output)
        self._output.clear()
        return out

    def send_message(self, data: str | bytes) -> bytes:
        """A text (``str``) or binary (``bytes``) message, compressed if negotiated.

        Raises:
            ClientDisconnected: the WebSocket is closing or closed.
            ASGIProtocolError: it is not open yet, or the text is not valid Unicode.
        """
        self._state = self._next(Action.SEND)
        if isinstance(data, str):
            opcode = Opcode.TEXT
            try:
                payload = data.encode("utf-8")
            except UnicodeEncodeError:
                raise ASGIProtocolError(
                    "websocket.send: text is not valid Unicode (lone surrogate)"
                ) from None
        else:
            opcode = Opcode.BINARY
            payload = data
        if self._deflate is not None:
            return self.pending_output() + encode_frame(
                opcode, self._deflate.compress(payload), True
            )
        return self.pending_output() + encode_frame(opcode, payload)

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping (at most 125 bytes of payload).

        Raises:
            ClientDisconnected: the WebSocket is closing or closed.
        """
        if len(payload) > 125:
            raise ValueError("a ping payload is at most 125 bytes")
        self._state = self._next(Action.SEND)
        return self.pending_output() + encode_frame(Opcode.PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        """Our close frame; then keep reading until the peer's close (``LOCAL_CLOSING``).

        Raises:
            ASGIProtocolError: a code that may not be sent, or a reason over 123 UTF-8 bytes.
            ClientDisconnected: the WebSocket is already closing or closed.
        """
        payload = check_close(code, reason)
        state = self._next(Action.CLOSE)
        self._state = state
        self._close_sent = True
        self._closed_by = self._closed_by or Closer.LOCAL
        return self.pending_output() + encode_frame(Opcode.CLOSE, payload)
