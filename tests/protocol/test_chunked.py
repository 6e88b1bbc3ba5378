"""The strict chunked-framing validator, alone and in front of h11 in HTTP11Connection."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol._chunked import ChunkedDecoder, ChunkedFramingError
from trio_asgi._protocol._http11 import (
    NEED_DATA,
    PAUSED,
    BadRequest,
    BodyData,
    ClientEOF,
    EndOfBody,
)

HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def scan_all(data: bytes, max_trailer_size: int = 1000) -> tuple[int, bool]:
    validator = ChunkedDecoder(max_trailer_size=max_trailer_size)
    return validator.scan(data, 0), validator.done


def through_connection(hp: Any, body: bytes) -> list[Any]:
    conn = hp.conn()
    events = hp.feed(conn, HEAD + body)
    return events[1:]


# --- the validator alone ---------------------------------------------------------------------


def test_whole_body_is_valid_and_done() -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert scan_all(body) == (len(body), True)


def test_bytes_after_the_body_are_not_taken() -> None:
    body = b"1\r\nx\r\n0\r\n\r\n"
    assert scan_all(body + b"GET / HTTP/1.1\r\n") == (len(body), True)


@pytest.mark.parametrize(
    ("data", "valid"),
    [
        (b"", 0),
        (b"5", 0),
        (b"5\r", 0),
        (b"5;name=val", 0),
        (b"5\r\n", 3),
        (b"5\r\nhel", 6),
        (b"5\r\nhello", 8),
        (b"5\r\nhello\r", 8),
        (b"5\r\nhello\r\n", 10),
        (b"5\r\nhello\r\n0\r\n", 13),
        (b"5\r\nhello\r\n0\r\nX-T: 1", 13),
        (b"5\r\nhello\r\n0\r\nX-T: 1\r\n", 21),
        (b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r", 21),
    ],
)
def test_incomplete_framing_waits(data: bytes, valid: int) -> None:
    assert scan_all(data) == (valid, False)


def test_scan_resumes_where_it_stopped() -> None:
    validator = ChunkedDecoder(max_trailer_size=100)
    buf = bytearray(b"a\r\n01234")
    assert validator.scan(buf, 0) == 8
    del buf[:8]
    buf += b"56789\r\n0\r\n"
    assert validator.scan(buf, 0) == 10
    del buf[:10]
    assert not validator.done
    buf += b"\r\nnext"
    assert validator.scan(buf, 0) == 2
    assert validator.done
    assert validator.scan(buf, 2) == 2


@pytest.mark.parametrize(
    "line",
    [
        b"5",
        b"A",
        b"a",
        b"0000000000000005",
        b"FFFFFFFFFFFFFFFF",
        b"5;a",
        b"5;a=b",
        b"5 ;a",
        b"5\t; a = b",
        b"5;a;b=c;d",
        b'5;a="x y"',
        b'5;a="q\\"t"',
        b'5;a=""',
        b"5;a=b ;c",
        b"5;!#$%&'*+-.^_`|~=x",
        b'5;a="\x80\xff"',
        b'5;a="\\\x80"',
    ],
)
def test_valid_chunk_size_lines(line: bytes) -> None:
    size = int(line.split(b";")[0].strip(), 16)
    data = line + b"\r\n"
    assert scan_all(data) == (len(data), False)
    if size < 100:  # the size was read right: exactly that much data, then the next line
        whole = data + b"x" * size + b"\r\n0\r\n\r\n"
        assert scan_all(whole) == (len(whole), True)
        with pytest.raises(ChunkedFramingError):
            scan_all(data + b"x" * (size + 1) + b"\r\n")


@pytest.mark.parametrize(
    "line",
    [
        b"",  # no size
        b" 5",  # whitespace before the size
        b"5 ",  # whitespace after the size (h11 allows it)
        b"5\t",
        b"-5",
        b"+5",
        b"0x5",
        b"5g",
        b"00000000000000005",  # 17 hex digits
        b"FFFFFFFFFFFFFFFFFFFF",  # 20 (h11 allows up to 20)
        b"5;",  # empty extension name
        b"5;=b",
        b"5;a=",
        b"5;a= ",
        b'5;a="open',
        b'5;a="x"y',
        b"5;a=b c",
        b"5;a b",
        b"5;a=\x00",  # NUL (h11 allows anything after ';')
        b"5;a\x00",
        b"5;a=b\x01",
        b"5;a=\x7f",
        b'5;a="\x00"',
        b'5;a="\\\x00"',
        b"5;a=\x80",
        b"5,a",
    ],
)
def test_invalid_chunk_size_lines(line: bytes) -> None:
    with pytest.raises(ChunkedFramingError):
        scan_all(line + b"\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"5\nhello\r\n",  # bare LF ends the size line
        b"\n",  # a line that is only LF
        b"5\r\nhello\n0\r\n\r\n",  # bare LF after the data
        b"5\r\nhelloX\r\n",  # data longer than its size
        b"5\r\nhello\rX",
        b"5\r\nhello\n",
        b"5\r;a\r\n",  # bare CR inside a complete line
        b"5\rX",  # bare CR inside an incomplete line
        b"0\r\nX-T: 1\n\r\n",  # bare LF in a trailer
        b"0\r\nX-T: 1\r\n\n",  # bare LF ending the trailers
        b"0\r\n\n",
        b"0\r\nX-T: a\rb\r\n\r\n",  # bare CR in a trailer
        b"0\r\nX-T : 1\r\n\r\n",  # whitespace before the colon
        b"0\r\nX-T: 1\r\n folded\r\n\r\n",  # obs-fold
        b"0\r\nno colon\r\n\r\n",
        b"0\r\n: no name\r\n\r\n",
        b"0\r\nX-T: a\x00b\r\n\r\n",
        b"0\r\nX-T: a\x7fb\r\n\r\n",
    ],
)
def test_invalid_framing(data: bytes) -> None:
    with pytest.raises(ChunkedFramingError):
        scan_all(data)


@pytest.mark.parametrize(
    "trailer",
    [b"X-T: 1", b"X-T:1", b"X-T:", b"X-T:   ", b"X-T: a b\tc", b"X-T: \x80\xff", b"X-T:\t1\t"],
)
def test_valid_trailers(trailer: bytes) -> None:
    data = b"0\r\n" + trailer + b"\r\n\r\n"
    assert scan_all(data) == (len(data), True)


def test_line_length_limit() -> None:
    long_ext = b"5;a=" + b"b" * 4092  # a 4096-byte line is the longest allowed
    assert scan_all(long_ext + b"\r\n") == (4098, False)
    with pytest.raises(ChunkedFramingError, match="too long"):
        scan_all(long_ext + b"b\r\n")
    # A long line without its end is refused as soon as it is too long ...
    with pytest.raises(ChunkedFramingError, match="too long"):
        scan_all(long_ext + b"bb")
    # ... but not before.
    assert scan_all(long_ext) == (0, False)


def test_trailer_size_limit() -> None:
    trailer = b"X-T: " + b"v" * 93  # 98 bytes, 100 with its CRLF
    assert scan_all(b"0\r\n" + trailer + b"\r\n\r\n", max_trailer_size=100)[1]
    with pytest.raises(ChunkedFramingError, match="trailer section too large"):
        scan_all(b"0\r\n" + trailer + b"v\r\n\r\n", max_trailer_size=100)
    with pytest.raises(ChunkedFramingError, match="trailer section too large"):
        scan_all(b"0\r\n" + b"A: 1\r\n" * 17 + b"\r\n", max_trailer_size=100)


# --- valid framing, any split: the validator and h11 agree --------------------------------

_TOKEN = st.sampled_from([b"a", b"Z9", b"!#$%&'*+-.^_`|~", b"ext", b"0"])
_QUOTED = st.sampled_from([b'""', b'"a b"', b'"\t\x80"', b'"q\\"t"', b'"\\\\"', b'"!~"'])
# No whitespace before ";": RFC 9112 allows it (BWS), but h11 refuses it; see
# test_whitespace_before_extension_is_refused_by_h11.
_EXT = st.builds(
    lambda name, value: (
        b";" + name + (b"" if value is None else value[0] + b"=" + value[0] + value[1])
    ),
    _TOKEN,
    st.none() | st.tuples(st.sampled_from([b"", b" ", b"\t"]), _TOKEN | _QUOTED),
)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid chunked encoding (odd but legal spellings included) and the data it carries."""
    out = b""
    data = b""
    for chunk in draw(st.lists(st.binary(min_size=1, max_size=30), max_size=4)):
        size = b"%x" % len(chunk)
        if draw(st.booleans()):
            size = size.upper()
        size = b"0" * draw(st.integers(0, 16 - len(size))) + size
        out += size + b"".join(draw(st.lists(_EXT, max_size=2))) + b"\r\n" + chunk + b"\r\n"
        data += chunk
    out += b"0" + b"".join(draw(st.lists(_EXT, max_size=2))) + b"\r\n"
    for _ in range(draw(st.integers(0, 2))):
        out += b"X-" + draw(_TOKEN) + b":" + draw(st.sampled_from([b"", b" v", b" a b "])) + b"\r\n"
    return out + b"\r\n", data


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=150, deadline=None)
@given(body=chunked_bodies(), cuts=st.lists(st.integers(0, 300), max_size=8))
def test_valid_framing_however_split(hp: Any, body: tuple[bytes, bytes], cuts: list[int]) -> None:
    encoded, data = body
    pieces = cut(encoded, cuts)
    # The validator alone: takes exactly the body, leaves what follows it.
    validator = ChunkedDecoder(max_trailer_size=1000)
    buf = bytearray()
    taken = 0
    for piece in [*pieces, b"NEXT"]:
        buf += piece
        valid = validator.scan(buf, 0)
        del buf[:valid]
        taken += valid
    assert validator.done
    assert taken == len(encoded)
    assert buf == b"NEXT"
    # In front of h11: what we let through, h11 decodes to the same data.
    conn = hp.conn()
    events = hp.feed(conn, HEAD)
    for piece in pieces:
        events += hp.feed(conn, piece)
    assert not [e for e in events if type(e) is BadRequest]
    assert b"".join(e.data for e in events if type(e) is BodyData) == data
    assert events[-2:] == [EndOfBody(), PAUSED]


