"""A frame scanner in front of h2: every frame's header is checked before its payload is held.

h2's frame buffer waits for a whole frame before it checks the length, so a header
announcing 16 MiB makes it buffer 16 MiB; it holds up to 64 CONTINUATION frames of a
header block; and it answers a few malformed lengths with the wrong error code. We
look at each 9-byte frame header first (RFC 9113 section 4.1), answer what is wrong
with the code the RFC asks for, count control frames for the flood budgets, and hand
h2 only whole frames that passed.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from h2.errors import ErrorCodes

from ._http2_limits import H2Settings

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = struct.Struct(">HBBBL")  # 24-bit length as (high 16, low 8), type, flags, id


class FrameType(enum.IntEnum):
    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8

#: RFC 9113 sections 6.3-6.9: frames whose payload has one size (or a minimum), by the
#: type as a plain int (the scanner never builds a FrameType per frame).
_EXACT_LENGTH: dict[int, int] = {
    FrameType.PRIORITY: 5,
    FrameType.RST_STREAM: 4,
    FrameType.PING: 8,
    FrameType.WINDOW_UPDATE: 4,
}
# Plain ints for the per-frame comparisons (an enum member is a slower look-up).
_HEADERS = int(FrameType.HEADERS)
_CONTINUATION = int(FrameType.CONTINUATION)
_SETTINGS = int(FrameType.SETTINGS)
_GOAWAY = int(FrameType.GOAWAY)
_WINDOW_UPDATE = int(FrameType.WINDOW_UPDATE)
_PRIORITY = int(FrameType.PRIORITY)


class FrameHeader(NamedTuple):
    """A frame's 9-byte header (a tuple: one is built per frame, so it is cheap)."""

    length: int
    type: int
    flags: int
    stream_id: int

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)


@dataclass(frozen=True, slots=True)
class GoAway:
    """The connection must end with a GOAWAY of this code (sent by the caller)."""

    code: ErrorCodes
    reason: str


@dataclass(frozen=True, slots=True)
class StreamError:
    """Drop this frame and reset its stream with this code (the stream may be idle)."""

    header: FrameHeader
    code: ErrorCodes
    reason: str


class Frame(NamedTuple):
    """A whole frame that passed our checks, for h2."""

    header: FrameHeader
    raw: bytes


ScanResult = Frame | StreamError | GoAway


