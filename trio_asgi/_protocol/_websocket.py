"""The sans-IO WebSocket server connection: bytes in, events out; app actions in, bytes out.

Theory of operation
-------------------
One :class:`WebSocketConnection` serves one WebSocket, from the moment
:func:`~._ws_handshake.validate_handshake` accepted the upgrade request to the
end. It wraps wsproto's frame parser (:class:`wsproto.frame_protocol.FrameDecoder`)
and fills what wsproto leaves to its user:

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
   they return.
2. Feed what the socket reads to :meth:`~WebSocketConnection.receive_data`
   (``b""`` at EOF), then call :meth:`~WebSocketConnection.next_event` until it
   returns :data:`NEED_DATA`. Write :meth:`~WebSocketConnection.pending_output`
   before reading again: pongs then obey backpressure like everything else, and
   a client that floods pings but reads nothing stops being read.
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

import enum
import struct
import zlib
from codecs import getincrementaldecoder
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from wsproto.extensions import Extension
from wsproto.frame_protocol import (
    CloseReason,
    Frame,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
)
from wsproto.utilities import generate_accept_token

from .._errors import ASGIProtocolError, ClientDisconnected
from ._response import DefaultHeaders
from ._ws_handshake import DeflateOffer, Handshake, render_response

# --- events -----------------------------------------------------------------------------------


class NeedData(enum.Enum):
    #: Nothing more can be parsed until more bytes arrive (or nothing ever will: see ``state``).
    NEED_DATA = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Message:
    """A whole data message: ``str`` from a text message, ``bytes`` from a binary one."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class PingReceived:
    """The peer pinged; its pong is already queued in the pending output (unless we are closing)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongReceived:
    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame: 1005 when it carried no code. Our answer (if due) is queued."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The byte stream ended without a close frame (RFC 6455 section 7.1.5: code 1006)."""

    code: int = 1006
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The peer broke the protocol; we queued a close frame with ``code`` (unless we had sent one).

    ``code`` is 1002 (framing), 1007 (invalid UTF-8 or compressed data) or 1009 (too big);
    ``reason`` is what our close frame says; ``detail`` is for the log.
    """

    code: int
    reason: str
    detail: str = field(default="", compare=False)


Event: TypeAlias = Message | PingReceived | PongReceived | CloseReceived | ConnectionLost | ProtocolViolation


# --- states -----------------------------------------------------------------------------------


class WebSocketState(enum.Enum):
    #: The upgrade request was valid; the app has not answered yet.
    HANDSHAKE = enum.auto()
    #: The app's denial response has started; body chunks follow.
    DENYING = enum.auto()
    #: An HTTP response was sent instead of the 101: write it, then close the connection.
    REJECTED = enum.auto()
    #: Accepted: messages flow both ways.
    OPEN = enum.auto()
    #: We sent our close frame and wait for the peer's.
    LOCAL_CLOSING = enum.auto()
    #: The WebSocket is over (close frames exchanged, the peer vanished, or we failed it):
    #: write the pending output, then close the connection.
    CLOSED = enum.auto()


class Closer(enum.Enum):
    #: We sent the first close frame (or failed the connection).
    LOCAL = enum.auto()
    #: The peer sent the first close frame (or vanished).
    REMOTE = enum.auto()


class _Action(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    DENY_START = "start a denial response"
    DENY_BODY = "send denial response body"
    DENY_END = "finish a denial response"
    SEND = "send"
    CLOSE = "close"
    PEER_CLOSE = "receive a close frame"
    PEER_GONE = "lose the connection"
    FAIL = "fail the connection"


_S = WebSocketState
_A = _Action

#: (state, action) -> next state; a missing pair is an error (see ``_next``).
_TRANSITIONS: Final[dict[tuple[WebSocketState, _Action], WebSocketState]] = {
    (_S.HANDSHAKE, _A.ACCEPT): _S.OPEN,
    (_S.HANDSHAKE, _A.REJECT): _S.REJECTED,
    (_S.HANDSHAKE, _A.DENY_START): _S.DENYING,
    (_S.HANDSHAKE, _A.PEER_GONE): _S.CLOSED,
    (_S.DENYING, _A.DENY_BODY): _S.DENYING,
    (_S.DENYING, _A.DENY_END): _S.REJECTED,
    (_S.DENYING, _A.PEER_GONE): _S.CLOSED,
    (_S.OPEN, _A.SEND): _S.OPEN,
    (_S.OPEN, _A.CLOSE): _S.LOCAL_CLOSING,
    (_S.OPEN, _A.PEER_CLOSE): _S.CLOSED,
    (_S.OPEN, _A.PEER_GONE): _S.CLOSED,
    (_S.OPEN, _A.FAIL): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.PEER_CLOSE): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.PEER_GONE): _S.CLOSED,
    (_S.LOCAL_CLOSING, _A.FAIL): _S.CLOSED,
}

#: In these states the WebSocket is over for the app: its actions raise ClientDisconnected.
_GONE_STATES: Final = frozenset({_S.LOCAL_CLOSING, _S.CLOSED})


# --- close codes ------------------------------------------------------------------------------

#: What our close frame says when we fail the connection (the detail goes to the log only).
_FAILURE_REASONS: Final = {1002: "protocol error", 1007: "invalid payload data", 1009: "message too big"}
MAX_CLOSE_REASON_BYTES: Final = 123


def is_valid_close_code(code: int) -> bool:
    """Codes that may appear in a close frame: the defined ones (1004-1006 and 1015 are
    reserved for local use) and the registered and private ranges 3000-4999."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def check_close(code: int, reason: str) -> bytes:
    """The close frame payload for ``code`` and ``reason``.

    Raises:
        ASGIProtocolError: the code may not be sent, or the reason is over 123 UTF-8 bytes.
    """
    if not is_valid_close_code(code):
        raise ASGIProtocolError(f"close code {code} may not be sent: use 1000-1003, 1007-1014 "
                                "or 3000-4999")
    try:
        encoded = reason.encode("utf-8")
    except UnicodeEncodeError:
        raise ASGIProtocolError("the close reason is not valid Unicode (lone surrogate)") from None
    if len(encoded) > MAX_CLOSE_REASON_BYTES:
        raise ASGIProtocolError(f"the close reason is {len(encoded)} UTF-8 bytes; the limit is "
                                f"{MAX_CLOSE_REASON_BYTES}")
    return code.to_bytes(2, "big") + encoded


