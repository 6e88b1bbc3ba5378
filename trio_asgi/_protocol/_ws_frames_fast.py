"""The common client frame read without wsproto: one whole, final, masked data frame.

Nearly every frame a WebSocket server receives is a short text or binary message in one
frame, and wsproto's general decoder (a rollback buffer, a header object, a masker object,
a frame object, extension hooks) spends about 15 µs on each. :func:`take_simple_frame`
reads exactly that common frame from the front of a buffer and nothing else: the first
byte ``FIN | TEXT`` or ``FIN | BINARY`` (no RSV bit), the mask bit set, a length encoded
in the fewest bytes (7 or 16 bits), the whole payload present. Anything else, valid or
not (control frames, fragments, compressed or reserved bits, unmasked or 64-bit-length
frames, a frame not all here yet), is left for wsproto to read and judge, so every
strictness rule stays wsproto's and ours exactly as before.
"""

from __future__ import annotations

from typing import Final

#: The first byte of a final, uncompressed text / binary frame.
FIN_TEXT: Final = 0x81
FIN_BINARY: Final = 0x82


def unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
    """``payload`` XOR the repeated 4-byte masking ``key`` (RFC 6455 section 5.3)."""
    size = len(payload)
    if not size:
        return b""
    keys = (bytes(key) * ((size + 3) // 4))[:size]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")
    return masked.to_bytes(size, "little")


def take_simple_frame(buffer: bytearray, max_size: int) -> tuple[int, bytes] | None:
    """Remove one simple data frame from the front of ``buffer``: its first byte and payload.

    Returns None, and leaves ``buffer`` as it is, when the front is anything but a
    whole, final, masked text or binary frame of at most ``max_size`` and 65535 bytes
    with a minimally encoded length.
    """
    if len(buffer) < 6:
        return None
    first = buffer[0]
    second = buffer[1]
    if (first != FIN_TEXT and first != FIN_BINARY) or second < 0x80:
        return None
    length = second & 0x7F
    if length < 126:
        start = 6
    elif length == 126:
        if len(buffer) < 8:
            return None
        length = (buffer[2] << 8) | buffer[3]
        if length < 126:  # not the shortest encoding: wsproto fails it
            return None
        start = 8
    else:
        return None
    end = start + length
    if length > max_size or len(buffer) < end:
        return None
    payload = unmask(buffer[start:end], buffer[start - 4 : start])
    del buffer[:end]
    return first, payload