class FrameScanner:
    """Splits received bytes into frames, checking each header first.

    ``header_block_since`` is the ``now`` at which a header block (HEADERS without
    END_HEADERS) started and is still open: the I/O layer puts its request-head
    deadline on it (a CONTINUATION dribble).
    """

    __slots__ = (
        "_block_bytes",
        "_block_frames",
        "_buffer",
        "_checked",
        "_preface_left",
        "_settings",
        "header_block_since",
    )

    def __init__(self, settings: H2Settings, *, expect_preface: bool = True) -> None:
        self._settings = settings
        self._buffer = bytearray()
        self._preface_left = len(PREFACE) if expect_preface else 0
        self._block_frames = 0
        self._block_bytes = 0
        #: The header of the frame at the front of the buffer, once checked (a frame's
        #: header is checked once, however many reads its payload takes).
        self._checked: tuple[FrameHeader, StreamError | None] | None = None
        self.header_block_since: float | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take_preface(self) -> bytes | GoAway | None:
        """The preface bytes once all arrived (None: need more; an error: not HTTP/2)."""
        if not self._preface_left:
            return b""
        have = min(len(self._buffer), len(PREFACE))
        if self._buffer[:have] != PREFACE[:have]:
            return GoAway(ErrorCodes.PROTOCOL_ERROR, "invalid connection preface")
        if have < len(PREFACE):
            return None
        del self._buffer[: len(PREFACE)]
        self._preface_left = 0
        return PREFACE

    def next_frame(self, now: float) -> ScanResult | None:
        """The next whole frame, a verdict on it, or None when more bytes are needed."""
        if self._checked is None:
            if len(self._buffer) < 9:
                return None
            high, low, type_, flags, stream_id = FRAME_HEADER.unpack_from(self._buffer)
            header = FrameHeader((high << 8) | low, type_, flags, stream_id & 0x7FFFFFFF)
            verdict = self._check_header(header, now)
            if isinstance(verdict, GoAway):
                return verdict
            self._checked = (header, verdict)
        header, stream_error = self._checked
        size = 9 + header.length
        if len(self._buffer) < size:
            return None
        self._checked = None
        frame = Frame(header, bytes(self._buffer[:size]))
        del self._buffer[:size]
        if stream_error is not None:
            return stream_error
        if header.type == _WINDOW_UPDATE and header.stream_id and not window_increment(frame):
            # RFC 9113 section 6.9: a stream error (h2 makes it a connection error).
            return StreamError(header, ErrorCodes.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
        return frame

    def _check_header(self, header: FrameHeader, now: float) -> StreamError | GoAway | None:
        if header.length > self._settings.max_frame_size:
            # RFC 9113 section 4.2: FRAME_SIZE_ERROR (h2 would buffer the payload first).
            return GoAway(ErrorCodes.FRAME_SIZE_ERROR, "frame over SETTINGS_MAX_FRAME_SIZE")
        length_error = _length_error(header)
        if length_error is not None:
            return length_error
        return self._check_header_block(header, now)

    def _check_header_block(self, header: FrameHeader, now: float) -> GoAway | None:
        if header.type == _HEADERS or header.type == _CONTINUATION:
            if header.type == _HEADERS or self.header_block_since is None:
                # A CONTINUATION outside a block is h2's PROTOCOL_ERROR to raise.
                self._block_frames = 0
                self._block_bytes = 0
            if self.header_block_since is None and not header.has(FLAG_END_HEADERS):
                self.header_block_since = now
            self._block_frames += 1
            self._block_bytes += header.length
            if self._block_frames > self._settings.max_header_block_frames:
                return GoAway(ErrorCodes.ENHANCE_YOUR_CALM, "CONTINUATION flood")
            if self._block_bytes > self._settings.max_header_block_bytes:
                return GoAway(ErrorCodes.ENHANCE_YOUR_CALM, "header block too large")
            if header.has(FLAG_END_HEADERS):
                self.header_block_since = None
        return None


def _length_error(header: FrameHeader) -> StreamError | GoAway | None:
    exact = _EXACT_LENGTH.get(header.type)
    if exact is not None and header.length != exact:
        if header.type == _PRIORITY and header.stream_id:
            # RFC 9113 section 6.3: a stream error (h2 makes it a connection error).
            return StreamError(header, ErrorCodes.FRAME_SIZE_ERROR, "PRIORITY of wrong length")
        return GoAway(ErrorCodes.FRAME_SIZE_ERROR, "frame of wrong length")
    if header.type == _SETTINGS:
        if header.has(FLAG_ACK) and header.length:
            # RFC 9113 section 6.5: FRAME_SIZE_ERROR (h2 says PROTOCOL_ERROR).
            return GoAway(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
        if header.length % 6:
            return GoAway(ErrorCodes.FRAME_SIZE_ERROR, "SETTINGS not a multiple of 6")
    if header.type == _GOAWAY and header.length < 8:
        return GoAway(ErrorCodes.FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
    return None


def window_increment(frame: Frame) -> int:
    """The increment of a WINDOW_UPDATE frame (the scanner checked its length)."""
    value: int = struct.unpack_from(">L", frame.raw, 9)[0]
    return value & 0x7FFFFFFF


def data_payload_length(frame: Frame) -> int:
    """The payload of a DATA frame without padding (what counts as "empty")."""
    length = frame.header.length
    if frame.header.has(FLAG_PADDED) and length:
        length -= 1 + frame.raw[9]
    return length
