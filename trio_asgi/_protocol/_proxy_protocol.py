"""The PROXY protocol, versions 1 and 2, as a receiver (no I/O).

Theory of operation. A TCP load balancer (HAProxy, a cloud NLB) that speaks the PROXY
protocol sends one header before the first byte of the client's data, naming the
client's address and port. Version 1 is one text line (at most 107 bytes with its
CRLF); version 2 a 16-byte binary preamble, whose last two bytes give the length of
the addresses and TLVs that follow. The version is told by the signature.

:class:`ProxyHeaderParser` takes bytes as they arrive and answers as soon as it can:
``None`` (send more), a :class:`ProxyHeader`, or :class:`ProxyProtocolError`. It never
looks further than the header's bound, so how much a peer can make us buffer before
the answer is fixed (107 bytes, or 16 + 216 + ``max_tlv_bytes``). Bytes after the
header belong to the next protocol: :attr:`ProxyHeaderParser.leftover`.

The ``LOCAL`` command (a health check from the balancer itself), the ``UNSPEC`` family,
v1's ``UNKNOWN`` and unix-socket addresses name no IP client: the connection keeps its
own peer address (``client`` is None).
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass

V1_SIGNATURE = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: The longest v1 line, CRLF included (the spec's bound).
V1_MAX_LENGTH = 107
V2_PREAMBLE = 16
#: The default bound on v2's TLV bytes (after the addresses).
DEFAULT_MAX_TLV_BYTES = 4096

#: v2 family byte (high nibble) -> length of the address block.
_ADDRESS_LENGTHS = {0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216}
_PP2_TYPE_SSL = 0x20
_PP2_CLIENT_SSL = 0x01


class ProxyProtocolError(ValueError):
    """The bytes are not a valid PROXY protocol header (the message says why)."""


class Signature(enum.Enum):
    """What the first bytes of a connection are, as far as PROXY headers go."""

    #: Too few bytes to tell.
    UNDECIDED = "undecided"
    V1 = "v1"
    V2 = "v2"
    #: Not a PROXY header (plain HTTP, say).
    NONE = "none"


def detect_signature(data: bytes) -> Signature:
    """Which PROXY header ``data`` starts with; UNDECIDED while a prefix still matches."""
    for signature, kind in ((V1_SIGNATURE, Signature.V1), (V2_SIGNATURE, Signature.V2)):
        if data.startswith(signature):
            return kind
    if any(
        signature.startswith(data[: len(signature)]) for signature in (V1_SIGNATURE, V2_SIGNATURE)
    ):
        return Signature.UNDECIDED
    return Signature.NONE


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What a PROXY header says about the connection it opens."""

    version: int
    #: The client's ``(address, port)``; None to keep the connection's own peer.
    client: tuple[str, int] | None
    #: The address the client connected to, when given.
    server: tuple[str, int] | None
    #: The client's connection to the balancer used TLS (v2's ``PP2_CLIENT_SSL``).
    tls: bool = False


