"""A small WebSocket frame encoder (RFC 6455 section 5.2), free to break the rules.

The strategies need frames that wsproto would never write: unmasked client
frames, reserved bits and opcodes, fragmented control frames, lengths encoded
in more bytes than needed or with the top bit set. So this encoder takes every
field as given and checks nothing.

Frame layout::

    byte 0: FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
    byte 1: MASK | payload length (7 bits: 0-125, 126 = 16-bit length follows,
            127 = 64-bit length follows)
    [extended length] [4-byte masking key] payload (XORed with the key)
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._repr import CompactRepr


class Opcode(enum.IntEnum):
    """The opcodes RFC 6455 defines; 3-7 and 11-15 are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


#: How to write the payload length: the shortest form (what RFC 6455 requires),
#: or a given width even when a shorter one would do.
LengthForm: TypeAlias = Literal["minimal", "16-bit", "64-bit"]


@dataclass(frozen=True, repr=False)
class Frame(CompactRepr):
    """One frame as it goes on the wire from a client.

    Attributes:
        opcode: The 4-bit opcode (an :class:`Opcode` or a reserved value).
        payload: The unmasked payload.
        fin: Whether this is the last frame of its message.
        rsv: The three reserved bits as an integer 0-7 (RSV1 is 4).
        mask: The 4-byte masking key, or ``None`` for an unmasked frame.
        length_form: How the length is encoded (see :data:`LengthForm`).
        declared_length: A length to announce instead of ``len(payload)``.
        data: The encoded frame.
    """

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    mask: bytes | None = b"\x00\x00\x00\x00"
    length_form: LengthForm = "minimal"
    declared_length: int | None = None
    data: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", encode_frame(self))


def _length_bytes(length: int, form: LengthForm) -> tuple[int, bytes]:
    """The 7-bit length field and the extended length bytes."""
    if form == "16-bit" or (form == "minimal" and 125 < length <= 0xFFFF):
        return 126, struct.pack("!H", length)
    if form == "64-bit" or (form == "minimal" and length > 0xFFFF):
        return 127, struct.pack("!Q", length)
    return length, b""


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the repeated 4-byte ``key`` (masking and unmasking are the same)."""
    if not payload or key == b"\x00\x00\x00\x00":
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def encode_frame(frame: Frame) -> bytes:
    """Encode ``frame`` exactly as described, valid or not."""
    first = (0x80 if frame.fin else 0) | (frame.rsv & 0x7) << 4 | (frame.opcode & 0xF)
    length = len(frame.payload) if frame.declared_length is None else frame.declared_length
    short, extended = _length_bytes(length, frame.length_form)
    mask_bit = 0x80 if frame.mask is not None else 0
    head = bytes([first, mask_bit | short]) + extended
    if frame.mask is None:
        return head + frame.payload
    return head + frame.mask + mask_payload(frame.payload, frame.mask)


def close_payload(code: int | None, reason: bytes = b"") -> bytes:
    """The payload of a close frame: a 2-byte code and a UTF-8 reason, or nothing."""
    if code is None:
        return b""
    return struct.pack("!H", code) + reason