# --- through the connection: 400 and nothing more -----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"5;a=\x00\r\nhello\r\n0\r\n\r\n",
        b"5;\x01\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX: 1\n\r\n",
        b"00000000000000005\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX\r\n",
        b"5\r\nhello\r\n0\r\nX: 1\r\n \tfold\r\n\r\n",
    ],
)
def test_bad_framing_gives_400_then_nothing(hp: Any, body: bytes) -> None:
    conn = hp.conn()
    events = hp.feed(conn, HEAD)
    for i in range(len(body)):
        events += hp.feed(conn, body[i : i + 1])
        if type(events[-1]) is BadRequest:
            break
    assert events[-1].status == 400
    assert NEED_DATA in events
    assert hp.feed(conn, b"0\r\n\r\n") == [ClientEOF(clean=False)]


def test_h11_rejection_of_trailers_is_a_bad_request(hp: Any) -> None:
    # Framing fields are refused in trailers (RFC 9110 section 6.5.1): a 400, not an
    # exception, and never merged into the headers.
    events = through_connection(hp, b"0\r\nContent-Length: x\r\n\r\n")
    assert type(events[-1]) is BadRequest
    assert events[-1].status == 400


def test_whitespace_before_extension_is_accepted(hp: Any) -> None:
    # RFC 9112 section 7.1.1 allows BWS before ";": the chunk size is unambiguous.
    assert scan_all(b"5 ;a\r\n") == (6, False)
    events = through_connection(hp, b"5 ;a\r\nhello\r\n0\r\n\r\n")
    assert events[-3:] == [BodyData(b"hello"), EndOfBody(), PAUSED]
