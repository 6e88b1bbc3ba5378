"""The wire-level pieces of a WebSocket: close codes, frames we write, permessage-deflate.

Reading frames is wsproto's :class:`~wsproto.frame_protocol.FrameDecoder`; what it
leaves out lives here: the rules for close codes and reasons (ours and the
peer's), a lean writer for the unmasked frames a server sends, and a
permessage-deflate (RFC 7692) whose inflater is bounded by the message size
limit, so a small compressed frame can never expand into memory.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from wsproto.extensions import Extension
from wsproto.frame_protocol import (
    CloseReason,
    FrameDecoder,
    FrameProtocol,
    Opcode,
    ParseFailed,
    RsvBits,
)

from .._errors import ASGIProtocolError
from ._ws_handshake import DeflateOffer

# --- close codes ------------------------------------------------------------------------------

#: What our close frame says when we fail the connection (the detail goes to the log only).
FAILURE_REASONS: Final = {
    1002: "protocol error",
    1007: "invalid payload data",
    1009: "message too big",
}
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
        raise ASGIProtocolError(
            f"close code {code} may not be sent: use 1000-1003, 1007-1014 or 3000-4999"
        )
    try:
        encoded = reason.encode("utf-8")
    except UnicodeEncodeError:
        raise ASGIProtocolError("the close reason is not valid Unicode (lone surrogate)") from None
    if len(encoded) > MAX_CLOSE_REASON_BYTES:
        raise ASGIProtocolError(
            f"the close reason is {len(encoded)} UTF-8 bytes; the limit is {MAX_CLOSE_REASON_BYTES}"
        )
    return code.to_bytes(2, "big") + encoded


def parse_close(payload: bytes) -> tuple[int, str]:
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
        raise ParseFailed(
            "close reason is not UTF-8", CloseReason.INVALID_FRAME_PAYLOAD_DATA
        ) from None


# --- framing ----------------------------------------------------------------------------------

_PACK_16 = struct.Struct("!BBH").pack
_PACK_64 = struct.Struct("!BBQ").pack


def encode_frame(opcode: int, payload: bytes, rsv1: bool = False) -> bytes:
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


class PerMessageDeflate(Extension):
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


def negotiate_deflate(offers: tuple[DeflateOffer, ...], max_size: int) -> PerMessageDeflate | None:
    """Accept the first offer we can honour (the client's order is its preference)."""
    for offer in offers:
        # zlib cannot compress with a 256-byte window: decline such an offer (RFC 7692 5.1).
        if offer.server_max_window_bits != 8:
            return PerMessageDeflate(offer, max_size)
    return None