def _parse_close(payload: bytes) -> tuple[int, str]:
    """The code and reason of a received close frame (RFC 6455 sections 5.5.1 and 7.4)."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ParseFailed("close frame with a one-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ParseFailed(f"close frame with invalid code {code}")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ParseFailed("close reason is not UTF-8", CloseReason.INVALID_FRAME_PAYLOAD_DATA) from None


# --- framing ----------------------------------------------------------------------------------

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def _frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
    """One unmasked, final frame (servers never mask: RFC 6455 section 5.1)."""
    first = 0xC0 | opcode if rsv1 else 0x80 | opcode
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 0x10000:
        return _PACK_16(first, 126, length) + payload
    return _PACK_64(first, 127, length) + payload


#: The four bytes every sync-flushed deflate block ends with; RFC 7692 drops them on the wire.
_DEFLATE_TAIL: Final = b"\x00\x00\xff\xff"
#: Our own LZ77 window (4 KiB) and memory level: ~32 KiB per compressing connection, not ~256 KiB.
_SERVER_WINDOW_BITS: Final = 12
_MEM_LEVEL: Final = 5


class _PerMessageDeflate(Extension):
    """permessage-deflate (RFC 7692) with a bounded inflater.

    wsproto calls the ``frame_inbound_*`` hooks from its frame decoder; we compress
    outgoing messages ourselves in :meth:`compress`.
    """

    name = "permessage-deflate"

    def __init__(self, offer: DeflateOffer, max_size: int) -> None:
        self._offer = offer
        self._max_size = max_size
        self._window_bits = min(offer.server_max_window_bits or 15, _SERVER_WINDOW_BITS)
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None
        self._frame_is_data = False
        #: Whether the message being received is compressed (RSV1 on its first frame).
        self.message_compressed = False
        self._inflated = 0

    def response_header(self) -> bytes:
        """Our ``Sec-WebSocket-Extensions`` answer to the accepted offer."""
        params = ["permessage-deflate"]
        if self._offer.server_no_context_takeover:
            params.append("server_no_context_takeover")
        if self._offer.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self._offer.server_max_window_bits is not None:
            params.append(f"server_max_window_bits={self._offer.server_max_window_bits}")
        return "; ".join(params).encode("ascii")

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False  # a server never offers; it answers in response_header()

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol() or opcode is Opcode.CONTINUATION:
            if rsv.rsv1:  # RSV1 marks the first frame of a compressed message only
                return CloseReason.PROTOCOL_ERROR
            self._frame_is_data = not opcode.iscontrol()
        else:
            self._frame_is_data = True
            self.message_compressed = rsv.rsv1
            self._inflated = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self._frame_is_data and self.message_compressed:
            return self._inflate(data)
        return data

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if not (fin and self._frame_is_data and self.message_compressed):
            return None
        tail = self._inflate(_DEFLATE_TAIL)
        self.message_compressed = False
        assert self._decompressor is not None  # _inflate made it
        if self._offer.client_no_context_takeover or self._decompressor.eof:
            # A message ended with a final block (BFINAL) cannot be continued: start afresh.
            self._decompressor = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if self._decompressor is None:
            # The full window reads whatever window the client compressed with.
            self._decompressor = zlib.decompressobj(-15)
        budget = self._max_size - self._inflated
        try:
            # Never more than budget + 1 bytes: one byte over proves the message is too big.
            out = self._decompressor.decompress(data, budget + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(out) > budget:
            return CloseReason.MESSAGE_TOO_BIG
        self._inflated += len(out)
        return out

    def compress(self, data: bytes) -> bytes:
        """One whole message, compressed as RFC 7692 section 7.2.1 says."""
        if self._compressor is None:
            self._compressor = zlib.compressobj(
                zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self._window_bits, _MEM_LEVEL
            )
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        if self._offer.server_no_context_takeover:
            self._compressor = None
        # An empty result would be ambiguous; RFC 7692 7.2.3.6 sends one empty block instead.
        return out[:-4] or b"\x00"


# --- the connection ---------------------------------------------------------------------------

#: 101 headers that are ours to write: an app's copies are dropped.
_OWN_101_HEADERS: Final = frozenset({b"upgrade", b"connection", b"sec-websocket-accept",
                                     b"sec-websocket-extensions"})
#: Denial-response headers that are ours: framing and connection management.
_OWN_DENIAL_HEADERS: Final = frozenset({b"connection", b"transfer-encoding"})
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class WebSocketConnection:
    """One WebSocket, server side, without I/O: see the module's theory of operation.

    Args:
        handshake: The client's valid handshake, from
            :func:`~._ws_handshake.validate_handshake`.
        max_size: The largest message in bytes (after decompression); larger closes with 1009.
        per_message_deflate: Accept permessage-deflate when the client offers it.
        defaults: ``Date``, ``Server`` and configured headers for our HTTP responses.
        trailing_data: Bytes that arrived after the request head, in the same read.
    """

    __slots__ = (
        "_close_received", "_close_sent", "_closed_by", "_decoder", "_defaults", "_deflate",
        "_deny_head", "_deny_remaining", "_early", "_eof", "_handshake", "_max_size",
        "_message_opcode", "_message_size", "_output", "_parts", "_per_message_deflate",
        "_state", "_text_parts", "_utf8", "subprotocol",
    )

    def __init__(self, handshake: Handshake, *, max_size: int = 16 * 1024 * 1024,
                 per_message_deflate: bool = True, defaults: DefaultHeaders | None = None,
                 trailing_data: bytes = b"") -> None:
        self._handshake = handshake
        self._max_size = max_size
        self._per_message_deflate = per_message_deflate
        self._defaults = defaults
        self._state = WebSocketState.HANDSHAKE
        #: The subprotocol the app accepted (``None``: none).
        self.subprotocol: str | None = None
        self._deflate: _PerMessageDeflate | None = None
        self._decoder: FrameDecoder | None = None
        self._early = bytearray(trailing_data)
        self._eof = False
        self._output = bytearray()
        self._closed_by: Closer | None = None
        self._close_sent = self._close_received = False
        self._deny_head = b""
        self._deny_remaining: int | None = None
        self._message_opcode: Opcode | None = None
        self._message_size = 0
        self._parts: list[bytes] = []
        self._text_parts: list[str] = []
        self._utf8: Utf8Decoder | None = None

    # --- state queries ------------------------------------------------------------------------

    @property
    def state(self) -> WebSocketState:
        return self._state

    @property
    def per_message_deflate(self) -> bool:
        """Whether permessage-deflate was negotiated."""
        return self._deflate is not None

    @property
    def closed_by(self) -> Closer | None:
        """Who closed first, once either side did."""
        return self._closed_by

    @property
    def closing_handshake_done(self) -> bool:
        """Both close frames went out and came in: a clean close (``wasClean``)."""
        return self._close_sent and self._close_received

    def _next(self, action: _Action) -> WebSocketState:
        state = _TRANSITIONS.get((self._state, action))
        if state is not None:
            return state
        if self._state in _GONE_STATES:
            raise ClientDisconnected(f"cannot {action.value}: the WebSocket is closed")
        raise ASGIProtocolError(f"cannot {action.value} while the WebSocket is in state "
                                f"{self._state.name}")

    # --- the handshake answer -----------------------------------------------------------------

    def accept(self, subprotocol: str | None = None,
               headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """The ``101 Switching Protocols`` response; the WebSocket is then open.

        Raises:
            ASGIProtocolError: the client did not offer ``subprotocol``, ``headers`` name
                ``sec-websocket-protocol`` or hold an invalid header.
            ClientDisconnected: the client went away during the handshake.
        """
        state = self._next(_Action.ACCEPT)
        if subprotocol is not None and subprotocol not in self._handshake.subprotocols:
            raise ASGIProtocolError(f"websocket.accept: subprotocol {subprotocol!r} was not offered "
                                    f"by the client (offered: {list(self._handshake.subprotocols)})")
        out = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", generate_accept_token(self._handshake.key)),
        ]
        if subprotocol is not None:
            out.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        deflate = self._negotiate_deflate()
        if deflate is not None:
            out.append((b"Sec-WebSocket-Extensions", deflate.response_header()))
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"sec-websocket-protocol":
                raise ASGIProtocolError("websocket.accept: give the subprotocol in 'subprotocol', "
                                        "not as a header")
            if lowered not in _OWN_101_HEADERS:
                out.append((name, value))
        response = render_response(101, out, self._defaults)
        self._state = state
        self.subprotocol = subprotocol
        self._deflate = deflate
        self._decoder = FrameDecoder(client=False, extensions=[deflate] if deflate else [])
        self._decoder.receive_bytes(bytes(self._early))
        self._early = bytearray()
        return response

    def _negotiate_deflate(self) -> _PerMessageDeflate | None:
        if not self._per_message_deflate:
            return None
        for offer in self._handshake.deflate_offers:
            # zlib cannot compress with a 256-byte window: decline such an offer (RFC 7692 5.1).
            if offer.server_max_window_bits != 8:
                return _PerMessageDeflate(offer, self._max_size)
        return None

    def reject(self, status: int = 403, headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        """An empty HTTP response instead of the 101: 403 when the app closes before accepting,
        500 when it fails. Close the connection once it is written."""
        state = self._next(_Action.REJECT)
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
        state = self._next(_Action.DENY_START)
        if not 200 <= status <= 599:
            raise ASGIProtocolError(f"websocket.http.response.start: status {status} is not a "
                                    "final status (200-599)")
        no_body = status in _NO_BODY_STATUSES
        out: list[tuple[bytes, bytes]] = []
        length: int | None = None
        for name, value in headers:
            lowered = name.lower()
            if lowered in _OWN_DENIAL_HEADERS:
                continue
            if lowered == b"content-length":
                if length is not None or not value.isdigit():
                    raise ASGIProtocolError("websocket.http.response.start: invalid or repeated "
                                            "content-length header")
                length = int(value)
                if no_body:
                    continue
            out.append((name, value))
        out.append((b"connection", b"close"))
        self._deny_head = render_response(status, out, self._defaults)
        self._deny_remaining = 0 if no_body else length
        self._state = state
        return b""

    def deny_body(self, body: bytes, more_body: bool = False) -> bytes:
        """Body bytes of the denial response (``websocket.http.response.body``).

        Without a Content-Length, the body ends when the connection closes.

        Raises:
            ASGIProtocolError: more or fewer bytes than the declared Content-Length.
        """
        state = self._next(_Action.DENY_BODY if more_body else _Action.DENY_END)
        remaining = self._deny_remaining
        if remaining is not None:
            if self._deny_head and remaining == 0:
                body = b""  # 204 and 304 carry no body, whatever the app sends
            if len(body) > remaining:
                raise ASGIProtocolError("websocket.http.response.body: more body than the "
                                        "content-length header announced")
            if not more_body and len(body) < remaining:
                raise ASGIProtocolError("websocket.http.response.body: the body ended before the "
                                        "length its content-length header announced")
            self._deny_remaining = remaining - len(body)
        out = self._deny_head + body if self._deny_head else body
        self._deny_head = b""
        self._state = state
        return out
