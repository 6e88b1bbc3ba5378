"""HTTP/2 frames by hand, for the test client's raw mode and the malicious strategies.

Theory of operation: a well-behaved client library (h2) refuses to write most of the
frames an attacker sends, so the toolkit builds them itself: :func:`encode_h2_frame`
writes any 9-byte frame header and payload, valid or not, and the helpers below
(:func:`headers_frame`, :func:`data_frame`, ...) write the common ones. Header blocks
are HPACK-encoded by :func:`encode_header_block` with literal, never-indexed fields
only: the server's HPACK dynamic table is left as it was, so raw frames can follow
frames written by h2 on the same connection without desynchronising the two.

:class:`H2FrameReader` splits the server's bytes into :class:`H2Frame` records
without interpreting them, so a test can see every frame the server wrote even
where h2 would refuse to go on (after the client broke the protocol on purpose).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import hpack

#: The client connection preface (RFC 9113 section 3.4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_HEADER_SIZE = 9


class H2FrameType(enum.IntEnum):
    """The HTTP/2 frame types of RFC 9113 section 6."""

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


class H2Flag(enum.IntFlag):
    """Frame flags (one bit can mean END_STREAM or ACK, depending on the frame type)."""

    NONE = 0x0
    END_STREAM = 0x1
    ACK = 0x1
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


@dataclass(frozen=True)
class H2Frame:
    """One frame as it was on the wire.

    Attributes:
        type: The frame type (an int: unknown types are kept, not refused).
        flags: The flag bits.
        stream_id: The stream identifier (the reserved bit cleared).
        payload: The payload bytes.
    """

    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int | None:
        """The error code of a GOAWAY or RST_STREAM frame, else ``None``."""
        if self.type == H2FrameType.GOAWAY and len(self.payload) >= 8:
            return int.from_bytes(self.payload[4:8], "big")
        if self.type == H2FrameType.RST_STREAM and len(self.payload) == 4:
            return int.from_bytes(self.payload, "big")
        return None

    @property
    def last_stream_id(self) -> int | None:
        """The last stream identifier of a GOAWAY frame, else ``None``."""
        if self.type == H2FrameType.GOAWAY and len(self.payload) >= 4:
            return int.from_bytes(self.payload[:4], "big") & 0x7FFFFFFF
        return None


class H2FrameReader:
    """Split bytes into frames, whatever they say; keeps an incomplete frame for later."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[H2Frame]:
        """Add ``data``; return the frames it completed, in order."""
        self._buffer += data
        frames: list[H2Frame] = []
        while len(self._buffer) >= _HEADER_SIZE:
            length = int.from_bytes(self._buffer[:3], "big")
            end = _HEADER_SIZE + length
            if len(self._buffer) < end:
                break
            stream_id = int.from_bytes(self._buffer[5:9], "big") & 0x7FFFFFFF
            frames.append(
                H2Frame(self._buffer[3], self._buffer[4], stream_id, bytes(self._buffer[9:end]))
            )
            del self._buffer[:end]
        return frames


def encode_h2_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """Any frame: the 9-byte header (the length is the payload's) and the payload.

    Nothing is checked, so it writes invalid frames too (unknown types, stray flags,
    a stream id with the reserved bit, payloads over the peer's maximum frame size).
    """
    return (
        len(payload).to_bytes(3, "big")
        + bytes([frame_type & 0xFF, flags & 0xFF])
        + (stream_id & 0xFFFFFFFF).to_bytes(4, "big")
        + payload
    )


HeaderFields = Sequence[tuple[bytes, bytes]]


def encode_header_block(fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """HPACK-encode ``fields`` as written, without touching the dynamic table.

    Every field is a never-indexed literal (static-table names are still referenced),
    so the block can be sent between blocks that h2 encoded. Nothing is validated:
    upper-case names, CR/LF/NUL and misplaced pseudo-headers go out as given.
    """
    encoder = hpack.Encoder()
    return encoder.encode([hpack.NeverIndexedHeaderTuple(name, value) for name, value in fields])


def headers_frame(
    stream_id: int,
    fields: HeaderFields,
    *,
    end_stream: bool = True,
    end_headers: bool = True,
    block: bytes | None = None,
) -> bytes:
    """A HEADERS frame carrying ``fields`` (or the already encoded ``block``)."""
    flags = (H2Flag.END_STREAM if end_stream else 0) | (H2Flag.END_HEADERS if end_headers else 0)
    payload = encode_header_block(fields) if block is None else block
    return encode_h2_frame(H2FrameType.HEADERS, flags, stream_id, payload)


def continuation_frame(stream_id: int, block: bytes, *, end_headers: bool = False) -> bytes:
    """A CONTINUATION frame with a piece of a header block."""
    flags = H2Flag.END_HEADERS if end_headers else 0
    return encode_h2_frame(H2FrameType.CONTINUATION, flags, stream_id, block)


def data_frame(stream_id: int, data: bytes, *, end_stream: bool = False) -> bytes:
    """A DATA frame."""
    return encode_h2_frame(
        H2FrameType.DATA, H2Flag.END_STREAM if end_stream else 0, stream_id, data
    )


def rst_stream_frame(stream_id: int, error_code: int = 0x8) -> bytes:
    """An RST_STREAM frame (default error code: CANCEL)."""
    return encode_h2_frame(H2FrameType.RST_STREAM, 0, stream_id, error_code.to_bytes(4, "big"))


def settings_frame(settings: Sequence[tuple[int, int]] = (), *, ack: bool = False) -> bytes:
    """A SETTINGS frame with ``(identifier, value)`` pairs, or an empty ACK."""
    payload = b"".join(key.to_bytes(2, "big") + value.to_bytes(4, "big") for key, value in settings)
    return encode_h2_frame(H2FrameType.SETTINGS, H2Flag.ACK if ack else 0, 0, payload)


def ping_frame(opaque: bytes = b"\0" * 8, *, ack: bool = False) -> bytes:
    """A PING frame (8 opaque bytes)."""
    return encode_h2_frame(H2FrameType.PING, H2Flag.ACK if ack else 0, 0, opaque)


def priority_frame(stream_id: int, depends_on: int = 0, weight: int = 16) -> bytes:
    """A PRIORITY frame (deprecated by RFC 9113, still to be accepted)."""
    payload = depends_on.to_bytes(4, "big") + bytes([(weight - 1) & 0xFF])
    return encode_h2_frame(H2FrameType.PRIORITY, 0, stream_id, payload)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame (``stream_id`` 0: the connection's window)."""
    return encode_h2_frame(H2FrameType.WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def goaway_frame(last_stream_id: int = 0, error_code: int = 0, debug: bytes = b"") -> bytes:
    """A GOAWAY frame."""
    payload = last_stream_id.to_bytes(4, "big") + error_code.to_bytes(4, "big") + debug
    return encode_h2_frame(H2FrameType.GOAWAY, 0, 0, payload)


def request_fields(
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    authority: bytes = b"example.com",
    scheme: bytes = b"http",
) -> list[tuple[bytes, bytes]]:
    """The pseudo-headers of a request, then ``headers``."""
    return [
        (b":method", method.encode("ascii")),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", path.encode("ascii")),
        *headers,
    ]