class ProxyHeaderParser:
    """Incremental parser of one PROXY header.

    Example:
        >>> parser = ProxyHeaderParser()
        >>> parser.feed(b"PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\\r\\nGET")
        ProxyHeader(version=1, client=('192.0.2.1', 56324), server=('192.0.2.2', 443), tls=False)
        >>> parser.leftover
        b'GET'
    """

    __slots__ = ("_buffer", "_max_tlv_bytes", "leftover")

    def __init__(self, *, max_tlv_bytes: int = DEFAULT_MAX_TLV_BYTES) -> None:
        self._buffer = bytearray()
        self._max_tlv_bytes = max_tlv_bytes
        #: The bytes after the header, once it was parsed.
        self.leftover = b""

    def feed(self, data: bytes) -> ProxyHeader | None:
        """Add received bytes; the header once complete, else None (send more).

        Raises:
            ProxyProtocolError: the bytes cannot start a valid header, or the header
                is invalid or too long; nothing more should be read.
        """
        if not data:
            raise ProxyProtocolError("the connection closed before a complete PROXY header")
        self._buffer += data
        signature = detect_signature(bytes(self._buffer[: len(V2_SIGNATURE)]))
        if signature is Signature.V1:
            return self._v1()
        if signature is Signature.V2:
            return self._v2()
        if signature is Signature.NONE:
            raise ProxyProtocolError("the connection did not start with a PROXY header")
        return None

    def _v1(self) -> ProxyHeader | None:
        end = self._buffer.find(b"\r\n", 0, V1_MAX_LENGTH)
        if end < 0:
            if len(self._buffer) >= V1_MAX_LENGTH or b"\n" in self._buffer:
                raise ProxyProtocolError("PROXY v1 line is longer than 107 bytes or not CRLF-ended")
            return None
        line = bytes(self._buffer[:end])
        self.leftover = bytes(self._buffer[end + 2 :])
        return parse_v1_line(line)

    def _v2(self) -> ProxyHeader | None:
        buffer = self._buffer
        if len(buffer) < V2_PREAMBLE:
            return None
        version_command, family_protocol, length = struct.unpack_from("!BBH", buffer, 12)
        if version_command >> 4 != 2:
            raise ProxyProtocolError(f"PROXY v2: unknown version {version_command >> 4}")
        command = version_command & 0xF
        if command > 1:
            raise ProxyProtocolError(f"PROXY v2: unknown command {command}")
        family, protocol = family_protocol >> 4, family_protocol & 0xF
        if family not in _ADDRESS_LENGTHS or protocol > 2:
            raise ProxyProtocolError(f"PROXY v2: unknown family/protocol byte {family_protocol:#x}")
        address_length = _ADDRESS_LENGTHS[family]
        if length < address_length:
            raise ProxyProtocolError("PROXY v2: the length is too short for the addresses")
        if length - address_length > self._max_tlv_bytes:
            raise ProxyProtocolError(f"PROXY v2: more than {self._max_tlv_bytes} bytes of TLVs")
        if len(buffer) < V2_PREAMBLE + length:
            return None
        body = bytes(buffer[V2_PREAMBLE : V2_PREAMBLE + length])
        self.leftover = bytes(buffer[V2_PREAMBLE + length :])
        if command == 0 or family == 0x0:  # LOCAL, UNSPEC: the address bytes mean nothing
            return ProxyHeader(2, None, None)
        tls = _tls_flag(body[address_length:])
        if family == 0x3:  # unix sockets: no IP client, keep the real peer
            return ProxyHeader(2, None, None, tls)
        if protocol != 1:
            raise ProxyProtocolError("PROXY v2: only stream (TCP) connections are served")
        size = 4 if family == 0x1 else 16
        source = ipaddress.ip_address(body[:size])
        destination = ipaddress.ip_address(body[size : 2 * size])
        source_port, destination_port = struct.unpack_from("!HH", body, 2 * size)
        return ProxyHeader(2, (str(source), source_port), (str(destination), destination_port), tls)


def parse_v1_line(line: bytes) -> ProxyHeader:
    """One v1 line without its CRLF: ``PROXY TCP4 src dst sport dport``.

    Raises:
        ProxyProtocolError: the line does not follow the grammar.
    """
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 line is not ASCII") from None
    parts = text.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, None, None)  # the rest of the line is to be ignored
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"PROXY v1 line is malformed: {text[:107]!r}")
    family = ipaddress.IPv4Address if parts[1] == "TCP4" else ipaddress.IPv6Address
    try:
        source, destination = family(parts[2]), family(parts[3])
    except ValueError:
        raise ProxyProtocolError(f"PROXY v1: bad {parts[1]} address in {text[:107]!r}") from None
    source_port, destination_port = _v1_port(parts[4]), _v1_port(parts[5])
    return ProxyHeader(1, (str(source), source_port), (str(destination), destination_port))


def _v1_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5 or (text[0] == "0" and text != "0"):
        raise ProxyProtocolError(f"PROXY v1: bad port {text!r}")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"PROXY v1: bad port {text!r}")
    return port


def _tls_flag(tlvs: bytes) -> bool:
    """Whether the TLVs carry ``PP2_TYPE_SSL`` with the ``PP2_CLIENT_SSL`` bit."""
    pos, tls = 0, False
    while pos < len(tlvs):
        if pos + 3 > len(tlvs):
            raise ProxyProtocolError("PROXY v2: truncated TLV")
        kind, length = tlvs[pos], int.from_bytes(tlvs[pos + 1 : pos + 3], "big")
        value = tlvs[pos + 3 : pos + 3 + length]
        if len(value) != length:
            raise ProxyProtocolError("PROXY v2: a TLV runs past the header")
        if kind == _PP2_TYPE_SSL and value:
            tls = bool(value[0] & _PP2_CLIENT_SSL)
        pos += 3 + length
    return tls
