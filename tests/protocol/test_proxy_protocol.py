"""The PROXY protocol parser, v1 and v2 (synchronous)."""

from __future__ import annotations

import ipaddress
import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi._protocol._proxy_protocol import (
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderParser,
    ProxyProtocolError,
    Signature,
    detect_signature,
)

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def v2(
    *,
    command: int = 1,
    family: int = 0x11,
    addresses: bytes = b"",
    tlvs: bytes = b"",
    version: int = 2,
    length: int | None = None,
) -> bytes:
    body = addresses + tlvs
    size = len(body) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", size) + body


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        ipaddress.IPv4Address(src).packed
        + ipaddress.IPv4Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return (
        ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + struct.pack("!HH", sport, dport)
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


SSL_TLV = tlv(0x20, b"\x01" + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))

VALID = [
    (
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        ProxyHeader(1, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
    ),
    (
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n",
        ProxyHeader(1, ("2001:db8::1", 1), ("2001:db8::2", 65535)),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, None, None)),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", ProxyHeader(1, None, None)),
    (
        v2(addresses=inet4("192.0.2.1", "198.51.100.2", 1234, 80)),
        ProxyHeader(2, ("192.0.2.1", 1234), ("198.51.100.2", 80)),
    ),
    (
        v2(family=0x21, addresses=inet6("2001:db8::1", "2001:db8::2", 1, 2), tlvs=SSL_TLV),
        ProxyHeader(2, ("2001:db8::1", 1), ("2001:db8::2", 2), tls=True),
    ),
    (
        v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), tlvs=tlv(0x04, b"\0" * 9) + SSL_TLV),
        ProxyHeader(2, ("192.0.2.1", 1), ("192.0.2.2", 2), tls=True),
    ),
    # LOCAL (a health check): the address bytes are ignored, the real peer stays.
    (v2(command=0, family=0x00), ProxyHeader(2, None, None)),
    (v2(command=0, addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2)), ProxyHeader(2, None, None)),
    (v2(family=0x00, addresses=b"junk"), ProxyHeader(2, None, None)),
    (v2(family=0x31, addresses=b"/a".ljust(216, b"\0")), ProxyHeader(2, None, None)),
]


@pytest.mark.parametrize(("header", "expected"), VALID)
def test_valid_headers_and_leftover(header: bytes, expected: ProxyHeader) -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(header + REQUEST) == expected
    assert parser.leftover == REQUEST


INVALID = [
    b"GET / HTTP/1.1\r\n\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n",
    b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
    b"PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
    b"PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
    b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
    b"PROXY TCP4 \xff.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY " + b"1" * V1_MAX_LENGTH,
    v2(version=1, addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2)),
    v2(command=2, addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2)),
    v2(family=0x41),
    v2(family=0x12, addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2)),  # UDP
    v2(family=0x13),
    v2(addresses=b"short"),
    v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), tlvs=b"\x20\x00"),  # truncated TLV
    v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), tlvs=b"\x20\x00\x05ab"),
    v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), length=12 + 4097),  # TLV cap
]


@pytest.mark.parametrize("data", INVALID)
def test_invalid_headers_raise_our_error(data: bytes) -> None:
    parser = ProxyHeaderParser()
    with pytest.raises(ProxyProtocolError):
        parser.feed(data + REQUEST + b"x" * 5000)


def test_tlv_bound_is_checked_before_the_bytes_arrive() -> None:
    parser = ProxyHeaderParser(max_tlv_bytes=100)
    with pytest.raises(ProxyProtocolError, match="100 bytes of TLVs"):
        parser.feed(v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), length=12 + 101))
    parser = ProxyHeaderParser(max_tlv_bytes=100)
    assert parser.feed(v2(addresses=inet4("192.0.2.1", "192.0.2.2", 1, 2), length=12 + 100)) is None


def test_end_of_stream_before_the_header_is_an_error() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(b"PROXY TCP4 ") is None
    with pytest.raises(ProxyProtocolError, match="closed"):
        parser.feed(b"")


def test_v1_waits_for_the_line_then_refuses_a_long_one() -> None:
    parser = ProxyHeaderParser()
    assert parser.feed(b"PROXY TCP4 " + b"1" * 90) is None
    with pytest.raises(ProxyProtocolError, match="107"):
        parser.feed(b"1" * 10)


@pytest.mark.parametrize(
    ("data", "signature"),
    [
        (b"", Signature.UNDECIDED),
        (b"PRO", Signature.UNDECIDED),
        (b"PROXY", Signature.UNDECIDED),
        (b"PROXY ", Signature.V1),
        (b"\r\n\r\n", Signature.UNDECIDED),
        (V2_SIGNATURE, Signature.V2),
        (b"POST", Signature.NONE),
        (b"\r\n\r\nGET", Signature.NONE),
        (b"GET / HTTP/1.1\r\n", Signature.NONE),
    ],
)
def test_detect_signature(data: bytes, signature: Signature) -> None:
    assert detect_signature(data) is signature


# --- properties ---------------------------------------------------------------------------


def _outcome(chunks: list[bytes]) -> tuple[object, bytes]:
    """Feed chunks until an answer: (header or error message, leftover)."""
    parser = ProxyHeaderParser()
    for index, chunk in enumerate(chunks):
        try:
            header = parser.feed(chunk)
        except ProxyProtocolError:
            return "error", b""
        if header is not None:
            # What the next protocol gets: the leftover, then every later read.
            return header, parser.leftover + b"".join(chunks[index + 1 :])
    return None, b""


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


_HEADERS = st.sampled_from([h for h, _ in VALID] + INVALID)


@given(_HEADERS, st.binary(max_size=40), st.lists(st.integers(0, 400), max_size=8))
def test_any_split_gives_the_same_result(header: bytes, tail: bytes, cuts: list[int]) -> None:
    data = header + REQUEST + tail
    whole = _outcome([data])
    assert whole != (None, b"")
    split = _outcome(_split(data, cuts))
    assert split == whole
    if whole[0] != "error":
        assert whole[1].startswith(REQUEST)


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20))
def test_random_bytes_only_ever_raise_our_error(chunks: list[bytes]) -> None:
    parser = ProxyHeaderParser()
    fed = 0
    for chunk in chunks:
        try:
            header = parser.feed(chunk)
        except ProxyProtocolError:
            return
        fed += len(chunk)
        if header is not None:
            assert isinstance(header, ProxyHeader)
            return
        # Undecided only while a header could still be in bounds.
        assert fed - len(chunk) < 16 + 216 + 4096


@given(st.binary(min_size=1, max_size=4096).map(lambda b: V2_SIGNATURE + b"\x21\x11" + b))
def test_random_v2_bodies_only_ever_raise_our_error(data: bytes) -> None:
    try:
        ProxyHeaderParser().feed(data)
    except ProxyProtocolError:
        pass
